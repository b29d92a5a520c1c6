"""Every route of ``jupyter_ext`` requires authentication, and POSTs require the XSRF token.

* the template's ``check_auth`` check: a ``ServerApp`` that forbids unauthenticated access warns
  (``JupyterServerAuthWarning``) about every handler verb without an auth decorator;
* requests without a token are refused (403) on a GET and a POST route;
* a cookie-authenticated POST without the XSRF token is refused, the same POST with it is not.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Awaitable, Callable
from http.cookies import SimpleCookie
from typing import Any

import pytest
from jupyter_server.serverapp import ServerApp
from jupyter_server.utils import JupyterServerAuthWarning

Fetch = Callable[..., Awaitable[Any]]
NS = "mlflow-modelkit"


def test_every_handler_verb_is_authenticated(jp_environ: None) -> None:
    app = ServerApp(
        allow_unauthenticated_access=False,
        jpserver_extensions={"jupyter_ext": True},
        reraise_server_extension_failures=True,
    )
    with warnings.catch_warnings(record=True) as records:
        warnings.simplefilter("always")
        app.initialize(argv=[], find_extensions=False, new_httpserver=False)
    problems = [str(r.message) for r in records if issubclass(r.category, JupyterServerAuthWarning)]
    assert problems == []
    # the extension really loaded: its routes are in the app
    patterns = [
        r.matcher.regex.pattern for rule in app.web_app.default_router.rules for r in rule.target.rules
    ]
    ours = [p for p in patterns if f"/{NS}/" in p]
    assert len(ours) == 10, ours
    ServerApp.clear_instance()


async def _status(fetch: Fetch, *parts: str, **kwargs: Any) -> tuple[int, dict[str, Any]]:
    r = await fetch(*parts, raise_error=False, **kwargs)
    return r.code, json.loads(r.body or b"{}")


@pytest.mark.parametrize(
    ("method", "route", "body"),
    [
        ("GET", "settings", None),
        ("GET", "jobs", None),
        ("POST", "verify", json.dumps({"reference": "oci:/tmp/x:v1"})),
        ("POST", "publish", json.dumps({"run_id": "0" * 32, "tag": "v1"})),
    ],
)
async def test_no_token_is_refused(jp_fetch: Fetch, method: str, route: str, body: str | None) -> None:
    code, payload = await _status(
        jp_fetch, NS, route, method=method, body=body, headers={"Authorization": ""}
    )
    assert code in (401, 403)
    assert set(payload) == {"error"} and "\n" not in payload["error"]


def _cookies(response: Any) -> dict[str, str]:
    jar: SimpleCookie = SimpleCookie()
    for header in response.headers.get_list("Set-Cookie"):
        jar.load(header)
    return {k: m.value for k, m in jar.items()}


async def test_cookie_post_without_xsrf_is_refused(jp_fetch: Fetch) -> None:
    # a token-authenticated request sets the login cookie; the login page sets the _xsrf cookie
    first = await jp_fetch(NS, "settings")
    login_cookie = {k: v for k, v in _cookies(first).items() if k.startswith("username-")}
    assert login_cookie, "the server set no login cookie"
    page = await jp_fetch("login", raise_error=False, headers={"Authorization": ""})
    xsrf = _cookies(page)["_xsrf"]
    cookie = "; ".join(f"{k}={v}" for k, v in login_cookie.items())
    bad_ref = json.dumps({"reference": "not a reference!!"})

    # cookie only: authenticated, but no XSRF token -> refused before the handler runs
    no_xsrf = {"Authorization": "", "Cookie": cookie}
    code, payload = await _status(jp_fetch, NS, "verify", method="POST", body=bad_ref, headers=no_xsrf)
    assert code == 403, payload
    assert "xsrf" in payload["error"].lower()

    # the same POST with the XSRF cookie and header reaches the handler (which rejects the input)
    with_xsrf = {"Authorization": "", "Cookie": f"{cookie}; _xsrf={xsrf}", "X-XSRFToken": xsrf}
    code, payload = await _status(jp_fetch, NS, "verify", method="POST", body=bad_ref, headers=with_xsrf)
    assert code == 400, payload
    assert payload["error"].startswith("invalid reference")

    # a cookie-authenticated GET needs no XSRF token
    code, _ = await _status(jp_fetch, NS, "jobs", headers={"Authorization": "", "Cookie": cookie})
    assert code == 200
