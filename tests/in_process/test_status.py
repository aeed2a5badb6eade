"""/mcp/status: answers everyone, tells an authenticated caller who they are."""

from __future__ import annotations

from importlib.metadata import version

import pytest
from flask import Flask
from support.flask_app import build_app
from support.seed import SEED_KEY, SEED_QUICK_SETUP_JSON

import flask_mcp_auth
from flask_mcp_auth import MCPAuth


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
