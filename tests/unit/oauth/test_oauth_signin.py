"""The sign-in page: the CSRF guard, the security headers, and a form that escapes
everything a client or a request can put in it."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

import pytest
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request, Response

from flask_mcp_auth.oauth.signin import (
    CARRIED,
    CSRF_COOKIE,
    CSRF_FIELD,
    CsrfGuard,
    page_headers,
    render_error,
    render_form,
)

SECRET = "signin-test-secret-0123456789abcdef"
GUARD = CsrfGuard(SECRET, secure=False, path="/authorize")
HOSTILE = '"><script>alert(1)</script><img src=x onerror=alert(2)>'


def request_with(cookie: str | None = None, field: str | None = None) -> Request:
    headers = {"Cookie": f"{CSRF_COOKIE}={cookie}"} if cookie is not None else {}
    data = {CSRF_FIELD: field} if field is not None else {}
    return Request(EnvironBuilder(method="POST", headers=headers, data=data).get_environ())


# -- CsrfGuard ------------------------------------------------------------------------------


def test_a_browser_without_the_cookie_gets_a_fresh_one_and_its_form_value() -> None:
    value, fresh = GUARD.issue(request_with())
    assert fresh is not None and len(fresh) >= 40
    assert GUARD.check(request_with(fresh, value))


def test_a_browser_with_the_cookie_keeps_it() -> None:
    value, fresh = GUARD.issue(request_with("cookie-value-123"))
    assert fresh is None
    assert GUARD.check(request_with("cookie-value-123", value))


def test_every_fresh_cookie_is_new() -> None:
    assert GUARD.issue(request_with())[1] != GUARD.issue(request_with())[1]


def test_the_cookie_without_the_field_is_refused() -> None:
    assert not GUARD.check(request_with("cookie-value-123"))
    assert not GUARD.check(request_with("cookie-value-123", ""))


def test_the_field_without_the_cookie_is_refused() -> None:
    value, _ = GUARD.issue(request_with("cookie-value-123"))
    assert not GUARD.check(request_with(None, value))
    assert not GUARD.check(request_with("", value))


def test_a_wrong_field_value_is_refused() -> None:
    value, _ = GUARD.issue(request_with("cookie-value-123"))
    assert not GUARD.check(
        request_with("cookie-value-123", value[:-1] + "0" if value[-1] != "0" else value[:-1] + "1")
    )
    assert not GUARD.check(request_with("cookie-value-123", "cookie-value-123"))
    assert not GUARD.check(request_with("another-cookie", value))
    assert not GUARD.check(request_with("cookie-value-123", "é" * 64))


def test_another_secret_makes_other_form_values() -> None:
    value, _ = GUARD.issue(request_with("cookie-value-123"))
    other = CsrfGuard(SECRET + "x", secure=False, path="/authorize")
    assert not other.check(request_with("cookie-value-123", value))


def test_a_long_cookie_is_replaced_and_never_accepted() -> None:
    long_cookie = "c" * 101
    _, fresh = GUARD.issue(request_with(long_cookie))
    assert fresh is not None and fresh != long_cookie
    assert not GUARD.check(request_with(long_cookie, GUARD._token(long_cookie)))
    at_limit = "c" * 100
    assert GUARD.issue(request_with(at_limit))[1] is None
    assert GUARD.check(request_with(at_limit, GUARD._token(at_limit)))


@pytest.mark.parametrize(("secure", "flag"), [(True, True), (False, False)])
def test_the_cookie_is_strict_http_only_on_the_authorize_path(secure: bool, flag: bool) -> None:
    response = Response()
    CsrfGuard(SECRET, secure=secure, path="/authorize").set_cookie(response, "v")
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith(f"{CSRF_COOKIE}=v;")
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    assert "Path=/authorize" in cookie
    assert ("Secure" in cookie) is flag


# -- page_headers ---------------------------------------------------------------------------


def csp_of(response: Response) -> dict[str, str]:
    directives = (d.strip() for d in response.headers["Content-Security-Policy"].split(";"))
    return {name: rest for name, _, rest in (d.partition(" ") for d in directives if d)}


def test_the_page_is_never_cached_framed_or_sniffed() -> None:
    response = page_headers(Response(), "https://claude.ai/api/mcp/auth_callback")
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Pragma"] == "no-cache"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    # Never "no-referrer": browsers would then send the form's POST with "Origin: null".
    assert response.headers["Referrer-Policy"] == "same-origin"
    csp = csp_of(response)
    assert csp["frame-ancestors"] == "'none'"
    assert csp["default-src"] == "'none'"
    assert "script-src" not in csp  # no scripts at all (default-src 'none')


@pytest.mark.parametrize(
    ("redirect_uri", "origin"),
    [
        ("https://claude.ai/api/mcp/auth_callback", "https://claude.ai"),
        ("https://chatgpt.com/connector/oauth/abc?x=1", "https://chatgpt.com"),
        ("http://127.0.0.1:53117/callback", "http://127.0.0.1:53117"),
    ],
)
def test_form_action_admits_self_and_the_redirect_origin(redirect_uri: str, origin: str) -> None:
    csp = csp_of(page_headers(Response(), redirect_uri))
    assert csp["form-action"].split() == ["'self'", origin]


def test_without_a_redirect_form_action_is_self_only() -> None:
    assert csp_of(page_headers(Response(), None))["form-action"] == "'self'"
    assert csp_of(page_headers(Response(), ""))["form-action"] == "'self'"


# -- render_form ----------------------------------------------------------------------------


class Inputs(HTMLParser):
    """Every <input> of a page, and every element's text, parsed back."""

    def __init__(self) -> None:
        super().__init__()
        self.inputs: list[dict[str, str | None]] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag == "input":
            self.inputs.append(dict(attrs))


def parse(page: str) -> Inputs:
    parser = Inputs()
    parser.feed(page)
    return parser


FIELDS = {
    "response_type": "code",
    "client_id": "mcpc_abc",
    "redirect_uri": "http://127.0.0.1:5000/cb?a=1&b=2",
    "scope": "read tools:echo",
    "state": "st-123",
    "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
    "code_challenge_method": "S256",
    "resource": "http://127.0.0.1:3210/mcp",
}


def form(**changes: Any) -> str:
    arguments: dict[str, Any] = {
        "action": "/authorize",
        "fields": dict(FIELDS),
        "csrf_value": "csrf-abc",
        "client_name": "Example Client",
        "client_id": "mcpc_abc",
        "redirect_uri": FIELDS["redirect_uri"],
        "scopes": "read tools:echo",
    }
    arguments.update(changes)
    return render_form(**arguments)


def test_the_form_carries_every_field_hidden_and_asks_for_api_key() -> None:
    page = parse(form())
    hidden = {i["name"]: i["value"] for i in page.inputs if i.get("type") == "hidden"}
    assert hidden == {**FIELDS, CSRF_FIELD: "csrf-abc"}
    assert set(CARRIED) <= set(hidden)
    [secret] = [i for i in page.inputs if i.get("type") == "password"]
    assert secret["name"] == "api_key"
    assert secret["id"] == "api_key"
    assert secret["autocomplete"] == "off"


def test_the_form_posts_to_the_action_with_approve_and_deny() -> None:
    page = form()
    assert '<form method="post" action="/authorize">' in page
    assert re.search(r'<button[^>]*id="approve"[^>]*name="decision"[^>]*value="approve"', page)
    assert re.search(r'<button[^>]*id="deny"[^>]*name="decision"[^>]*value="deny"', page)
    assert 'id="client-name">Example Client<' in page
    assert 'id="redirect-host">127.0.0.1:5000<' in page


def test_fields_that_are_not_oauth_parameters_or_empty_are_not_carried() -> None:
    fields = {**FIELDS, "api_key": "leaked", "decision": "approve", "extra": "x", "state": ""}
    hidden = {i["name"] for i in parse(form(fields=fields)).inputs if i.get("type") == "hidden"}
    assert hidden == (set(FIELDS) - {"state"}) | {CSRF_FIELD}


@pytest.mark.parametrize(
    "where",
    ["client_name", "state", "scope", "redirect_uri", "client_id", "message", "csrf", "action"],
)
def test_hostile_values_are_escaped_everywhere(where: str) -> None:
    fields = dict(FIELDS)
    changes: dict[str, Any] = {"fields": fields}
    if where == "client_name":
        changes["client_name"] = HOSTILE
    elif where in ("state", "scope"):
        fields[where] = HOSTILE
        changes["scopes"] = HOSTILE if where == "scope" else "read"
    elif where == "redirect_uri":
        fields["redirect_uri"] = changes["redirect_uri"] = f"https://x{HOSTILE}/cb"
    elif where == "client_id":
        fields["client_id"] = changes["client_id"] = "mcpc_" + HOSTILE
    elif where == "message":
        changes["message"] = HOSTILE
    elif where == "csrf":
        changes["csrf_value"] = HOSTILE
    else:
        changes["action"] = "/authorize" + HOSTILE
    page = form(**changes)
    assert "<script" not in page
    assert "<img" not in page
    assert "onerror=alert(2)>" not in page
    parsed = parse(page)
    assert "script" not in parsed.tags and "img" not in parsed.tags
    if where in ("state", "scope", "client_id", "redirect_uri"):
        values = [i["value"] for i in parsed.inputs if i.get("name") == where]
        assert len(values) == 1 and HOSTILE in (values[0] or "")  # carried intact, unescaped


def test_an_unnamed_client_is_called_so() -> None:
    assert 'id="client-name">An unnamed application<' in form(client_name=None)
    assert 'id="client-name">An unnamed application<' in form(client_name="")


def test_a_long_client_id_is_shortened_on_the_page_only() -> None:
    long_id = "mcpc_" + "a" * 200
    page = form(client_id=long_id, fields={**FIELDS, "client_id": long_id})
    assert f"<code>{long_id[:80]}…</code>" in page
    hidden = [i["value"] for i in parse(page).inputs if i.get("name") == "client_id"]
    assert hidden == [long_id]


def test_the_error_message_appears_only_when_given() -> None:
    assert 'role="alert"' not in form()
    assert '<p class="error" role="alert">That API key was not accepted</p>' in form(
        message="That API key was not accepted"
    )


def test_the_asked_scopes_appear_only_when_some_are_asked() -> None:
    assert "It asks for" not in form(scopes="")
    assert "<code>read tools:echo</code>" in form()


def test_the_error_page_escapes_title_and_message() -> None:
    page = render_error(HOSTILE, HOSTILE)
    assert "<script" not in page and "<img" not in page
    assert "&lt;script&gt;" in page
