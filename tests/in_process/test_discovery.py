"""OAuth discovery URLs: a JSON 404 that says "API keys, sent like this", never an HTML 404."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import anyio
import httpx2
import pytest
from asgiref.wsgi import WsgiToAsgi
from flask import Flask
from mcp.client.auth import OAuthClientProvider
from mcp.client.auth.exceptions import OAuthRegistrationError
from mcp.shared.auth import OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

from flask_mcp_auth import ConfigError, MCPAuth

DEFAULT_ANSWERS = [
    ("/.well-known/oauth-protected-resource", "publishes no OAuth protected resource metadata"),
    ("/.well-known/oauth-protected-resource/mcp", "publishes no OAuth protected resource"),
    ("/.well-known/oauth-protected-resource/api/v1/mcp", "publishes no OAuth protected"),
    ("/.well-known/oauth-authorization-server", "is not an OAuth authorization server"),
    ("/.well-known/oauth-authorization-server/tenant", "is not an OAuth authorization server"),
    ("/.well-known/openid-configuration", "is not an OpenID Connect provider"),
    ("/.well-known/openid-configuration/tenant", "is not an OpenID Connect provider"),
    ("/tenant/.well-known/openid-configuration", "is not an OpenID Connect provider"),
    ("/register", "offers no OAuth client registration"),
    ("/auth/oauth/login", "has no OAuth login, authorize or token endpoint"),
    ("/authorize", "has no OAuth login, authorize or token endpoint"),
    ("/token", "has no OAuth login, authorize or token endpoint"),
]
HOW_TO_SEND = (
    "It authenticates with API keys. Configure the connector for API-key (or access-token) "
    "authentication instead of OAuth and send the key in the X-API-Key header, as "
    "'Authorization: Bearer <key>' or in the api_key query parameter."
)
DEFAULT_METHODS = [
    {"in": "header", "name": "X-API-Key"},
    {"in": "header", "name": "Authorization", "scheme": "Bearer"},
    {"in": "query", "name": "api_key"},
]


@pytest.mark.parametrize("default_role", ["guest", ""])
@pytest.mark.parametrize(("path", "what"), DEFAULT_ANSWERS)
def test_each_discovery_url_gets_a_json_404_explaining_api_keys(make_app, default_role, path, what):
    """Also when anonymous access is off: these answers need no key."""
    client = make_app(MCP_DEFAULT_ROLE=default_role).test_client()
    response = client.get(path)
    assert response.status_code == 404
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert body["error"] == "oauth_not_supported"
    assert what in body["message"]
    assert body["message"].endswith(HOW_TO_SEND)
    assert body["error_description"] == body["message"]
    assert body["authentication"] == {
        "type": "api_key",
        "oauth": False,
        "methods": DEFAULT_METHODS,
        "key_formats": ["<keyId>"],
    }
    assert body["status_url"] == "/mcp/status"
    assert "WWW-Authenticate" not in response.headers


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "HEAD", "OPTIONS"])
def test_every_method_gets_the_answer(make_app, method):
    client = make_app(MCP_DEFAULT_ROLE="").test_client()
    response = client.open("/register", method=method, json={"redirect_uris": ["http://x/cb"]})
    assert response.status_code == 404
    if method != "HEAD":
        assert response.get_json()["error"] == "oauth_not_supported"


def test_other_unknown_urls_are_untouched(make_app):
    client = make_app().test_client()
    for path in ("/.well-known/security.txt", "/registers", "/auth/oauth/login/x", "/nothing"):
        response = client.get(path)
        assert response.status_code == 404
        assert response.mimetype == "text/html", path


def test_the_application_routes_win(make_app):
    app = make_app()

    @app.get("/token")
    def own_token() -> dict[str, Any]:
        return {"own": True}

    @app.get("/.well-known/oauth-protected-resource")
    def own_metadata() -> dict[str, Any]:
        return {"resource": "http://localhost/mcp", "authorization_servers": ["http://as"]}

    client = app.test_client()
    assert client.get("/token").get_json() == {"own": True}
    assert client.get("/.well-known/oauth-protected-resource").status_code == 200
    not_allowed = client.post("/token")
    assert not_allowed.status_code == 405  # the app's route answers, not ours


def test_signed_key_setup_and_custom_header_show_in_the_answer(make_app):
    client = make_app(
        JWT_SECRET="s",
        MCP_REQUIRE_SIGNED_KEYS=True,
        MCP_API_KEY_HEADER="X-Connector-Key",
        MCP_ACCEPT_BEARER=False,
        MCP_API_KEY_QUERY_PARAM="",
        MCP_STATUS_URL="",
    ).test_client()
    body = client.get("/.well-known/oauth-protected-resource").get_json()
    assert body["message"].endswith("send the key in the X-Connector-Key header.")
    assert body["authentication"]["methods"] == [{"in": "header", "name": "X-Connector-Key"}]
    assert body["authentication"]["key_formats"] == ["mcp_<keyId>_<signature>"]
    assert "status_url" not in body


def html_404(client: Any, path: str) -> bool:
    response = client.get(path)
    return response.status_code == 404 and response.mimetype == "text/html"


def test_all_answers_can_be_switched_off(make_app):
    client = make_app(MCP_OAUTH_DISCOVERY_ANSWERS="", MCP_OAUTH_LOGIN_PATHS="").test_client()
    for path, _ in DEFAULT_ANSWERS:
        assert html_404(client, path), path


@pytest.mark.parametrize(
    ("answers", "on", "off"),
    [
        (
            "protected-resource",
            ["/.well-known/oauth-protected-resource/mcp"],
            ["/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"],
        ),
        (
            ["authorization-server"],
            ["/.well-known/oauth-authorization-server"],
            ["/.well-known/oauth-protected-resource", "/register"],
        ),
        (
            "openid-configuration, register",
            ["/.well-known/openid-configuration", "/register"],
            ["/.well-known/oauth-protected-resource", "/.well-known/oauth-authorization-server"],
        ),
    ],
)
def test_each_answer_is_switchable(make_app, answers, on: Iterable[str], off: Iterable[str]):
    client = make_app(MCP_OAUTH_DISCOVERY_ANSWERS=answers).test_client()
    for path in on:
        assert client.get(path).get_json()["error"] == "oauth_not_supported", path
    for path in off:
        assert html_404(client, path), path


def test_login_paths_are_configurable(make_app, monkeypatch):
    monkeypatch.setenv("MCP_OAUTH_LOGIN_PATHS", "/oauth/start, /sso/login")
    client = make_app().test_client()
    for path in ("/oauth/start", "/sso/login"):
        assert client.get(path).get_json()["error"] == "oauth_not_supported", path
    assert html_404(client, "/auth/oauth/login")
    assert html_404(client, "/authorize")


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("MCP_OAUTH_DISCOVERY_ANSWERS", "register,login-page", "unknown answer(s) login-page"),
        ("MCP_OAUTH_DISCOVERY_ANSWERS", 5, "expected a comma-separated string or a list"),
        ("MCP_OAUTH_LOGIN_PATHS", "auth/oauth/login", "is not a URL path"),
    ],
)
def test_bad_settings_stop_start_up(setting, value, message):
    app = Flask(__name__)
    app.config[setting] = value
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        MCPAuth(app)


class MemoryStorage:
    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client = client_info


def test_the_mcp_sdk_oauth_flow_stops_once_with_our_explanation(make_app):
    """The official client, set up for OAuth, probes each URL once and fails with our text."""
    app = make_app(MCP_DEFAULT_ROLE="")  # its POST /mcp stands in for an MCP endpoint
    requests: list[tuple[str, str]] = []
    wsgi_app = app.wsgi_app

    def recording(environ: dict[str, Any], start_response: Any) -> Any:
        requests.append((environ["REQUEST_METHOD"], environ["PATH_INFO"]))
        return wsgi_app(environ, start_response)

    app.wsgi_app = recording  # type: ignore[method-assign]

    async def no_browser(url: str) -> None:
        raise AssertionError("the flow must not reach the authorization step")

    async def no_callback() -> Any:
        raise AssertionError("the flow must not reach the callback")

    async def connect() -> None:
        provider = OAuthClientProvider(
            "http://testserver/mcp",
            OAuthClientMetadata(redirect_uris=["http://127.0.0.1:1/callback"]),
            MemoryStorage(),
            no_browser,
            no_callback,
        )
        transport = httpx2.ASGITransport(app=WsgiToAsgi(app))
        async with httpx2.AsyncClient(
            auth=provider, transport=transport, base_url="http://testserver", timeout=30
        ) as http:
            await http.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"})

    with pytest.raises(OAuthRegistrationError) as failure:
        anyio.run(connect)
    assert "Registration failed: 404" in str(failure.value)
    assert HOW_TO_SEND in str(failure.value)
    assert requests[0] == ("POST", "/mcp")
    assert requests[-1] == ("POST", "/register")
    assert ("GET", "/.well-known/oauth-protected-resource/mcp") in requests
    assert len(requests) == len(set(requests))  # no URL twice: no loop


EXPIRED_KEYS = {
    "chatgpt-connector-key": {"name": "ChatGPT Connector", "role": "user"},
    "old-connector-key": {"name": "Old", "role": "user", "expiresAt": "2020-01-01T00:00:00Z"},
}


@pytest.mark.parametrize(
    ("headers", "reason", "says"),
    [
        ({"X-API-Key": "not-a-key"}, "invalid_api_key", "not one this server holds"),
        ({"Authorization": "Bearer not-a-key"}, "invalid_api_key", "not one this server holds"),
        ({"X-API-Key": "old-connector-key"}, "api_key_expired", "has expired"),
    ],
    ids=["wrong-header", "wrong-bearer", "expired"],
)
@pytest.mark.parametrize("path", ["/register", "/.well-known/oauth-protected-resource/mcp"])
def test_a_refused_key_sent_to_a_discovery_url_is_named_with_its_reason(
    make_app, path, headers, reason, says
):
    """mcp-remote and the TypeScript SDK send the refused key to discovery and /register:
    the answer says the key was refused and why, instead of only "send it in X-API-Key"."""
    response = make_app(keys=EXPIRED_KEYS).test_client().post(path, headers=headers)
    assert response.status_code == 404
    body = response.get_json()
    assert body["credential"] == {"accepted": False, "reason": reason}
    assert body["message"].startswith(f"The API key sent with this request was refused ({reason})")
    assert says in body["message"]
    assert body["message"].endswith(HOW_TO_SEND)
    assert body["error_description"] == body["message"]
    assert "not-a-key" not in response.get_data(as_text=True)
    assert "old-connector-key" not in response.get_data(as_text=True)


def test_a_valid_key_sent_to_a_discovery_url_is_said_to_be_valid(make_app):
    response = (
        make_app().test_client().get("/register", headers={"X-API-Key": "chatgpt-connector-key"})
    )
    assert response.status_code == 404
    body = response.get_json()
    assert body["credential"] == {"accepted": True}
    assert body["message"].startswith("The API key sent with this request is valid")
    assert "chatgpt-connector-key" not in response.get_data(as_text=True)


def test_without_a_credential_the_answer_says_nothing_about_one(make_app):
    body = make_app().test_client().get("/register").get_json()
    assert "credential" not in body


def test_wrong_keys_at_discovery_urls_count_toward_the_lockout(make_app):
    client = make_app(MCP_AUTH_FAILURE_LIMIT="2 per minute").test_client()
    for attempt in range(2):
        client.get("/register", headers={"X-API-Key": f"guess-{attempt}"})
    response = client.get("/register", headers={"X-API-Key": "guess-3"})
    assert response.status_code == 429
    assert response.get_json()["error"] == "too_many_failed_attempts"
