"""The sign-in page: a server-rendered form that asks a person for their API key.

No JavaScript, no template engine: every value is HTML-escaped here.  The form
posts back to the authorization endpoint with the OAuth request in hidden
fields and a CSRF value bound to a ``SameSite=Strict`` cookie, so a cross-site
POST (which carries no such cookie) never gets a code.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from html import escape
from string import Template
from urllib.parse import urlsplit

from werkzeug.wrappers import Request, Response

from ..keys.model import secret_bytes
from .urls import origin_of

CSRF_COOKIE = "mcp_oauth_csrf"
CSRF_FIELD = "csrf_token"
#: The OAuth request parameters carried from the GET to the POST.
CARRIED = (
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
    "resource",
)

_STYLE = (
    "body{font-family:system-ui,sans-serif;background:#f4f5f7;margin:0;padding:2rem}"
    "main{max-width:28rem;margin:auto;background:#fff;border-radius:8px;padding:1.5rem 2rem;"
    "box-shadow:0 1px 4px rgba(0,0,0,.15)}h1{font-size:1.3rem}label{display:block;"
    "margin:1rem 0 .3rem;font-weight:600}input[type=password]{width:100%;padding:.5rem;"
    "box-sizing:border-box;font-size:1rem}.who{background:#f0f3f8;padding:.6rem .8rem;"
    "border-radius:6px}.note{color:#555;font-size:.85rem}.error{color:#a40000;"
    "font-weight:600}.buttons{margin-top:1.2rem;display:flex;gap:.6rem}button{padding:.5rem "
    "1.1rem;font-size:1rem}"
)


class CsrfGuard:
    """Double-submit CSRF check: the form value is an HMAC of the cookie's random value."""

    def __init__(self, secret: str | bytes, secure: bool, path: str) -> None:
        self._key = hashlib.sha256(b"flask-mcp-auth.oauth.csrf:" + secret_bytes(secret)).digest()
        self._secure = secure  # never Secure on an http:// loopback issuer: it would not be sent
        self._path = path

    def issue(self, request: Request) -> tuple[str, str | None]:
        """(form value, new cookie value or None when the browser's cookie is kept)."""
        cookie = request.cookies.get(CSRF_COOKIE)
        fresh = None
        if not cookie or len(cookie) > 100:
            cookie = fresh = secrets.token_urlsafe(32)
        return self._token(cookie), fresh

    def check(self, request: Request) -> bool:
        cookie = request.cookies.get(CSRF_COOKIE)
        presented = request.form.get(CSRF_FIELD, "")
        if not cookie or not presented or len(cookie) > 100:
            return False
        return hmac.compare_digest(
            self._token(cookie).encode(), presented.encode("utf-8", "replace")
        )

    def set_cookie(self, response: Response, value: str) -> None:
        response.set_cookie(
            CSRF_COOKIE,
            value,
            max_age=3600,
            path=self._path,
            secure=self._secure,
            httponly=True,
            samesite="Strict",
        )

    def _token(self, cookie: str) -> str:
        return hmac.new(self._key, cookie.encode(), hashlib.sha256).hexdigest()


def page_headers(response: Response, redirect_uri: str | None) -> Response:
    """No caching, no framing; ``form-action`` admits the redirect after the POST."""
    form_action = "'self'"
    if redirect_uri:
        form_action += " " + origin_of(redirect_uri)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    # Not "no-referrer": under it browsers send "Origin: null" with the form's own POST,
    # which the origin check must refuse.  "same-origin" still sends no referrer elsewhere.
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; "
        f"form-action {form_action}; frame-ancestors 'none'; base-uri 'none'"
    )
    return response


_FORM = Template(
    """<!doctype html><html lang=en><head><meta charset=utf-8>
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>Sign in with your API key</title><style>$style</style></head><body><main>
<h1>Sign in with your API key</h1>
<div class="who"><strong id="client-name">$who</strong>
<span class="note">(name declared by the application itself)</span><br>
wants to connect to this MCP server and will be sent back to
<strong id="redirect-host">$host</strong>.</div>
<p class="note">Client id: <code>$client_id</code></p>
$asked$error
<form method="post" action="$action">$hidden
<label for="api_key">API key</label>
<input type="password" id="api_key" name="api_key" autocomplete="off" autofocus>
<p class="note">Only approve if you started this connection. The application gets the role,
permissions and limits of this key, never the key itself.</p>
<div class="buttons">
<button type="submit" id="approve" name="decision" value="approve">Approve</button>
<button type="submit" id="deny" name="decision" value="deny">Deny</button></div>
</form></main></body></html>"""
)


def render_form(
    action: str,
    fields: dict[str, str],
    csrf_value: str,
    client_name: str | None,
    client_id: str,
    redirect_uri: str,
    scopes: str,
    message: str | None = None,
) -> str:
    """The sign-in form; ``fields`` are the OAuth parameters, carried hidden."""
    hidden = "".join(
        f'<input type="hidden" name="{escape(name)}" value="{escape(value)}">'
        for name, value in fields.items()
        if name in CARRIED and value
    )
    hidden += f'<input type="hidden" name="{CSRF_FIELD}" value="{escape(csrf_value)}">'
    shown_id = client_id if len(client_id) <= 80 else client_id[:80] + "…"
    asked = (
        f'<p class="note">It asks for: <code>{escape(scopes)}</code> '
        "(limited to what your key allows).</p>"
        if scopes
        else ""
    )
    return _FORM.substitute(
        style=_STYLE,
        who=escape(client_name) if client_name else "An unnamed application",
        host=escape(urlsplit(redirect_uri).netloc),
        client_id=escape(shown_id),
        asked=asked,
        error=f'<p class="error" role="alert">{escape(message)}</p>' if message else "",
        action=escape(action),
        hidden=hidden,
    )


def render_error(title: str, message: str) -> str:
    """A page for a request that cannot be sent back to any client."""
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body><main>"
        f'<h1>{escape(title)}</h1><p class="error" role="alert">{escape(message)}</p>'
        "</main></body></html>"
    )


__all__ = [
    "CARRIED",
    "CSRF_COOKIE",
    "CSRF_FIELD",
    "CsrfGuard",
    "page_headers",
    "render_error",
    "render_form",
]
