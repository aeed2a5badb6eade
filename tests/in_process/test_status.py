"""/mcp/status: answers everyone, tells an authenticated caller who they are, per caller
type; and a 401 challenge that matches the discovery answers."""

from __future__ import annotations

from datetime import UTC, datetime
from importlib.metadata import version

import pytest
from flask import Flask
from support.flask_app import build_app
from support.seed import SEED_KEY, SEED_QUICK_SETUP_JSON

import flask_mcp_auth
from flask_mcp_auth import MCPAuth, generate_api_key

# -- the status route --------------------------------------------------------------


def test_the_seed_curl_test(monkeypatch: pytest.MonkeyPatch) -> None:
    # export MCP_API_KEYS='...'  then
    # curl -H "X-API-Key: chatgpt-connector-key" http://localhost:3210/mcp/status
    monkeypatch.setenv("MCP_API_KEYS", SEED_QUICK_SETUP_JSON)
    app = Flask("seed")
    MCPAuth(app)
    response = app.test_client().get("/mcp/status", headers={"X-API-Key": SEED_KEY})
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    body = response.get_json()
    # Fields added by other features (server time, methods, limits) are checked elsewhere.
    core = {k: body[k] for k in ("status", "version", "authenticated", "principal")}
    assert core == {
        "status": "ok",
        "version": flask_mcp_auth.__version__,
        "authenticated": True,
        "principal": {
            "name": "ChatGPT Connector",
            "user_id": "connector-user",
            "role": "user",
            "permissions": ["*"],
            "expires_at": None,
        },
    }


def test_version_is_the_installed_package_version() -> None:
    body = build_app().test_client().get("/mcp/status").get_json()
    assert body["version"] == flask_mcp_auth.__version__ == version("flask-mcp-auth")


@pytest.mark.parametrize("role", ["guest", "developer"])
def test_anonymous_caller_gets_status_without_a_principal(role: str) -> None:
    response = build_app(MCP_DEFAULT_ROLE=role).test_client().get("/mcp/status")
    assert response.status_code == 200
    body = response.get_json()
    assert "principal" not in body
    assert {k: body[k] for k in ("status", "version", "authenticated", "role")} == {
        "status": "ok",
        "version": flask_mcp_auth.__version__,
        "authenticated": False,
        "role": role,
    }


def test_anonymous_caller_gets_status_when_anonymous_access_is_off() -> None:
    response = build_app(MCP_DEFAULT_ROLE="").test_client().get("/mcp/status")
    assert response.status_code == 200
    assert response.get_json()["authenticated"] is False
    assert "principal" not in response.get_json()


def test_principal_fields_of_a_full_key() -> None:
    keys = {
        "full-key": {
            "name": "Full",
            "userId": "u-1",
            "role": "admin",
            "permissions": ["write", "read"],
            "rateLimit": {"requestsPerMinute": 5},
            "expiresAt": "2099-12-31T23:59:59+01:00",
        }
    }
    client = build_app(keys).test_client()
    body = client.get("/mcp/status", headers={"Authorization": "Bearer full-key"}).get_json()
    assert body["authenticated"] is True
    assert body["principal"] == {
        "name": "Full",
        "user_id": "u-1",
        "role": "admin",
        "permissions": ["read", "write"],
        "expires_at": "2099-12-31T22:59:59Z",
    }


def test_principal_of_an_unnamed_key_has_nulls_not_secrets() -> None:
    client = build_app({"bare-secret-id": {}}).test_client()
    body = client.get("/mcp/status?api_key=bare-secret-id").get_json()
    assert body["principal"] == {
        "name": None,
        "user_id": None,
        "role": "guest",
        "permissions": [],
        "expires_at": None,
    }


def test_status_url_is_configurable() -> None:
    client = build_app(MCP_STATUS_URL="/health/auth").test_client()
    assert client.get("/health/auth", headers={"X-API-Key": SEED_KEY}).get_json()["authenticated"]
    assert client.get("/mcp/status").status_code == 404


def test_empty_status_url_mounts_no_route() -> None:
    app = build_app(MCP_STATUS_URL="")
    assert "mcp_auth.status" not in app.view_functions
    assert app.test_client().get("/mcp/status").status_code == 404


def test_status_answers_get_only() -> None:
    client = build_app().test_client()
    assert client.post("/mcp/status").status_code == 405
    assert client.head("/mcp/status").status_code == 200


def test_a_status_url_without_leading_slash_is_a_config_error() -> None:
    import pytest
    from flask import Flask

    from flask_mcp_auth import ConfigError, MCPAuth

    with pytest.raises(ConfigError, match="MCP_STATUS_URL"):
        MCPAuth(Flask("bad-status"), status_url="mcp/status")


# -- fields per caller type, and the 401 challenge ---------------------------------

PLAIN_ID = SEED_KEY  # "chatgpt-connector-key", the Quick Setup key
METHODS = [
    {"in": "header", "name": "X-API-Key"},
    {"in": "header", "name": "Authorization", "scheme": "Bearer"},
    {"in": "query", "name": "api_key"},
]


def test_anonymous_caller_sees_methods_and_server_time(make_app):
    response = make_app().test_client().get("/mcp/status")
    body = response.get_json()
    assert body["authenticated"] is False
    assert body["role"] == "guest"
    assert "principal" not in body
    assert body["authentication"] == {
        "type": "api_key",
        "oauth": False,
        "methods": METHODS,
        "key_formats": ["<keyId>"],
    }
    server_time = datetime.fromisoformat(body["server_time"])
    assert body["server_time"].endswith("Z")
    assert server_time.tzinfo is not None and server_time.utcoffset().total_seconds() == 0
    assert server_time.microsecond == 0
    assert abs((datetime.now(UTC) - server_time).total_seconds()) < 3600  # the clock, not a stub


@pytest.mark.parametrize(
    ("kwargs", "source"),
    [
        ({"headers": {"X-API-Key": PLAIN_ID}}, "header"),
        ({"headers": {"Authorization": f"Bearer {PLAIN_ID}"}}, "bearer"),
        ({"query_string": {"api_key": PLAIN_ID}}, "query"),
    ],
)
def test_authenticated_caller_sees_principal_and_credential_source(make_app, kwargs, source):
    response = make_app().test_client().get("/mcp/status", **kwargs)
    body = response.get_json()
    assert body["authenticated"] is True
    assert body["credential_source"] == source
    assert body["principal"]["name"] == "ChatGPT Connector"
    assert body["authentication"]["methods"] == METHODS
    assert "server_time" in body
    assert PLAIN_ID not in response.get_data(as_text=True)


def test_signed_key_caller_and_restricted_methods(make_app):
    app = make_app(
        JWT_SECRET="s",
        MCP_REQUIRE_SIGNED_KEYS=True,
        MCP_ACCEPT_BEARER=False,
        MCP_API_KEY_QUERY_PARAM="",
    )
    key = generate_api_key(PLAIN_ID, "s")
    response = app.test_client().get("/mcp/status", headers={"X-API-Key": key})
    body = response.get_json()
    assert body["authenticated"] is True
    assert body["authentication"]["methods"] == [{"in": "header", "name": "X-API-Key"}]
    assert body["authentication"]["key_formats"] == ["mcp_<keyId>_<signature>"]
    text = response.get_data(as_text=True)
    assert key not in text and key[-43:] not in text


def test_signed_and_plain_key_formats_when_both_are_accepted(make_app):
    body = make_app(JWT_SECRET="s").test_client().get("/mcp/status").get_json()
    assert body["authentication"]["key_formats"] == ["mcp_<keyId>_<signature>", "<keyId>"]


def test_challenge_lists_the_accepted_schemes_and_no_resource_metadata(make_app):
    client = make_app().test_client()
    invalid = client.get("/data", headers={"X-API-Key": "wrong"})
    assert invalid.status_code == 401
    assert invalid.headers["WWW-Authenticate"] == (
        'Bearer realm="mcp", error="invalid_token", error_description="invalid_api_key", '
        'APIKey realm="mcp", header="X-API-Key", query="api_key"'
    )
    missing = make_app(MCP_DEFAULT_ROLE="").test_client().get("/data")
    assert missing.headers["WWW-Authenticate"] == (
        'Bearer realm="mcp", APIKey realm="mcp", header="X-API-Key", query="api_key"'
    )
    assert "resource_metadata" not in missing.headers["WWW-Authenticate"]


def test_challenge_and_message_follow_the_settings(make_app):
    client = make_app(
        MCP_DEFAULT_ROLE="",
        MCP_ACCEPT_BEARER=False,
        MCP_API_KEY_QUERY_PARAM="",
        MCP_API_KEY_HEADER="X-Connector-Key",
        MCP_AUTH_REALM='tools "prod"',
    ).test_client()
    response = client.get("/data")
    assert response.headers["WWW-Authenticate"] == (
        'APIKey realm="tools \\"prod\\"", header="X-Connector-Key"'
    )
    assert response.get_json()["message"] == (
        "This endpoint requires an API key. Send it in the X-Connector-Key header."
    )


def test_missing_key_message_with_default_settings(make_app):
    body = make_app(MCP_DEFAULT_ROLE="").test_client().get("/data").get_json()
    assert body == {
        "error": "missing_api_key",
        "message": "This endpoint requires an API key. Send it in the X-API-Key header, "
        "as 'Authorization: Bearer <key>' or in the api_key query parameter.",
    }
