"""The ``docker-credential-<name>`` helper protocol (``get``/``store``/``erase``), as docker runs it.

A helper is an executable ``docker-credential-<name>`` on ``PATH``. ``get`` reads the server URL on
stdin and prints ``{"ServerURL", "Username", "Secret"}``; a ``Username`` of ``<token>`` means
``Secret`` is an identity (refresh) token. ``store`` reads that JSON on stdin; ``erase`` reads the
server URL. A helper that has nothing for the host prints ``credentials not found`` and exits
non-zero: that is "no credentials", not an error.

Every call has a timeout and bounded output; the helper's stderr is never echoed or logged (a
broken helper may print the secret it was given), only its exit status.

>>> helper_program("pass")
'docker-credential-pass'
>>> helper_program("../evil")
Traceback (most recent call last):
...
mlflow_plugin.errors.AuthError: invalid credential helper name '../evil': use letters, digits, '.', '_' or '-'
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import subprocess

from mlflow_plugin.errors import AuthError

log = logging.getLogger(__name__)

TIMEOUT = 30.0
"""Seconds a helper may take (a helper may ask the user to unlock a keyring)."""
MAX_OUTPUT = 64 * 1024
TOKEN_USERNAME = "<token>"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def helper_program(name: str) -> str:
    """``docker-credential-<name>`` after checking ``name`` cannot escape the prefix."""
    if not _NAME.match(name or ""):
        raise AuthError(f"invalid credential helper name {name!r}: use letters, digits, '.', '_' or '-'")
    return f"docker-credential-{name}"


def _run(name: str, action: str, stdin: str, origin: str) -> tuple[int, bytes]:
    program = helper_program(name)
    path = shutil.which(program)
    if not path:
        raise AuthError(
            f"credential helper {program} (named by {origin}) is not on PATH: install it or remove that entry"
        )
    try:
        proc = subprocess.run(
            [path, action],
            input=stdin.encode("utf-8"),
            capture_output=True,
            timeout=TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise AuthError(f"credential helper {program} {action} did not answer within {TIMEOUT:g}s") from None
    except OSError as e:
        raise AuthError(f"cannot run credential helper {program} ({type(e).__name__})") from None
    out = proc.stdout[: MAX_OUTPUT + 1]
    if len(out) > MAX_OUTPUT:
        raise AuthError(f"credential helper {program} {action} printed more than {MAX_OUTPUT} bytes")
    return proc.returncode, out


def _not_found(out: bytes) -> bool:
    return b"credentials not found" in out.lower()


def helper_get(name: str, server: str, origin: str) -> tuple[str, str] | None:
    """``(username, secret)`` the helper has for ``server``, or ``None`` if it has none."""
    code, out = _run(name, "get", server, origin)
    program = helper_program(name)
    if code != 0:
        if _not_found(out):
            return None
        raise AuthError(f"credential helper {program} get failed for {server} (exit status {code})")
    try:
        data = json.loads(out)
    except ValueError:
        data = None
    if not isinstance(data, dict) or not isinstance(data.get("Secret"), str):
        raise AuthError(f"credential helper {program} get answered without valid JSON for {server}")
    user = data.get("Username")
    return (user if isinstance(user, str) else ""), data["Secret"]


def helper_store(name: str, server: str, username: str, secret: str, origin: str) -> None:
    """Store credentials for ``server`` with the helper."""
    payload = json.dumps({"ServerURL": server, "Username": username, "Secret": secret})
    code, _ = _run(name, "store", payload, origin)
    if code != 0:
        raise AuthError(
            f"credential helper {helper_program(name)} store failed for {server} (exit status {code})"
        )


def helper_erase(name: str, server: str, origin: str) -> bool:
    """Erase ``server``'s credentials; ``False`` if the helper had none."""
    code, out = _run(name, "erase", server, origin)
    if code == 0:
        return True
    if _not_found(out):
        return False
    program = helper_program(name)
    raise AuthError(f"credential helper {program} erase failed for {server} (exit status {code})")
