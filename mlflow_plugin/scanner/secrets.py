"""Secrets in code, configs, params and tags: cloud keys, tokens, private keys, URL passwords.

Two kinds of rules:

- **Token formats** with a recognisable shape (``AKIA…``, ``ghp_…``, ``glpat-…``, ``xoxb-…``,
  ``sk_live_…``, ``sk-proj-…``, ``hf_…``, ``AIza…``, JWTs, PEM private keys, Azure
  ``AccountKey=``/``SharedAccessKey=``/SAS ``sig=``, ``scheme://user:password@host``).
- **Assignments** of a high-entropy value to a secret-sounding name (``password``, ``secret``,
  ``token``, ``api_key``, ``access_key`` …). Hashes, UUIDs, numbers, identifiers, paths,
  placeholders (``${VAR}``, ``<pad>``, ``changeme``) and function calls are not secrets, so the
  files every ML model ships (MLmodel, conda.yaml, requirements.txt, tokenizer configs, param
  dumps) give no findings.

Evidence never holds a secret: at most its first four characters, then ``…`` and its length.

>>> from mlflow_plugin.scanner.api import _new_context
>>> ctx = _new_context("params", None, None)
>>> scan_params(ctx, "run/params", {"aws_key": "AKIA" + "Z" * 16, "lr": "0.01"})
>>> [(f.rule, f.evidence) for f in ctx.report_obj.findings]
[('secret.aws-access-key-id', 'AKIA…(20 chars)')]
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import IO, Any

from mlflow_plugin.scanner.context import ScanContext
from mlflow_plugin.scanner.report import Severity

MAX_LINE = 1 << 20


@dataclass(frozen=True)
class _Rule:
    rule: str
    severity: Severity
    what: str
    regex: re.Pattern[str]
    marker: str  # a literal that must be in the line (cheap prefilter), case-sensitive
    validate: Callable[[str], Severity | None] | None = None


def _entropy(s: str) -> float:
    if not s:
        return 0.0
    counts: dict[str, int] = {}
    for ch in s:
        counts[ch] = counts.get(ch, 0) + 1
    n = len(s)
    return -sum(c / n * math.log2(c / n) for c in counts.values())


def _classes(s: str) -> int:
    return sum(
        (
            any(c.islower() for c in s),
            any(c.isupper() for c in s),
            any(c.isdigit() for c in s),
            any(not c.isalnum() for c in s),
        )
    )


def _example(v: str) -> Severity | None:
    up = v.upper()
    return Severity.LOW if "EXAMPLE" in up or "XXXX" in up else None


def _mixed(v: str) -> Severity | None:
    body = v.split("_", 1)[-1]
    if _classes(body) < 2 or _entropy(body) < 3.5:
        return Severity.INFO  # dropped below
    return None


_RULES: list[_Rule] = [
    _Rule(
        "secret.private-key",
        Severity.CRITICAL,
        "PEM private key",
        re.compile(r"-----BEGIN ((?:RSA |EC |DSA |OPENSSH |ENCRYPTED |PGP )?PRIVATE KEY(?: BLOCK)?)-----"),
        "-----BEGIN",
    ),
    _Rule(
        "secret.aws-access-key-id",
        Severity.HIGH,
        "AWS access key id",
        re.compile(r"(?<![A-Z0-9])((?:AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16})(?![A-Z0-9])"),
        "A",
        _example,
    ),
    _Rule(
        "secret.aws-secret-key",
        Severity.CRITICAL,
        "AWS secret access key",
        re.compile(
            r"(?i)aws.{0,20}?(?:secret|sk).{0,20}?[\"']?\s*[:=]\s*[\"']?([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])"
        ),
        "",
        _example,
    ),
    _Rule(
        "secret.azure-storage-key",
        Severity.CRITICAL,
        "Azure storage account key",
        re.compile(r"(?i)AccountKey=([A-Za-z0-9+/]{40,}={0,2})"),
        "ccountKey=",
    ),
    _Rule(
        "secret.azure-shared-access-key",
        Severity.CRITICAL,
        "Azure shared access key",
        re.compile(r"(?i)SharedAccessKey=([A-Za-z0-9+/]{30,}={0,2})"),
        "haredAccessKey=",
    ),
    _Rule(
        "secret.azure-sas",
        Severity.HIGH,
        "Azure SAS token signature",
        re.compile(
            r"[?&]sv=\d{4}-\d\d-\d\d[^\s\"']*?[?&]sig=([A-Za-z0-9%+/]{30,}(?:%3D|=){0,2})"
            r"|[?&]sig=([A-Za-z0-9%+/]{30,}(?:%3D|=){0,2})[^\s\"']*?[?&]sv=\d{4}"
        ),
        "sig=",
    ),
    _Rule(
        "secret.github-token",
        Severity.HIGH,
        "GitHub token",
        re.compile(r"\b((?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36,})\b|\b(github_pat_[A-Za-z0-9_]{50,})\b"),
        "gh",
    ),
    _Rule(
        "secret.gitlab-token",
        Severity.HIGH,
        "GitLab personal access token",
        re.compile(r"\b(glpat-[A-Za-z0-9_\-]{20,})"),
        "glpat-",
    ),
    _Rule(
        "secret.slack-token",
        Severity.HIGH,
        "Slack token",
        re.compile(r"\b(xox[abposr]-[A-Za-z0-9-]{10,})"),
        "xox",
    ),
    _Rule(
        "secret.slack-webhook",
        Severity.MEDIUM,
        "Slack webhook URL",
        re.compile(r"hooks\.slack\.com/services/(T[A-Z0-9]+/B[A-Z0-9]+/[A-Za-z0-9]{20,})"),
        "hooks.slack.com",
    ),
    _Rule(
        "secret.stripe-key",
        Severity.HIGH,
        "Stripe live secret key",
        re.compile(r"\b((?:sk|rk)_live_[A-Za-z0-9]{20,})"),
        "_live_",
    ),
    _Rule(
        "secret.openai-key",
        Severity.HIGH,
        "OpenAI API key",
        re.compile(
            r"\b(sk-(?:proj|svcacct|admin)-[A-Za-z0-9_\-]{20,})|\b(sk-[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20})"
            r"|\b(sk-[A-Za-z0-9]{48})\b"
        ),
        "sk-",
    ),
    _Rule(
        "secret.anthropic-key",
        Severity.HIGH,
        "Anthropic API key",
        re.compile(r"\b(sk-ant-[a-z0-9]{2,10}-[A-Za-z0-9_\-]{20,})"),
        "sk-ant-",
    ),
    _Rule(
        "secret.huggingface-token",
        Severity.HIGH,
        "Hugging Face token",
        re.compile(r"\b(hf_[A-Za-z0-9]{30,40})\b"),
        "hf_",
        _mixed,
    ),
    _Rule(
        "secret.google-api-key",
        Severity.HIGH,
        "Google API key",
        re.compile(r"\b(AIza[0-9A-Za-z_\-]{35})"),
        "AIza",
    ),
    _Rule(
        "secret.jwt",
        Severity.MEDIUM,
        "JSON Web Token",
        re.compile(r"\b(eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,})"),
        "eyJ",
    ),
]

_URL_PW = re.compile(
    r"\b([a-zA-Z][a-zA-Z0-9+.\-]{1,20})://([^\s:/@'\"]{1,128}):([^\s@/'\"]{1,256})@([A-Za-z0-9.\-_\[\]]+)"
)
_SECRET_WORDS = (
    r"password|passwd|passphrase|pwd|secret|token|api[_\-]?key|apikey|access[_\-]?key|"
    r"secret[_\-]?key|private[_\-]?key|client[_\-]?secret|auth[_\-]?key|credentials?|"
    r"signing[_\-]?key|encryption[_\-]?key|session[_\-]?key|bearer"
)
_ASSIGN = re.compile(
    r"(?i)(?<![A-Za-z0-9])([A-Za-z0-9_.\-]{0,40}?(?:" + _SECRET_WORDS + r"))[\"']?\s*(?:=|:|=>)\s*"
    r"(?:\"([^\"\n]{8,256})\"|'([^'\n]{8,256})'|([^\s\"',;#]{8,256}))"
)
_SECRET_KEY = re.compile(r"(?i)(?:^|[^A-Za-z0-9])?(?:" + _SECRET_WORDS + r")$")
_PLACEHOLDERS = {
    "password",
    "passwd",
    "secret",
    "changeme",
    "change_me",
    "changeit",
    "example",
    "dummy",
    "redacted",
    "placeholder",
    "your_password",
    "your_api_key",
    "your_token",
    "your_secret",
    "none",
    "null",
    "true",
    "false",
    "undefined",
    "notset",
    "not_set",
    "required",
    "optional",
    "string",
    "hidden",
    "masked",
    "secret_key",
    "api_key",
    "token",
    "test",
    "testing",
}
_UUID = re.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$")
_HEX = re.compile(r"^(?:0x)?[0-9a-fA-F]+$")
_IDENT = re.compile(r"^[a-z][a-z0-9]*(?:[_.\-][a-z0-9]+)*$|^[A-Z][A-Z0-9]*(?:[_.\-][A-Z0-9]+)*$")
_VERSIONISH = re.compile(r"^v?\d+(?:[.\-]\d+)*[a-z0-9.+\-]*$")


def redact(secret: str) -> str:
    """Evidence for a secret: a short prefix, an ellipsis and the length.

    >>> redact("ghp_abcdefghijklmnopqrstuvwxyz0123456789")
    'ghp_…(40 chars)'
    """
    keep = 4 if len(secret) >= 12 else 2
    return f"{secret[:keep]}…({len(secret)} chars)"


def _placeholder(v: str) -> bool:
    low = v.lower().strip("\"'")
    if low in _PLACEHOLDERS or low.startswith(
        (
            "your-",
            "your_",
            "<",
            "$",
            "%",
            "{",
            "[",
            "(",
            "os.",
            "env.",
            "process.env",
            "settings.",
            "config.",
            "self.",
        )
    ):
        return True
    if "${" in v or "{{" in v or "(" in v or v.endswith(("}", ">", "]")):
        return True
    if len(set(low)) <= 2:  # ******** / xxxxxxxx
        return True
    return "example" in low or "placeholder" in low or "changeme" in low or "redacted" in low


def secret_like_value(v: str) -> bool:
    """True if ``v`` looks like a real credential rather than a hash, id, word, path or placeholder.

    >>> secret_like_value("Tr0ub4dor&3xY"), secret_like_value("d41d8cd98f00b204e9800998ecf8427e")
    (True, False)
    """
    if len(v) < 8 or _placeholder(v):
        return False
    if v.isdigit() or _HEX.match(v) or _UUID.match(v) or _IDENT.match(v) or _VERSIONISH.match(v):
        return False
    if v.startswith(
        (
            "/",
            "./",
            "../",
            "~/",
            "\\",
            "file:",
            "http:",
            "https:",
            "s3:",
            "gs:",
            "hdfs:",
            "dbfs:",
            "runs:",
            "models:",
            "mlflow-artifacts:",
        )
    ):
        return False
    if re.match(r"^[A-Za-z]:\\", v) or re.match(
        r"^[\w.\-]+\.(?:ya?ml|json|txt|pkl|pt|bin|h5|csv|py|cfg|ini)$", v
    ):
        return False
    if re.match(r"^\d{4}-\d\d-\d\d", v):  # timestamps
        return False
    classes = _classes(v)
    ent = _entropy(v)
    if len(v) >= 16:
        return classes >= 2 and ent >= 3.5
    return classes >= 3 and ent >= 2.75


class _Finder:
    """Collects findings for one file; each distinct secret is reported once."""

    def __init__(self, ctx: ScanContext, path: str) -> None:
        self.ctx, self.path = ctx, path
        self.seen: set[str] = set()
        self.count = 0

    def add(
        self, where: str, sev: Severity, rule: str, what: str, secret: str, ev: str | None = None
    ) -> None:
        if secret in self.seen:
            return
        self.seen.add(secret)
        self.count += 1
        if self.count > 100:
            return
        self.ctx.report(self.path, sev, rule, f"{where}: {what}", ev if ev is not None else redact(secret))

    def text(self, where: str, line: str, key_hint: str | None = None) -> None:
        spans: list[tuple[int, int]] = []
        for r in _RULES:
            if r.marker and r.marker not in line:
                continue
            for m in r.regex.finditer(line):
                g = next((i for i in range(1, (m.lastindex or 0) + 1) if m.group(i)), 0)
                secret = m.group(g) if g else m.group(0)
                sev: Severity | None = r.severity
                if r.validate is not None:
                    override = r.validate(secret)
                    if override is Severity.INFO:
                        continue
                    sev = override or sev
                spans.append(m.span(g) if g else m.span())
                ev = secret if r.rule == "secret.private-key" else None
                self.add(where, sev, r.rule, r.what, secret, ev)
        if "://" in line:
            for m in _URL_PW.finditer(line):
                pw = m.group(3)
                if _placeholder(pw) or pw.lower() in ("pass", "pwd", "pw", "x-oauth-basic"):
                    continue
                spans.append(m.span(3))
                self.add(
                    where,
                    Severity.HIGH,
                    "secret.url-password",
                    "password in a URL",
                    pw,
                    f"{m.group(1)}://{m.group(2)[:24]}:{redact(pw)}@{m.group(4)[:60]}",
                )
        for m in _ASSIGN.finditer(line):
            g = 2 if m.group(2) is not None else 3 if m.group(3) is not None else 4
            s, e = m.span(g)
            if any(a < e and s < b for a, b in spans):
                continue
            value = m.group(g)
            if secret_like_value(value):
                self.add(
                    where,
                    Severity.MEDIUM,
                    "secret.assignment",
                    f"high-entropy value assigned to {m.group(1)[-40:]!r}",
                    value,
                )
        if key_hint is not None and _SECRET_KEY.search(key_hint) and not spans:
            v = line.strip()
            if secret_like_value(v) and " " not in v:
                self.add(
                    where,
                    Severity.MEDIUM,
                    "secret.assignment",
                    f"high-entropy value assigned to {key_hint[-40:]!r}",
                    v,
                )


def _lines(stream: IO[bytes], limit: int) -> Iterator[tuple[int, str]]:
    left = limit
    rest = b""
    lineno = 0
    while left > 0:
        b = stream.read(min(1 << 20, left))
        if not b:
            break
        left -= len(b)
        buf = rest + b
        parts = buf.split(b"\n")
        rest = parts.pop()
        for p in parts:
            lineno += 1
            yield lineno, p[:MAX_LINE].decode("utf-8", "replace")
        if len(rest) > MAX_LINE:
            lineno += 1
            yield lineno, rest[:MAX_LINE].decode("utf-8", "replace")
            rest = b""
    if rest:
        lineno += 1
        yield lineno, rest.decode("utf-8", "replace")


def scan_text(ctx: ScanContext, path: str, stream: IO[bytes], size: int) -> None:
    """Look for secrets in a text file, line by line, up to ``ctx.limits.max_text_scan`` bytes.

    >>> import io
    >>> from mlflow_plugin.scanner.api import _new_context
    >>> ctx = _new_context("x.py", None, None)
    >>> data = b"import os\\nurl = 'postgres://ml:S3cr3t-Pw_9@db.internal/x'\\n"
    >>> scan_text(ctx, "x.py", io.BytesIO(data), len(data))
    >>> [(f.rule, f.message, f.evidence) for f in ctx.report_obj.findings]
    [('secret.url-password', 'line 2: password in a URL', 'postgres://ml:S3…(11 chars)@db.internal')]
    """
    f = _Finder(ctx, path)
    limit = ctx.limits.max_text_scan
    first: list[str] = []
    for lineno, line in _lines(stream, limit):
        f.text(f"line {lineno}", line)
        if lineno <= 2:
            first.append(line)
    if size <= 4096 and len(first) == 1 and first[0].strip():
        # a one-value file named like a secret: MLflow's file store keeps each param as
        # <run>/params/<name> holding just the value (e.g. params/aws_secret_access_key)
        name = path.split("!")[-1].rsplit("/", 1)[-1]
        scan_params(ctx, path, {name: first[0].strip()})
    if size > limit:
        ctx.report(
            path,
            Severity.INFO,
            "secret.partial",
            f"only the first {limit} bytes were checked for secrets",
            f"size={size}",
        )


def scan_json(ctx: ScanContext, path: str, stream: IO[bytes], size: int) -> None:
    """Secrets in a JSON file: line rules, then key/value rules and GCP service-account keys.

    >>> import io, json
    >>> from mlflow_plugin.scanner.api import _new_context
    >>> doc = json.dumps({"type": "service_account", "client_email": "a@b.iam.gserviceaccount.com",
    ...                   "private_key": "-----BEGIN PRIVATE KEY-----\\nMIIE\\n-----END PRIVATE KEY-----\\n"})
    >>> ctx = _new_context("sa.json", None, None)
    >>> scan_json(ctx, "sa.json", io.BytesIO(doc.encode()), len(doc))
    >>> sorted(f.rule for f in ctx.report_obj.findings)
    ['secret.gcp-service-account']
    """
    limit = ctx.limits.max_text_scan
    data = stream.read(min(size, limit) if size >= 0 else limit)
    f = _Finder(ctx, path)
    obj: Any = None
    try:
        obj = json.loads(data)
    except (ValueError, RecursionError):
        obj = None
    if obj is not None:
        _walk_json(f, obj, "", 0)
    for lineno, line in _lines(_BytesReader(data), len(data)):
        f.text(f"line {lineno}", line)
    if size > limit:
        ctx.report(
            path,
            Severity.INFO,
            "secret.partial",
            f"only the first {limit} bytes were checked for secrets",
            f"size={size}",
        )


class _BytesReader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def read(self, n: int = -1) -> bytes:
        if n < 0:
            n = len(self.data) - self.pos
        out = self.data[self.pos : self.pos + n]
        self.pos += len(out)
        return out


def _walk_json(f: _Finder, obj: Any, keypath: str, depth: int) -> None:
    if depth > 100:
        return
    if isinstance(obj, dict):
        if (
            obj.get("type") == "service_account"
            and isinstance(obj.get("private_key"), str)
            and "PRIVATE KEY" in obj["private_key"]
        ):
            pk = obj["private_key"]
            for m in _RULES[0].regex.finditer(pk):
                f.seen.add(m.group(1))
            email = str(obj.get("client_email", ""))
            f.add(
                keypath or "document",
                Severity.CRITICAL,
                "secret.gcp-service-account",
                "Google Cloud service-account key with its private key",
                pk,
                f"client_email={email.split('@')[0][:4]}…@{email.split('@')[-1][:60]}",
            )
        for k, v in obj.items():
            kp = f"{keypath}.{k}" if keypath else str(k)
            if isinstance(v, str):
                if isinstance(k, str) and _SECRET_KEY.search(k) and secret_like_value(v) and " " not in v:
                    f.text(f"key {kp[-60:]!r}", v, key_hint=k)
                elif len(v) >= 8:
                    f.text(f"key {kp[-60:]!r}", v)
            else:
                _walk_json(f, v, kp, depth + 1)
    elif isinstance(obj, list):
        for i, v in enumerate(obj[:100_000]):
            if isinstance(v, str):
                if len(v) >= 8:
                    f.text(f"key {keypath[-60:]}[{i}]", v)
            else:
                _walk_json(f, v, f"{keypath}[{i}]", depth + 1)


def scan_params(ctx: ScanContext, path: str, mapping: Mapping[str, Any]) -> None:
    """Check MLflow params/tags (or any str→value mapping) for secrets; findings name the key.

    >>> from mlflow_plugin.scanner.api import _new_context
    >>> ctx = _new_context("run", None, None)
    >>> scan_params(ctx, "run/params", {"db_password": "Xk9#mQ2$vL7!", "n_estimators": "100"})
    >>> [(f.rule, f.message) for f in ctx.report_obj.findings]
    [('secret.assignment', "param 'db_password': high-entropy value assigned to 'db_password'")]
    """
    f = _Finder(ctx, path)
    for k, v in mapping.items():
        s = v if isinstance(v, str) else json.dumps(v, default=str) if isinstance(v, dict | list) else str(v)
        f.text(f"param {str(k)[:60]!r}", s[:MAX_LINE], key_hint=str(k))


Labeler = Callable[[str], tuple[str, str]]
"""``label(keypath) -> (what holds it, how to fix it)`` for :func:`scan_document`."""

_OPAQUE_KEYS = frozenset({"content", "digest"})  # base64 payloads under their own digest; hex digests


def _field_label(keypath: str) -> tuple[str, str]:
    return f"field {keypath[-80:]!r}", ""


class _DocFinder(_Finder):
    """A :class:`_Finder` for one metadata document: a path per leaf, a severity floor, shared dedup."""

    def __init__(self, ctx: ScanContext, floor: Severity, seen: set[tuple[str, str]]) -> None:
        super().__init__(ctx, "")
        self.floor, self.shared = floor, seen
        self.advice = ""

    def add(
        self, where: str, sev: Severity, rule: str, what: str, secret: str, ev: str | None = None
    ) -> None:
        if (secret, where) in self.shared:
            return
        self.shared.add((secret, where))
        self.count += 1
        if self.count > 100:
            return
        if Severity.LOW < sev < self.floor:
            sev = self.floor
        msg = f"{where}: {what}" + (f"; {self.advice}" if self.advice else "")
        self.ctx.report(self.path, sev, rule, msg, ev if ev is not None else redact(secret))


def scan_document(
    ctx: ScanContext,
    source: str,
    doc: Any,
    label: Labeler | None = None,
    floor: Severity = Severity.HIGH,
    seen: set[tuple[str, str]] | None = None,
) -> None:
    """Secrets in a metadata document that is about to be published: a Kitfile config, a provenance
    statement, an ML-BOM, a run's params and tags (any JSON-like value).

    Every string is checked with the token rules and, under a secret-sounding key, as an assignment
    (like :func:`scan_params`). A finding's path is ``<source>:<keypath>`` (dict keys joined by ``.``,
    list items ``[i]``, CycloneDX-style ``{"name": n, "value": v}`` properties ``[n]``); its message
    starts with ``label(keypath)[0]`` (what holds the secret, e.g. ``param 'note'``) and ends with
    ``label(keypath)[1]`` (how to fix it). Published bytes are public: a medium finding is raised to
    ``floor`` (low ones, such as documented example keys, stay low). A secret is reported once per
    label across the calls that share ``seen``. Evidence is masked like everywhere else
    (:func:`redact`); ``content`` and ``digest`` values (base64 payloads, hex digests) are skipped.

    >>> from mlflow_plugin.scanner.api import _new_context
    >>> ctx = _new_context("metadata", None, None)
    >>> doc = {"model": {"parameters": {"lr": "0.1", "note": "AKIA" + "Q" * 16}}}
    >>> scan_document(ctx, "kitfile", doc, label=lambda kp: (f"param {kp.rsplit('.', 1)[-1]!r}", "fix it"))
    >>> [(f.path, str(f.severity), f.message, f.evidence) for f in ctx.report_obj.findings]
    [('kitfile:model.parameters.note', 'high', "param 'note': AWS access key id; fix it", 'AKIA…(20 chars)')]
    """
    f = _DocFinder(ctx, floor, seen if seen is not None else set())
    _walk_doc(f, source, doc, "", label or _field_label, 0, None)


def _walk_doc(
    f: _DocFinder, source: str, obj: Any, keypath: str, label: Labeler, depth: int, key: str | None
) -> None:
    if depth > 100:
        return
    if isinstance(obj, str):
        if len(obj) < 8:
            return
        f.path = f"{source}:{keypath}" if keypath else source
        where, f.advice = label(keypath)
        f.text(where, obj[:MAX_LINE], key_hint=key)
    elif isinstance(obj, Mapping):
        for k, v in obj.items():
            if k in _OPAQUE_KEYS:
                continue
            _walk_doc(f, source, v, f"{keypath}.{k}" if keypath else str(k), label, depth + 1, str(k))
    elif isinstance(obj, list | tuple):
        for i, v in enumerate(obj[:100_000]):
            if isinstance(v, Mapping) and set(v) == {"name", "value"} and isinstance(v["name"], str):
                # a CycloneDX-style property: named by its name, the name is the key hint
                _walk_doc(f, source, v["value"], f"{keypath}[{v['name']}]", label, depth + 1, v["name"])
            else:
                _walk_doc(f, source, v, f"{keypath}[{i}]", label, depth + 1, key)
