"""One OAuth sign-in, step by step, through a Flask test client (for the OAuth test suites).

``register`` -> ``authorize_page`` (GET /authorize, the form and its CSRF value) ->
``sign_in`` (POST /authorize, the 302 back with a code) -> ``exchange`` (POST /token).
Each step returns the raw response too, so hostile tests can look at what came back.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import zlib
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from flask.testing import FlaskClient
from werkzeug.test import TestResponse

ISSUER = "http://127.0.0.1:8765"
SECRET = "oauth-test-secret-0123456789abcdef-0123456789"
CHATGPT_REDIRECT = "https://chatgpt.com/connector_platform_oauth_redirect"
CLAUDE_REDIRECT = "https://claude.ai/api/mcp/auth_callback"

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def oauth_config(**overrides: Any) -> dict[str, Any]:
    """App config turning the sign-in on for ``ISSUER`` (keyword arguments win)."""
    config: dict[str, Any] = {"MCP_OAUTH_ISSUER": ISSUER, "JWT_SECRET": SECRET}
    config.update(overrides)
    return config


def pkce_pair() -> tuple[str, str]:
    """(code_verifier, S256 code_challenge)."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@dataclass
class Registered:
    client_id: str
    redirect_uri: str
    client_secret: str | None
    body: dict[str, Any]


@dataclass
class Page:
    """The sign-in form: its status, the CSRF value and the fields it carries."""

    response: TestResponse
    csrf: str | None
    params: dict[str, str] = field(default_factory=dict)


def register(
    client: FlaskClient,
    redirect_uri: str = CHATGPT_REDIRECT,
    method: str = "none",
    **extra: Any,
) -> Registered:
    """POST /register a client; asserts 201."""
    document: dict[str, Any] = {
        "client_name": "Test Client",
        "redirect_uris": [redirect_uri],
        "token_endpoint_auth_method": method,
        **extra,
    }
    response = client.post("/register", json=document)
    assert response.status_code == 201, response.get_data(as_text=True)
    body = response.get_json()
    return Registered(body["client_id"], redirect_uri, body.get("client_secret"), body)


def authorize_params(reg: Registered, challenge: str, **extra: str | None) -> dict[str, str]:
    """The /authorize query of ChatGPT's first sign-in; ``None`` in ``extra`` removes a name."""
    params = {
        "response_type": "code",
        "client_id": reg.client_id,
        "redirect_uri": reg.redirect_uri,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "state": "st-1",
        "resource": ISSUER + "/mcp",
    }
    for name, value in extra.items():
        if value is None:
            params.pop(name, None)
        else:
            params[name] = value
    return params


def authorize_page(client: FlaskClient, params: dict[str, str]) -> Page:
    """GET /authorize; the CSRF value is None when no form was rendered."""
    response = client.get("/authorize", query_string=params)
    match = _CSRF.search(response.get_data(as_text=True))
    return Page(response, match.group(1) if match else None, params)


def sign_in(
    client: FlaskClient,
    page: Page,
    api_key: str,
    decision: str = "approve",
    headers: dict[str, str] | None = None,
    csrf: str | None = "",
) -> TestResponse:
    """POST the form back (``csrf=None`` leaves the value out; ``""`` uses the page's)."""
    form = dict(page.params)
    form.update(api_key=api_key, decision=decision)
    value = page.csrf if csrf == "" else csrf
    if value is not None:
        form["csrf_token"] = value
    return client.post("/authorize", data=form, headers=headers or {})


def redirect_params(response: TestResponse) -> dict[str, str]:
    """The query of a 302's Location, one value per name."""
    assert response.status_code == 302, response.get_data(as_text=True)
    query = parse_qs(urlsplit(response.headers["Location"]).query)
    return {name: values[0] for name, values in query.items()}


def code_for(
    client: FlaskClient, reg: Registered, api_key: str, **extra: str | None
) -> tuple[str, str]:
    """(code, verifier) after a full sign-in with ``api_key``."""
    verifier, challenge = pkce_pair()
    page = authorize_page(client, authorize_params(reg, challenge, **extra))
    assert page.response.status_code == 200, page.response.get_data(as_text=True)
    return redirect_params(sign_in(client, page, api_key))["code"], verifier


def exchange(
    client: FlaskClient,
    reg: Registered,
    code: str,
    verifier: str | None,
    **extra: str | None,
) -> TestResponse:
    """POST /token with the authorization code (``verifier=None`` leaves it out)."""
    form: dict[str, str] = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": reg.redirect_uri,
        "client_id": reg.client_id,
        "resource": ISSUER + "/mcp",
    }
    if verifier is not None:
        form["code_verifier"] = verifier
    for name, value in extra.items():
        if value is None:
            form.pop(name, None)
        else:
            form[name] = value
    return client.post("/token", data=form)


def refresh(client: FlaskClient, token: str, client_id: str | None, **extra: str) -> TestResponse:
    form = {"grant_type": "refresh_token", "refresh_token": token, **extra}
    if client_id is not None:
        form["client_id"] = client_id
    return client.post("/token", data=form)


def tokens_for(
    client: FlaskClient, reg: Registered, api_key: str, resource: str = ISSUER + "/mcp"
) -> dict[str, Any]:
    """The token response of a full sign-in for ``resource``; asserts 200."""
    code, verifier = code_for(client, reg, api_key, resource=resource)
    response = exchange(client, reg, code, verifier, resource=resource)
    assert response.status_code == 200, response.get_data(as_text=True)
    body: dict[str, Any] = response.get_json()
    return body


def _b64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def decode_signed(value: str) -> str:
    """The readable payload of an itsdangerous value or JWT (codes, refresh tokens,
    client ids without ``mcpc_``, access tokens): what anyone holding it can read."""
    value = value.removeprefix("mcpc_")
    if value.count(".") == 2 and value.startswith("eyJ"):
        header, payload, _ = value.split(".")
        return _b64(header).decode() + json.dumps(json.loads(_b64(payload)))
    compressed = value.startswith(".")
    payload = value.lstrip(".").split(".")[0]
    raw = _b64(payload)
    return (zlib.decompress(raw) if compressed else raw).decode("utf-8")
