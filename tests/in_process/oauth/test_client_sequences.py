"""The OAuth sign-in as real clients drive it: the request sequences of
docs/shared notes (ChatGPT, Claude, the official mcp Python SDK), scripted
through the Flask test client, and the sign-in switched off."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from support.oauth_flow import (
    CHATGPT_REDIRECT,
    CLAUDE_REDIRECT,
    ISSUER,
    Registered,
    authorize_page,
    authorize_params,
    code_for,
    exchange,
    oauth_config,
    pkce_pair,
    redirect_params,
    refresh,
    register,
    sign_in,
    tokens_for,
)
from support.seed import SEED_KEY
from support.servers import free_port

OAUTH_URLS = (
    "/.well-known/oauth-authorization-server",
    "/.well-known/oauth-protected-resource",
    "/.well-known/oauth-protected-resource/mcp",
    "/.well-known/openid-configuration",
    "/register",
    "/authorize",
    "/token",
)

AS_METADATA = {
    "issuer": ISSUER,
    "authorization_endpoint": ISSUER + "/authorize",
    "token_endpoint": ISSUER + "/token",
    "registration_endpoint": ISSUER + "/register",
    "response_types_supported": ["code"],
    "grant_types_supported": ["authorization_code", "refresh_token"],
    "code_challenge_methods_supported": ["S256"],
    "authorization_response_iss_parameter_supported": True,
    "client_id_metadata_document_supported": True,
}

RPC = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}


@pytest.fixture
def oauth_app(make_app: Callable[..., Flask]) -> Flask:
    """The seed's key, the sign-in on, anonymous requests refused."""
    return make_app(**oauth_config(MCP_DEFAULT_ROLE=""))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def call_mcp(app: Flask, token: str) -> int:
    return app.test_client().post("/mcp", json=RPC, headers=bearer(token)).status_code


# -- ChatGPT ------------------------------------------------------------------------


def test_chatgpt_discovers_before_any_401(oauth_app: Flask) -> None:
    client = oauth_app.test_client()
    metadata = client.get("/.well-known/oauth-authorization-server")
    assert metadata.status_code == 200
    assert metadata.mimetype == "application/json"
    body = metadata.get_json()
    for name, value in AS_METADATA.items():
        assert body[name] == value, name
    assert "none" in body["token_endpoint_auth_methods_supported"]
    assert "plain" not in body["code_challenge_methods_supported"]

    openid = client.get("/.well-known/openid-configuration")
    assert openid.status_code == 404
    assert openid.mimetype == "application/json"
    assert openid.get_json()["error"] == "oauth_not_supported"


@pytest.mark.parametrize(
    "redirect_uri",
    [CHATGPT_REDIRECT, "https://chatgpt.com/connector/oauth/abc123"],
    ids=["stable-callback", "per-connector-callback"],
)
def test_chatgpt_full_sequence_then_reconnect(oauth_app: Flask, redirect_uri: str) -> None:
    client = oauth_app.test_client()
    issuer = client.get("/.well-known/oauth-authorization-server").get_json()["issuer"]
    reg = register(client, redirect_uri)
    assert reg.client_id.startswith("mcpc_")
    assert reg.client_secret is None
    assert reg.body["redirect_uris"] == [redirect_uri]

    verifier, challenge = pkce_pair()
    page = authorize_page(client, authorize_params(reg, challenge, scope="read"))
    assert page.response.status_code == 200
    assert page.response.mimetype == "text/html"
    assert page.csrf
    answer = sign_in(client, page, SEED_KEY)
    location = urlsplit(answer.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == redirect_uri
    params = redirect_params(answer)
    assert params["iss"] == issuer
    assert params["state"] == "st-1"

    tokens = exchange(client, reg, params["code"], verifier)
    assert tokens.status_code == 200
    body = tokens.get_json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert body["scope"] == "read"
    assert tokens.headers["Cache-Control"] == "no-store"
    assert call_mcp(oauth_app, body["access_token"]) == 200

    # Reconnect: /authorize without scope still signs in; the token has the key's permissions.
    verifier2, challenge2 = pkce_pair()
    page2 = authorize_page(client, authorize_params(reg, challenge2, state="st-2", scope=None))
    assert page2.response.status_code == 200
    params2 = redirect_params(sign_in(client, page2, SEED_KEY))
    assert params2["iss"] == issuer and params2["state"] == "st-2"
    second = exchange(client, reg, params2["code"], verifier2)
    assert second.status_code == 200
    assert "scope" not in second.get_json()
    assert call_mcp(oauth_app, second.get_json()["access_token"]) == 200

    # Refresh with client_id, then (public client) without it: each rotates.
    first_refresh = refresh(client, body["refresh_token"], reg.client_id)
    assert first_refresh.status_code == 200, first_refresh.get_data(as_text=True)
    rotated = first_refresh.get_json()
    assert rotated["refresh_token"] != body["refresh_token"]
    assert call_mcp(oauth_app, rotated["access_token"]) == 200
    without_id = refresh(client, rotated["refresh_token"], None)
    assert without_id.status_code == 200, without_id.get_data(as_text=True)
    assert call_mcp(oauth_app, without_id.get_json()["access_token"]) == 200


# -- Claude ---------------------------------------------------------------------------


def _basic(client_id: str, secret: str) -> dict[str, str]:
    # RFC 6749 2.3.1: form-urlencode each part, then Base64.
    from urllib.parse import quote

    raw = f"{quote(client_id, safe='')}:{quote(secret, safe='')}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


def test_claude_dcr_with_client_secret_post(oauth_app: Flask) -> None:
    client = oauth_app.test_client()
    reg = register(client, CLAUDE_REDIRECT, method="client_secret_post", client_name="Claude")
    assert reg.body["token_endpoint_auth_method"] == "client_secret_post"
    assert reg.client_secret
    secret = reg.client_secret

    # The secret as a form field (client_secret_post).
    code, verifier = code_for(client, reg, SEED_KEY)
    posted = exchange(client, reg, code, verifier, client_secret=secret)
    assert posted.status_code == 200, posted.get_data(as_text=True)
    assert call_mcp(oauth_app, posted.get_json()["access_token"]) == 200
    refreshed = refresh(
        client, posted.get_json()["refresh_token"], reg.client_id, client_secret=secret
    )
    assert refreshed.status_code == 200, refreshed.get_data(as_text=True)

    # The same secret through HTTP Basic (client_secret_basic).
    code, verifier = code_for(client, reg, SEED_KEY)
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": reg.redirect_uri,
        "code_verifier": verifier,
    }
    basic = client.post("/token", data=form, headers=_basic(reg.client_id, secret))
    assert basic.status_code == 200, basic.get_data(as_text=True)

    # A wrong secret, either way: 401 invalid_client and no token.
    code, verifier = code_for(client, reg, SEED_KEY)
    wrong_secret = secret[:-1] + ("1" if secret.endswith("0") else "0")
    wrong = exchange(client, reg, code, verifier, client_secret=wrong_secret)
    assert wrong.status_code == 401
    assert wrong.get_json()["error"] == "invalid_client"
    assert "access_token" not in wrong.get_json()
    wrong_basic = client.post("/token", data=form, headers=_basic(reg.client_id, "nope"))
    assert wrong_basic.status_code == 401
    assert wrong_basic.get_json()["error"] == "invalid_client"
    # ... and no secret at all, for a confidential client.
    missing = exchange(client, reg, code, verifier)
    assert missing.status_code == 401
    assert missing.get_json()["error"] == "invalid_client"


class _DocumentServer:
    """A loopback HTTP server serving one client-id metadata document at /client.json."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/client.json"
        self.document: dict[str, Any] = {
            "client_id": self.url,
            "client_name": "Claude",
            "redirect_uris": [CLAUDE_REDIRECT],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        }
        self.hits = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.hits += 1
                body = json.dumps(outer.document).encode()
                self.send_response(200 if self.path == "/client.json" else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> _DocumentServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def document_server() -> Iterator[_DocumentServer]:
    with _DocumentServer() as server:
        yield server


def test_claude_client_id_metadata_document(
    make_app: Callable[..., Flask], document_server: _DocumentServer
) -> None:
    """Claude's client-id metadata document, served over loopback HTTP.

    NEEDS THE REAL flask_mcp_auth/oauth/cimd.py: the stand-in on main refuses every
    client id that is not https:// (and fetches nothing), so this test fails until
    the CIMD module is merged. MCP_OAUTH_CIMD_ALLOW_PRIVATE admits the loopback URL.
    """
    app = make_app(**oauth_config(MCP_DEFAULT_ROLE="", MCP_OAUTH_CIMD_ALLOW_PRIVATE=True))
    client = app.test_client()
    metadata = client.get("/.well-known/oauth-authorization-server").get_json()
    assert metadata["client_id_metadata_document_supported"] is True
    assert "none" in metadata["token_endpoint_auth_methods_supported"]

    reg = Registered(document_server.url, CLAUDE_REDIRECT, None, document_server.document)
    verifier, challenge = pkce_pair()
    page = authorize_page(client, authorize_params(reg, challenge))
    assert page.response.status_code == 200, page.response.get_data(as_text=True)
    assert document_server.hits >= 1
    assert "Claude" in page.response.get_data(as_text=True)
    params = redirect_params(sign_in(client, page, SEED_KEY))
    assert params["iss"] == ISSUER
    tokens = exchange(client, reg, params["code"], verifier)
    assert tokens.status_code == 200, tokens.get_data(as_text=True)
    assert call_mcp(app, tokens.get_json()["access_token"]) == 200

    # A redirect the document does not list is refused without a redirect.
    other = authorize_params(
        reg, challenge, redirect_uri="https://claude.com/api/mcp/auth_callback"
    )
    assert authorize_page(client, other).response.status_code == 400


# -- the official mcp Python SDK --------------------------------------------------------


def test_mcp_sdk_order_401_then_protected_resource_metadata(oauth_app: Flask) -> None:
    client = oauth_app.test_client()
    refused = client.post("/mcp", json=RPC)
    assert refused.status_code == 401
    challenge = ", ".join(refused.headers.getlist("WWW-Authenticate"))
    assert f'resource_metadata="{ISSUER}/.well-known/oauth-protected-resource"' in challenge
    assert "APIKey" in challenge
    assert challenge.startswith("Bearer ")

    prm = client.get("/.well-known/oauth-protected-resource/mcp")
    assert prm.status_code == 200
    body = prm.get_json()
    assert body["resource"] == ISSUER + "/mcp"
    assert body["authorization_servers"] == [ISSUER]
    root = client.get("/.well-known/oauth-protected-resource").get_json()
    assert root["resource"] == ISSUER
    # Then the authorization server metadata it names, and the flow works.
    server_url = body["authorization_servers"][0] + "/.well-known/oauth-authorization-server"
    assert client.get(urlsplit(server_url).path).get_json()["issuer"] == ISSUER
    tokens = tokens_for(client, register(client, "http://127.0.0.1:33418/callback"), SEED_KEY)
    assert call_mcp(oauth_app, tokens["access_token"]) == 200


def test_a_stale_token_does_not_make_the_metadata_a_401(oauth_app: Flask) -> None:
    client = oauth_app.test_client()
    for path in (
        "/.well-known/oauth-protected-resource/mcp",
        "/.well-known/oauth-authorization-server",
    ):
        response = client.get(path, headers=bearer("eyJhbGciOiJIUzI1NiJ9.e30.bad"))
        assert response.status_code == 200, path


# -- off, and beside raw keys ---------------------------------------------------------


@pytest.mark.parametrize("path", OAUTH_URLS)
def test_without_an_issuer_every_oauth_url_is_a_json_404(
    make_app: Callable[..., Flask], path: str
) -> None:
    client = make_app(JWT_SECRET="s" * 40).test_client()
    for method in (client.get, client.post):
        response = method(path)
        assert response.status_code == 404, (method, path)
        assert response.mimetype == "application/json"
        assert response.get_json()["error"] == "oauth_not_supported"
    refused = make_app(MCP_DEFAULT_ROLE="").test_client().post("/mcp", json=RPC)
    assert "resource_metadata" not in refused.headers.get("WWW-Authenticate", "")


def test_raw_api_keys_keep_working_beside_tokens(oauth_app: Flask) -> None:
    client = oauth_app.test_client()
    tokens = tokens_for(client, register(client), SEED_KEY, resource=ISSUER)
    for headers in (
        {"X-API-Key": SEED_KEY},
        bearer(SEED_KEY),
        bearer(tokens["access_token"]),
    ):
        response = client.post("/mcp", json=RPC, headers=headers)
        assert response.status_code == 200, headers
    assert client.post(f"/mcp?api_key={SEED_KEY}", json=RPC).status_code == 200
    who_key = client.get("/whoami", headers={"X-API-Key": SEED_KEY}).get_json()
    who_token = client.get("/whoami", headers=bearer(tokens["access_token"])).get_json()
    assert who_key["credential_source"] != "oauth"
    assert who_token["credential_source"] == "oauth"
    assert who_key["key_fingerprint"] == who_token["key_fingerprint"]
    assert who_key["name"] == who_token["name"]


def test_the_token_is_refused_by_an_app_without_the_sign_in(
    make_app: Callable[..., Flask], oauth_app: Flask
) -> None:
    client = oauth_app.test_client()
    token = tokens_for(client, register(client), SEED_KEY)["access_token"]
    plain = make_app(JWT_SECRET=oauth_config()["JWT_SECRET"], MCP_DEFAULT_ROLE="")
    assert plain.test_client().post("/mcp", json=RPC, headers=bearer(token)).status_code == 401
