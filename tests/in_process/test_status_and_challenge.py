"""/mcp/status per caller type, and a 401 challenge that matches the discovery answers."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from flask_mcp_auth import generate_api_key

PLAIN_ID = "chatgpt-connector-key"  # from conftest.SEED_KEYS
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
