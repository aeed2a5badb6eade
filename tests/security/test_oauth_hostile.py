"""The OAuth sign-in against hostile clients: PKCE, codes, redirects, refresh tokens,
forged access tokens, registration documents, the sign-in form, the key never leaking,
revocation, scopes, and the one-time marks' storage going away.

Whatever is sent: never a 500, never a code or token where none is due, never a 302
to a URI that is not registered and allowed, never the API key in anything sent back
or logged."""

from __future__ import annotations

import base64
import json
import logging
import time
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from joserfc import jwt
from joserfc.jwk import OctKey
from support.keyfiles import write_atomically
from support.oauth_flow import (
    CHATGPT_REDIRECT,
    ISSUER,
    SECRET,
    Page,
    Registered,
    authorize_page,
    authorize_params,
    code_for,
    decode_signed,
    exchange,
    oauth_config,
    pkce_pair,
    redirect_params,
    refresh,
    register,
    sign_in,
    tokens_for,
)
from support.servers import RedisServer
from werkzeug.test import TestResponse

from flask_mcp_auth import generate_api_key, require_permission
from flask_mcp_auth.audit import flush as flush_audit_lines
from flask_mcp_auth.oauth import tokens as oauth_tokens

pytestmark = pytest.mark.usefixtures("clean_logging")

KEY = "hostile-plain-key-5f2c9a7e31"
KEYS: dict[str, Any] = {
    KEY: {
        "name": "Reader Writer",
        "userId": "rw",
        "role": "user",
        "permissions": ["read", "write"],
    },
}
RPC = {"jsonrpc": "2.0", "id": 7, "method": "tools/list"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    return make_app(KEYS, **oauth_config(MCP_DEFAULT_ROLE=""))


@pytest.fixture
def reg(app: Flask) -> Registered:
    return register(app.test_client())


def assert_no_redirect(response: TestResponse) -> None:
    assert response.status_code != 302, response.headers.get("Location")
    assert "Location" not in response.headers
    assert response.status_code < 500


def reason(response: TestResponse) -> str:
    """The refusal's reason: ``error`` of a JSON body, or ``error.data.reason`` of JSON-RPC."""
    error = response.get_json()["error"]
    return str(error["data"]["reason"]) if isinstance(error, dict) else str(error)


def assert_oauth_error(response: TestResponse, status: int, error: str) -> None:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert body["error"] == error
    assert "access_token" not in body and "refresh_token" not in body


# -- PKCE ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [
        {"code_challenge": None, "code_challenge_method": None},
        {"code_challenge_method": None},
        {"code_challenge_method": "plain"},
        {"code_challenge_method": "S512"},
        {"code_challenge": "short"},
    ],
    ids=["no-pkce", "method-missing", "plain", "unknown-method", "bad-challenge"],
)
def test_authorize_without_s256_pkce_gets_no_form_and_no_code(
    app: Flask, reg: Registered, changes: dict[str, str | None]
) -> None:
    client = app.test_client()
    _, challenge = pkce_pair()
    page = authorize_page(client, authorize_params(reg, challenge, **changes))
    assert page.csrf is None
    # The redirect URI is registered, so the error may go back to it, never with a code.
    params = redirect_params(page.response)
    assert params["error"] == "invalid_request"
    assert "code" not in params
    assert params["iss"] == ISSUER
    # Posting the form anyway (a forged POST with a stolen CSRF pair) gives no code either.
    _, good = pkce_pair()
    real = authorize_page(client, authorize_params(reg, good))
    forged = Page(real.response, real.csrf, authorize_params(reg, challenge, **changes))
    posted = sign_in(client, forged, KEY)
    assert "code" not in redirect_params(posted)


def test_token_needs_the_right_verifier(app: Flask, reg: Registered) -> None:
    client = app.test_client()
    code, _ = code_for(client, reg, KEY)
    assert_oauth_error(exchange(client, reg, code, None), 400, "invalid_request")
    assert_oauth_error(exchange(client, reg, code, ""), 400, "invalid_request")
    other_verifier, _ = pkce_pair()
    assert_oauth_error(exchange(client, reg, code, other_verifier), 400, "invalid_grant")
    # The challenge itself is not the verifier.
    assert_oauth_error(exchange(client, reg, code, "x" * 43), 400, "invalid_grant")


# -- codes: replay, another client, expiry ---------------------------------------------


def test_replayed_code_is_refused_and_ends_the_first_refresh_token(
    app: Flask, reg: Registered
) -> None:
    client = app.test_client()
    code, verifier = code_for(client, reg, KEY)
    first = exchange(client, reg, code, verifier)
    assert first.status_code == 200
    assert_oauth_error(exchange(client, reg, code, verifier), 400, "invalid_grant")
    assert_oauth_error(
        refresh(client, first.get_json()["refresh_token"], reg.client_id), 400, "invalid_grant"
    )


def test_code_replayed_through_another_app_sharing_redis(
    make_app: Callable[..., Flask], redis_server: RedisServer
) -> None:
    """Two workers sharing the rate-limit Redis share the one-time marks."""
    config = oauth_config(MCP_DEFAULT_ROLE="", RATELIMIT_STORAGE_URI=redis_server.url)
    one, two = make_app(KEYS, **config), make_app(KEYS, **config)
    reg = register(one.test_client())
    code, verifier = code_for(one.test_client(), reg, KEY)
    first = exchange(one.test_client(), reg, code, verifier)
    assert first.status_code == 200
    assert_oauth_error(exchange(two.test_client(), reg, code, verifier), 400, "invalid_grant")
    old_refresh = first.get_json()["refresh_token"]
    assert_oauth_error(refresh(one.test_client(), old_refresh, reg.client_id), 400, "invalid_grant")
    # A refresh token is spent across the apps too.
    tokens = tokens_for(one.test_client(), reg, KEY)
    assert refresh(two.test_client(), tokens["refresh_token"], reg.client_id).status_code == 200
    assert_oauth_error(
        refresh(one.test_client(), tokens["refresh_token"], reg.client_id), 400, "invalid_grant"
    )


def test_code_used_by_another_client_is_refused(app: Flask, reg: Registered) -> None:
    client = app.test_client()
    other = register(client)
    code, verifier = code_for(client, reg, KEY)
    stolen = exchange(client, other, code, verifier)
    assert_oauth_error(stolen, 400, "invalid_grant")
    # And with the victim's client id but the thief's redirect: refused as well.
    elsewhere = register(client, "https://chatgpt.com/connector/oauth/thief")
    assert_oauth_error(
        exchange(client, reg, code, verifier, redirect_uri=elsewhere.redirect_uri),
        400,
        "invalid_grant",
    )


def test_code_expires_after_60_seconds(
    app: Flask, reg: Registered, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = app.test_client()
    code, verifier = code_for(client, reg, KEY)
    later = time.time() + 61
    monkeypatch.setattr(oauth_tokens, "time", types.SimpleNamespace(time=lambda: later))
    assert_oauth_error(exchange(client, reg, code, verifier), 400, "invalid_grant")


def test_code_within_60_seconds_works(
    app: Flask, reg: Registered, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = app.test_client()
    code, verifier = code_for(client, reg, KEY)
    later = time.time() + 55
    monkeypatch.setattr(oauth_tokens, "time", types.SimpleNamespace(time=lambda: later))
    assert exchange(client, reg, code, verifier).status_code == 200


# -- redirect URIs ------------------------------------------------------------------------

HOSTILE_REDIRECTS = [
    "https://chatgpt.com.evil.com/connector_platform_oauth_redirect",
    "https://chatgpt.com.evil.com/connector/oauth/abc",
    "https://chatgpt.com/connector/oauth/../../evil",
    "https://chatgpt.com/connector/oauth/%2e%2e/%2e%2e/evil",
    "https://chatgpt.com/connector/oauth/abc/../../../evil",
    "https://chatgpt.com@evil.com/connector/oauth/abc",
    "https://user:pass@chatgpt.com/connector/oauth/abc",
    "https://chatgpt.com/connector/oauth/abc#frag",
    "https://chatgpt.com/connector_platform_oauth_redirect#x",
    "https://chatgpt.com/connector_platform_oauth_redirect/../evil",
    "http://chatgpt.com/connector_platform_oauth_redirect",
    "http://evil.com",
    "http://evil.com/callback",
    "javascript:alert(1)",
    "javascript://chatgpt.com/connector/oauth/%0aalert(1)",
    "data:text/html,<script>alert(1)</script>",
    "//evil.com/cb",
    "https://evil.com",
    "https://CHATGPT.com/connector_platform_oauth_redirect.evil",
    "https://chatgpt.com:443@evil.com/connector/oauth/a",
    "https://chatgpt.com\\@evil.com/connector/oauth/a",
    "http://127.0.0.1.evil.com/cb",
    "http://localhost@evil.com/cb",
    'https://evil.com/"x',
    "https://evil.com/\u00fc",
    'https://chatgpt.com/connector/oauth/\u00fc/../../evil"',
    "https://chatgpt.com/connector/oauth/%2E%2E/evil",
    "https://chatgpt.com/connector/oauth/.%2e/evil",
]


@pytest.mark.parametrize("uri", HOSTILE_REDIRECTS)
def test_registration_refuses_redirects_outside_the_allow_list(app: Flask, uri: str) -> None:
    response = app.test_client().post(
        "/register", json={"redirect_uris": [uri], "token_endpoint_auth_method": "none"}
    )
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    assert response.get_json()["error"] in ("invalid_redirect_uri", "invalid_client_metadata")
    assert "client_id" not in response.get_json()


@pytest.mark.parametrize(
    "uri",
    [
        *HOSTILE_REDIRECTS,
        "https://chatgpt.com/connector/oauth/other",
        'https://chatgpt.com/connector/oauth/a"b',
        "https://chatgpt.com/connector/oauth/\u00e9",
    ],
)
def test_authorize_never_redirects_to_an_unregistered_uri(
    app: Flask, reg: Registered, uri: str
) -> None:
    client = app.test_client()
    _, challenge = pkce_pair()
    for extra in ({}, {"code_challenge": None}, {"response_type": "token"}, {"resource": "x"}):
        page = authorize_page(client, authorize_params(reg, challenge, redirect_uri=uri, **extra))
        assert page.response.status_code == 400
        assert page.csrf is None
        assert_no_redirect(page.response)
    # The form posted back with the redirect swapped: no redirect, no code.
    real = authorize_page(client, authorize_params(reg, challenge))
    swapped = Page(real.response, real.csrf, authorize_params(reg, challenge, redirect_uri=uri))
    for decision in ("approve", "deny"):
        posted = sign_in(client, swapped, KEY, decision=decision)
        assert_no_redirect(posted)
        assert "code=" not in posted.get_data(as_text=True)


def test_identical_registrations_get_distinct_clients_and_secrets(app: Flask) -> None:
    """The client id is the signed registration and the secret derives from it: two
    identical documents (Claude's DCR document is public) must not share a secret."""
    client = app.test_client()
    first = register(client, method="client_secret_post", client_name="Claude")
    second = register(client, method="client_secret_post", client_name="Claude")
    assert first.client_id != second.client_id
    assert first.client_secret != second.client_secret
    code, verifier = code_for(client, first, KEY)
    stolen = exchange(client, second, code, verifier, client_secret=second.client_secret or "")
    assert_oauth_error(stolen, 400, "invalid_grant")


def test_unknown_or_forged_client_ids_get_a_page_not_a_redirect(
    app: Flask, reg: Registered
) -> None:
    client = app.test_client()
    _, challenge = pkce_pair()
    forged = reg.client_id[:-3] + ("aaa" if not reg.client_id.endswith("aaa") else "bbb")
    for client_id in ("", "nobody", forged, "mcpc_" + "A" * 9000, "https://evil.com/c.json"):
        params = authorize_params(
            reg, challenge, client_id=client_id, redirect_uri="https://evil.com"
        )
        page = authorize_page(client, params)
        assert page.response.status_code == 400
        assert_no_redirect(page.response)


def test_a_registered_client_is_refused_once_the_allow_list_narrows(
    make_app: Callable[..., Flask],
) -> None:
    wide = make_app(KEYS, **oauth_config())
    registered = register(wide.test_client(), "https://chatgpt.com/connector/oauth/abc")
    narrow = make_app(KEYS, **oauth_config(MCP_OAUTH_REDIRECT_URIS=CHATGPT_REDIRECT)).test_client()
    _, challenge = pkce_pair()
    page = authorize_page(narrow, authorize_params(registered, challenge))
    assert page.response.status_code == 400
    assert_no_redirect(page.response)


# -- refresh tokens ----------------------------------------------------------------------


def test_refresh_reuse_ends_the_family(app: Flask, reg: Registered) -> None:
    client = app.test_client()
    tokens = tokens_for(client, reg, KEY)
    rotated = refresh(client, tokens["refresh_token"], reg.client_id)
    assert rotated.status_code == 200
    assert_oauth_error(
        refresh(client, tokens["refresh_token"], reg.client_id), 400, "invalid_grant"
    )
    # The attacker's reuse also ends the legitimate holder's newer token.
    assert_oauth_error(
        refresh(client, rotated.get_json()["refresh_token"], reg.client_id), 400, "invalid_grant"
    )


def test_refresh_token_is_bound_to_its_client_and_kind(app: Flask, reg: Registered) -> None:
    client = app.test_client()
    tokens = tokens_for(client, reg, KEY)
    other = register(client)
    assert refresh(client, tokens["refresh_token"], other.client_id).status_code in (400, 401)
    for wrong in (tokens["access_token"], "garbage", "." * 20, "x" * 20000):
        response = refresh(client, wrong, reg.client_id)
        assert response.status_code == 400, wrong[:20]
        assert response.get_json()["error"] == "invalid_grant"
    # An authorization code is not a refresh token, and a refresh token is not a code.
    code, verifier = code_for(client, reg, KEY)
    assert_oauth_error(refresh(client, code, reg.client_id), 400, "invalid_grant")
    assert_oauth_error(
        exchange(client, reg, tokens["refresh_token"], verifier), 400, "invalid_grant"
    )
    # The original refresh token still works: the refusals spent nothing.
    assert refresh(client, tokens["refresh_token"], reg.client_id).status_code == 200


def test_refresh_cannot_widen_or_retarget(app: Flask, reg: Registered) -> None:
    client = app.test_client()
    code, verifier = code_for(client, reg, KEY, scope="read")
    tokens = exchange(client, reg, code, verifier).get_json()
    assert tokens["scope"] == "read"
    widened = refresh(client, tokens["refresh_token"], reg.client_id, scope="read write")
    assert widened.status_code == 200
    body = widened.get_json()
    assert body.get("scope") == "read"
    claims = json.loads(decode_signed(body["access_token"]).split("}", 1)[1])
    assert claims["scope"] == "read"
    retarget = refresh(
        client, body["refresh_token"], reg.client_id, resource="https://evil.com/mcp"
    )
    assert_oauth_error(retarget, 400, "invalid_target")


# -- access tokens ------------------------------------------------------------------------


def _jwt(claims: dict[str, Any], header: dict[str, Any] | None = None, secret: str = SECRET) -> str:
    key = OctKey.import_key(secret.encode())
    header = header or {"alg": "HS256", "typ": "at+jwt"}
    return jwt.encode(header, claims, key, algorithms=[header["alg"]])


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(fingerprint: str, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": ISSUER + "/mcp",
        "sub": fingerprint,
        "client_id": "mcpc_x",
        "iat": now,
        "exp": now + 600,
        "jti": "j1",
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def _forged_tokens(good: str) -> dict[str, str]:
    header, payload, signature = good.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    fp = claims["sub"]
    none_header = _b64(json.dumps({"alg": "none", "typ": "at+jwt"}).encode())
    rs_header = _b64(json.dumps({"alg": "RS256", "typ": "at+jwt"}).encode())
    wide = _b64(json.dumps({**claims, "scope": "admin"}).encode())
    flipped = signature[:-2] + ("AA" if not signature.endswith("AA") else "BB")
    return {
        "control": _jwt(_claims(fp)),
        "other-path": _jwt(_claims(fp, aud=ISSUER + "/other")),
        "other-host": _jwt(_claims(fp, aud="https://evil.com/mcp")),
        "issuer-prefix": _jwt(_claims(fp, aud=ISSUER + "0/mcp")),
        "wrong-iss": _jwt(_claims(fp, iss="https://evil.com")),
        "no-typ": _jwt(_claims(fp), {"alg": "HS256"}),
        "hs512": _jwt(_claims(fp), {"alg": "HS512", "typ": "at+jwt"}),
        "rs256-header": f"{rs_header}.{payload}.{signature}",
        "alg-none": f"{none_header}.{payload}.",
        "alg-none-sig": f"{none_header}.{payload}.{signature}",
        "expired": _jwt(_claims(fp, exp=int(time.time()) - 5)),
        "other-secret": _jwt(_claims(fp), secret="another-secret-" + "z" * 40),
        "unknown-key": _jwt(_claims("0123456789ab")),
        "missing-sub": _jwt(_claims(fp, sub=None)),
        "sub-not-string": _jwt(_claims(fp, sub=12)),
        "aud-list": _jwt(_claims(fp, aud=[ISSUER + "/mcp"])),
        "exp-string": _jwt(_claims(fp, exp="soon")),
        "scope-not-string": _jwt(_claims(fp, scope=["read"])),
        "tampered-payload": f"{header}.{wide}.{signature}",
        "tampered-signature": f"{header}.{payload}.{flipped}",
        "signature-dropped": f"{header}.{payload}.",
        "garbage": "eyJ.garbage.here",
        "not-base64": "eyJ!!!.@@@.###",
        "huge": "eyJ" + "A" * 10240 + ".e30.sig",
        "huge-valid-shape": f"{header}.{_b64(b'{' + b' ' * 10240 + b'}')}.{signature}",
        "nested-dots": good + ".extra",
    }


def test_forged_access_tokens_get_a_json_401(make_app: Callable[..., Flask]) -> None:
    # Each refused token counts as a failed attempt: allow them all.
    app = make_app(KEYS, **oauth_config(MCP_DEFAULT_ROLE="", MCP_AUTH_FAILURE_LIMIT="off"))
    client = app.test_client()
    reg = register(client)
    good = tokens_for(client, reg, KEY)["access_token"]
    assert client.post("/mcp", json=RPC, headers=bearer(good)).status_code == 200
    forged = _forged_tokens(good)
    assert client.post("/mcp", json=RPC, headers=bearer(forged.pop("control"))).status_code == 200
    for name, token in forged.items():
        response = client.post("/mcp", json=RPC, headers=bearer(token))
        assert response.status_code == 401, name
        assert response.mimetype == "application/json", name
        error = reason(response)
        expected = {"expired": "token_expired", "nested-dots": "invalid_api_key"}
        # (four dot-separated parts is no JWT: it is looked up as a key, and refused)
        assert error == expected.get(name, "invalid_token"), (name, error)
        challenge = response.headers["WWW-Authenticate"]
        assert 'error="invalid_token"' in challenge, name
        assert "insufficient_scope" not in response.get_data(as_text=True) + challenge


def test_token_for_the_root_works_below_it_and_path_tokens_do_not_escape(
    app: Flask, reg: Registered
) -> None:
    client = app.test_client()
    mcp_token = tokens_for(client, reg, KEY)["access_token"]
    assert client.get("/data", headers=bearer(mcp_token)).status_code == 401
    assert client.get("/mcpx", headers=bearer(mcp_token)).status_code == 401
    root_token = tokens_for(client, reg, KEY, resource=ISSUER)["access_token"]
    assert client.get("/data", headers=bearer(root_token)).status_code == 200


# -- registration documents ---------------------------------------------------------------


def _nested(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = {"a": value}
    return value


BAD_DOCUMENTS: dict[str, tuple[bytes, str]] = {
    "garbage": (b"\x00\xff{not json", "application/json"),
    "truncated": (b'{"redirect_uris": ["' + CHATGPT_REDIRECT.encode(), "application/json"),
    "empty": (b"", "application/json"),
    "list": (json.dumps([CHATGPT_REDIRECT]).encode(), "application/json"),
    "string": (b'"hello"', "application/json"),
    "number": (b"1e999", "application/json"),
    "null": (b"null", "application/json"),
    "huge": (
        json.dumps({"redirect_uris": [CHATGPT_REDIRECT], "client_name": "x" * 17000}).encode(),
        "application/json",
    ),
    "nested": (
        json.dumps({"redirect_uris": [CHATGPT_REDIRECT], "extra": _nested(6)}).encode(),
        "application/json",
    ),
    "very-deep": (b'{"a":' * 5000 + b"1" + b"}" * 5000, "application/json"),
    "deep-list": (b'{"redirect_uris":' + b"[" * 100000 + b"]" * 100000 + b"}", "application/json"),
    "form": (b"redirect_uris=" + CHATGPT_REDIRECT.encode(), "application/x-www-form-urlencoded"),
    "text-plain": (json.dumps({"redirect_uris": [CHATGPT_REDIRECT]}).encode(), "text/plain"),
    "no-redirects": (b"{}", "application/json"),
    "redirects-not-list": (
        json.dumps({"redirect_uris": CHATGPT_REDIRECT}).encode(),
        "application/json",
    ),
    "redirect-not-string": (json.dumps({"redirect_uris": [1]}).encode(), "application/json"),
    "too-many-redirects": (
        json.dumps({"redirect_uris": [f"http://127.0.0.1/{i}" for i in range(50)]}).encode(),
        "application/json",
    ),
    "bad-method": (
        json.dumps(
            {"redirect_uris": [CHATGPT_REDIRECT], "token_endpoint_auth_method": "private_key_jwt"}
        ).encode(),
        "application/json",
    ),
    "method-not-string": (
        json.dumps({"redirect_uris": [CHATGPT_REDIRECT], "token_endpoint_auth_method": 5}).encode(),
        "application/json",
    ),
    "grant-types-not-list": (
        json.dumps(
            {"redirect_uris": [CHATGPT_REDIRECT], "grant_types": "authorization_code"}
        ).encode(),
        "application/json",
    ),
    "bad-utf8": (b'{"redirect_uris": ["\xc3\x28"]}', "application/json"),
    "name-not-string": (
        json.dumps({"redirect_uris": [CHATGPT_REDIRECT], "client_name": {"a": 1}}).encode(),
        "application/json",
    ),
    "name-too-long": (
        json.dumps({"redirect_uris": [CHATGPT_REDIRECT], "client_name": "x" * 201}).encode(),
        "application/json",
    ),
}


@pytest.mark.parametrize("name", list(BAD_DOCUMENTS))
def test_bad_registration_documents_get_a_json_400(app: Flask, name: str) -> None:
    body, content_type = BAD_DOCUMENTS[name]
    response = app.test_client().post("/register", data=body, content_type=content_type)
    assert response.status_code == 400, (name, response.status_code, response.get_data()[:300])
    assert response.mimetype == "application/json"
    assert response.get_json()["error"] in ("invalid_client_metadata", "invalid_redirect_uri")
    assert "client_id" not in response.get_json()


def test_registration_with_a_lying_content_length_is_bounded(app: Flask) -> None:
    body = json.dumps({"redirect_uris": [CHATGPT_REDIRECT], "client_name": "y" * 20000}).encode()
    response = app.test_client().post(
        "/register",
        data=body,
        content_type="application/json",
        headers={"Content-Length": "100"},
    )
    assert response.status_code == 400
    assert response.mimetype == "application/json"


# -- the sign-in form ------------------------------------------------------------------------


def _page(app: Flask, reg: Registered) -> tuple[Any, Page]:
    client = app.test_client()
    _, challenge = pkce_pair()
    page = authorize_page(client, authorize_params(reg, challenge))
    assert page.response.status_code == 200 and page.csrf
    return client, page


@pytest.mark.parametrize(
    ("csrf", "headers"),
    [
        (None, {}),
        ("0" * 64, {}),
        ("", {"Origin": "https://evil.com"}),
        ("", {"Origin": "null"}),
        ("", {"Origin": ISSUER + ".evil.com"}),
        ("", {"Sec-Fetch-Site": "cross-site"}),
        ("", {"Sec-Fetch-Site": "same-site"}),
        ("", {"Origin": ISSUER, "Sec-Fetch-Site": "cross-site"}),
    ],
    ids=[
        "no-csrf",
        "wrong-csrf",
        "other-origin",
        "null-origin",
        "lookalike-origin",
        "cross-site",
        "same-site",
        "cross-site-with-origin",
    ],
)
def test_sign_in_post_without_csrf_or_from_another_site_is_403(
    app: Flask, reg: Registered, csrf: str | None, headers: dict[str, str]
) -> None:
    client, page = _page(app, reg)
    for decision in ("approve", "deny"):
        response = sign_in(client, page, KEY, decision=decision, headers=headers, csrf=csrf)
        assert response.status_code == 403, response.get_data(as_text=True)[:300]
        assert_no_redirect(response)
        assert "code=" not in response.get_data(as_text=True)


def test_sign_in_post_without_the_cookie_is_403(app: Flask, reg: Registered) -> None:
    _, page = _page(app, reg)
    fresh = app.test_client()  # another browser: the CSRF value without its cookie
    response = sign_in(fresh, page, KEY)
    assert response.status_code == 403
    assert_no_redirect(response)


def test_sign_in_post_from_the_same_origin_succeeds(app: Flask, reg: Registered) -> None:
    client, page = _page(app, reg)
    headers = {"Origin": ISSUER, "Sec-Fetch-Site": "same-origin"}
    assert "code" in redirect_params(sign_in(client, page, KEY, headers=headers))


def test_wrong_keys_on_the_form_lock_out(make_app: Callable[..., Flask]) -> None:
    app = make_app(KEYS, **oauth_config(MCP_AUTH_FAILURE_LIMIT="3 per minute"))
    reg = register(app.test_client())
    client, page = _page(app, reg)
    statuses = []
    for attempt in range(5):
        response = sign_in(client, page, f"wrong-key-{attempt}")
        statuses.append(response.status_code)
        assert_no_redirect(response)
        assert f"wrong-key-{attempt}" not in response.get_data(as_text=True)
    assert statuses[:3] == [401, 401, 401]
    assert statuses[3:] == [429, 429]
    # Locked out: the right key gets no code either.
    locked = sign_in(client, page, KEY)
    assert locked.status_code == 429
    assert_no_redirect(locked)


def test_wrong_key_rerenders_the_form_without_a_code(app: Flask, reg: Registered) -> None:
    client, page = _page(app, reg)
    response = sign_in(client, page, KEY + "x")
    assert response.status_code == 401
    text = response.get_data(as_text=True)
    assert "That API key was not accepted" in text
    assert KEY + "x" not in text
    assert_no_redirect(response)


def test_deny_returns_access_denied_and_no_code(app: Flask, reg: Registered) -> None:
    client, page = _page(app, reg)
    params = redirect_params(sign_in(client, page, KEY, decision="deny"))
    assert params["error"] == "access_denied"
    assert "code" not in params
    assert params["state"] == "st-1" and params["iss"] == ISSUER


# -- the key never leaks -------------------------------------------------------------------


def _readable(value: str) -> str:
    try:
        return decode_signed(value)
    except Exception:  # not a signed value: compare it as it is
        return value


@pytest.mark.parametrize("signed", [False, True], ids=["plain-key", "signed-key"])
def test_the_api_key_never_appears_anywhere(
    make_app: Callable[..., Flask],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    all_records: Any,
    signed: bool,
) -> None:
    key_id = "leak-canary-key-id-83c1f0d2a7"
    presented = generate_api_key(key_id, SECRET) if signed else key_id
    audit = tmp_path / "audit.log"
    app = make_app(
        {key_id: {"name": "Canary", "userId": "canary", "permissions": ["read"]}},
        **oauth_config(
            MCP_DEFAULT_ROLE="",
            MCP_AUDIT_LOG=str(audit),
            MCP_DEBUG="auth:*",
            MCP_REQUIRE_SIGNED_KEYS=signed,
        ),
    )
    caplog.set_level(logging.DEBUG)
    client = app.test_client()
    responses: list[TestResponse] = []
    reg = register(client, method="client_secret_post")
    verifier, challenge = pkce_pair()
    page = authorize_page(client, authorize_params(reg, challenge, scope="read"))
    responses.append(page.response)
    responses.append(sign_in(client, page, presented + "typo"))
    answer = sign_in(client, page, presented)
    responses.append(answer)
    code = redirect_params(answer)["code"]
    token_response = exchange(client, reg, code, verifier, client_secret=reg.client_secret or "")
    responses.append(token_response)
    tokens = token_response.get_json()
    responses.append(client.post("/mcp", json=RPC, headers=bearer(tokens["access_token"])))
    responses.append(client.get("/mcp/status", headers=bearer(tokens["access_token"])))
    secret = reg.client_secret or ""
    rotated = refresh(client, tokens["refresh_token"], reg.client_id, client_secret=secret)
    responses.append(rotated)
    assert rotated.status_code == 200
    # The refusals: a replayed code (ends the family), then the refresh token reused.
    responses.append(exchange(client, reg, code, verifier, client_secret=secret))
    responses.append(refresh(client, tokens["refresh_token"], reg.client_id, client_secret=secret))
    assert responses[-1].status_code == 400

    issued = [reg.client_id, code, tokens["access_token"], tokens["refresh_token"]]
    issued += [rotated.get_json()["access_token"], rotated.get_json()["refresh_token"]]
    if reg.client_secret:
        issued.append(reg.client_secret)
    texts = [json.dumps(reg.body)]
    for response in responses:
        texts.append(response.get_data(as_text=True))
        texts.extend(f"{name}: {value}" for name, value in response.headers.items())
    texts.extend(issued)
    texts.extend(_readable(value) for value in issued)
    texts.append(caplog.text)
    texts.extend(record.getMessage() for record in caplog.records)
    texts.append(all_records.text())
    flush_audit_lines()
    assert audit.exists()
    audit_text = audit.read_text()
    assert '"credential_source":"signin"' in audit_text
    assert '"credential_source":"oauth"' in audit_text
    texts.append(audit_text)
    secrets = {presented, key_id, presented + "typo"}
    for text in texts:
        for secret in secrets:
            assert secret not in text, text[:300]


# -- revocation and scopes -----------------------------------------------------------------


def test_a_key_removed_from_the_file_ends_its_tokens_at_once(
    make_app: Callable[..., Flask], tmp_path: Path
) -> None:
    path = tmp_path / "keys.json"
    write_atomically(path, KEYS)
    app = make_app(
        None,
        **oauth_config(
            MCP_DEFAULT_ROLE="", MCP_API_KEYS_FILE=str(path), MCP_API_KEYS_FILE_CHECK_INTERVAL=0
        ),
    )
    client = app.test_client()
    reg = register(client)
    tokens = tokens_for(client, reg, KEY)
    code, verifier = code_for(client, reg, KEY)
    assert client.post("/mcp", json=RPC, headers=bearer(tokens["access_token"])).status_code == 200
    write_atomically(path, {"another-key-0a9b8c": {"name": "Other", "userId": "o"}})
    response = client.post("/mcp", json=RPC, headers=bearer(tokens["access_token"]))
    assert response.status_code == 401
    assert reason(response) == "invalid_token"
    assert_oauth_error(
        refresh(client, tokens["refresh_token"], reg.client_id), 400, "invalid_grant"
    )
    assert_oauth_error(exchange(client, reg, code, verifier), 400, "invalid_grant")


@pytest.fixture
def scoped_app(make_app: Callable[..., Flask]) -> Flask:
    app = make_app(KEYS, **oauth_config(MCP_DEFAULT_ROLE=""))

    @app.post("/mcp/write")
    @require_permission("write")
    def write() -> dict[str, Any]:
        return {"written": True}

    @app.post("/mcp/read")
    @require_permission("read")
    def read() -> dict[str, Any]:
        return {"read": True}

    return app


def _token(app: Flask, scope: str | None) -> dict[str, Any]:
    client = app.test_client()
    reg = register(client)
    code, verifier = code_for(client, reg, KEY, scope=scope)
    response = exchange(client, reg, code, verifier)
    assert response.status_code == 200
    body: dict[str, Any] = response.get_json()
    return body


def test_a_scope_the_key_lacks_is_ignored(scoped_app: Flask) -> None:
    client = scoped_app.test_client()
    tokens = _token(scoped_app, "admin delete:everything")
    assert "scope" not in tokens
    assert client.post("/mcp/write", headers=bearer(tokens["access_token"])).status_code == 200
    assert client.post("/mcp/read", headers=bearer(tokens["access_token"])).status_code == 200


def test_a_scope_the_key_has_narrows_the_token(scoped_app: Flask) -> None:
    client = scoped_app.test_client()
    tokens = _token(scoped_app, "read admin")
    assert tokens["scope"] == "read"
    assert client.post("/mcp/read", headers=bearer(tokens["access_token"])).status_code == 200
    refused = client.post("/mcp/write", headers=bearer(tokens["access_token"]))
    assert refused.status_code == 403
    everything = refused.get_data(as_text=True) + json.dumps(dict(refused.headers))
    assert "insufficient_scope" not in everything
    # The raw key itself is not narrowed.
    assert client.post("/mcp/write", headers={"X-API-Key": KEY}).status_code == 200


# -- the one-time marks' storage goes away ----------------------------------------------------


@pytest.fixture
def stopped_redis_app(
    make_app: Callable[..., Flask], redis_server: RedisServer
) -> Iterator[tuple[Flask, Registered, str, str, str]]:
    app = make_app(
        KEYS,
        **oauth_config(RATELIMIT_STORAGE_URI=redis_server.url, MCP_RATELIMIT_FAIL_CLOSED=False),
    )
    client = app.test_client()
    reg = register(client)
    refresh_token = tokens_for(client, reg, KEY)["refresh_token"]
    code, verifier = code_for(client, reg, KEY)
    redis_server.stop()
    yield app, reg, code, verifier, refresh_token


def test_storage_down_code_redemption_is_503(
    stopped_redis_app: tuple[Flask, Registered, str, str, str],
) -> None:
    app, reg, code, verifier, _ = stopped_redis_app
    response = exchange(app.test_client(), reg, code, verifier)
    assert_oauth_error(response, 503, "temporarily_unavailable")


def test_storage_down_refresh_is_503(
    stopped_redis_app: tuple[Flask, Registered, str, str, str],
) -> None:
    app, reg, _, _, refresh_token = stopped_redis_app
    client = app.test_client()
    assert_oauth_error(
        refresh(client, refresh_token, reg.client_id), 503, "temporarily_unavailable"
    )
    assert_oauth_error(refresh(client, refresh_token, None), 503, "temporarily_unavailable")


# -- odd requests: never a 500 ----------------------------------------------------------------

ODD_TOKEN_FORMS: list[dict[str, str]] = [
    {},
    {"grant_type": "password", "username": "a", "password": "b"},
    {"grant_type": "client_credentials"},
    {"grant_type": "implicit"},
    {"grant_type": "authorization_code"},
    {"grant_type": "authorization_code", "code": "x" * 20000, "client_id": "nobody"},
    {"grant_type": "refresh_token"},
    {"grant_type": "refresh_token", "refresh_token": ""},
    {"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": "e30.e30.e30"},
    {"grant_type": "authorization_code", "code": "a", "client_id": "\x00"},
    {"grant_type": 'x"y\\z\u00e9'},
    {"grant_type": "authorization_code", "code": "a", "client_id": 'a"b\u00e9'},
    {"grant_type": "authorization_code", "code": "a", "redirect_uri": 'https://e/"\u00e9'},
    {"grant_type": "authorization_code", "code": "a", "code_verifier": '"\\\u00e9'},
    {"grant_type": "refresh_token", "refresh_token": '"\u00e9', "scope": '"\\'},
    {"grant_type": "refresh_token", "refresh_token": "x", "resource": 'https://e/"'},
]


@pytest.mark.parametrize("form", ODD_TOKEN_FORMS)
def test_odd_token_requests_are_json_4xx(app: Flask, form: dict[str, str]) -> None:
    response = app.test_client().post("/token", data=form)
    assert 400 <= response.status_code < 500, response.get_data(as_text=True)[:300]
    assert response.mimetype == "application/json"
    assert "access_token" not in response.get_json()


def test_token_request_with_invalid_utf8_or_odd_basic_auth(app: Flask, reg: Registered) -> None:
    client = app.test_client()
    raw = b"grant_type=authorization_code&code=%ff%fe&client_id=%c3%28&code_verifier=%80"
    response = client.post("/token", data=raw, content_type="application/x-www-form-urlencoded")
    assert 400 <= response.status_code < 500
    for header in (
        "Basic",
        "Basic !!!",
        "Basic " + base64.b64encode(b"\xff:\xfe").decode(),
        "Basic " + base64.b64encode(b'a"b:c\\d').decode(),
        "Bearer x",
    ):
        form = {"grant_type": "authorization_code", "code": "a", "code_verifier": "b"}
        response = client.post("/token", data=form, headers={"Authorization": header})
        assert 400 <= response.status_code < 500, header
        assert response.mimetype == "application/json"


def test_token_request_as_json_or_get_is_refused(app: Flask, reg: Registered) -> None:
    client = app.test_client()
    code, verifier = code_for(client, reg, KEY)
    body = {
        "grant_type": "authorization_code",
        "code": code,
        "code_verifier": verifier,
        "client_id": reg.client_id,
        "redirect_uri": reg.redirect_uri,
    }
    as_json = client.post("/token", json=body)
    assert 400 <= as_json.status_code < 500
    assert "access_token" not in (as_json.get_json() or {})
    as_get = client.get("/token", query_string=body)
    # 401: anonymous requests to a route with no GET view are refused by the guard first.
    assert as_get.status_code in (401, 404, 405)
    assert "access_token" not in as_get.get_data(as_text=True)


@pytest.mark.parametrize(
    "query",
    [
        "",
        "client_id=%00",
        "client_id=" + "a" * 10000,
        "response_type=code&client_id=x&redirect_uri=javascript:alert(1)",
        "response_type=code&response_type=token",
        'response_type=to"ken&client_id=x',
        "client_id=%ff%fe&redirect_uri=%c3%28",
    ],
)
def test_odd_authorize_requests_are_pages_not_500s(app: Flask, query: str) -> None:
    for method in ("GET", "POST"):
        response = app.test_client().open(f"/authorize?{query}", method=method)
        assert response.status_code in (400, 403), (method, query, response.status_code)
        assert_no_redirect(response)


def test_duplicated_parameters_do_not_reach_another_redirect(app: Flask, reg: Registered) -> None:
    _, challenge = pkce_pair()
    params = authorize_params(reg, challenge)
    query = "&".join(f"{k}={v}" for k, v in params.items())
    query += "&redirect_uri=https://evil.com/cb"
    response = app.test_client().get("/authorize?" + query)
    location = response.headers.get("Location", "")
    assert urlsplit(location).netloc in ("", "chatgpt.com")
    assert response.status_code < 500
