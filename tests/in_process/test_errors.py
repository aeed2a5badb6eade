"""401 responses: JSON body, WWW-Authenticate, Werkzeug subclasses, JSON-RPC error shape."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from asgiref.wsgi import WsgiToAsgi
from flask import Flask
from support.flask_app import build_app
from support.seed import SEED_KEY
from werkzeug.exceptions import HTTPException, Unauthorized

from flask_mcp_auth import (
    APIKeyExpired,
    AuthenticationError,
    InvalidAPIKey,
    MCPAuthError,
    MissingAPIKey,
)
from flask_mcp_auth.errors import JSONRPC_UNAUTHORIZED

KEYS = {
    SEED_KEY: {"name": "ChatGPT Connector", "role": "user", "permissions": ["*"]},
    "expired-key": {"name": "Old", "expiresAt": "2020-01-01T00:00:00Z"},
}

# reason -> (app.config, request headers) that produce it on GET /whoami
CASES: dict[str, tuple[dict[str, Any], dict[str, str]]] = {
    "missing_api_key": ({"MCP_DEFAULT_ROLE": ""}, {}),
    "invalid_api_key": ({}, {"X-API-Key": "wrong-key"}),
    "api_key_expired": ({}, {"X-API-Key": "expired-key"}),
}
REASONS = list(CASES)


def refused(reason: str, method: str = "GET", path: str = "/whoami", **kwargs: Any) -> Any:
    config, headers = CASES[reason]
    app = build_app(KEYS, **config)
    response = app.test_client().open(path, method=method, headers=headers, **kwargs)
    assert response.status_code == 401
    return response


@pytest.mark.parametrize("reason", REASONS)
def test_body_is_json_with_error_and_message_only(reason: str) -> None:
    response = refused(reason)
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == {"error", "message"}
    assert body["error"] == reason
    assert body["message"].strip()


def test_messages_say_what_to_check() -> None:
    assert "X-API-Key" in refused("missing_api_key").get_json()["message"]
    invalid = refused("invalid_api_key").get_json()["message"]
    assert "key ID matches exactly" in invalid  # the seed's Troubleshooting section
    assert "not one this server holds" in invalid
    assert "revoked" in invalid
    # A malformed key document stops start-up, so it can never be why a key is refused;
    # nor does the message name one source of keys when they may come from a file.
    assert "formatted" not in invalid
    assert "MCP_API_KEYS" not in invalid
    assert "expired" in refused("api_key_expired").get_json()["message"]


def test_www_authenticate_for_a_missing_key_is_a_plain_challenge() -> None:
    challenge = refused("missing_api_key").headers["WWW-Authenticate"]
    assert (
        challenge == 'Bearer realm="mcp", APIKey realm="mcp", header="X-API-Key", query="api_key"'
    )


@pytest.mark.parametrize("reason", ["invalid_api_key", "api_key_expired"])
def test_www_authenticate_for_a_bad_key_says_invalid_token(reason: str) -> None:
    challenge = refused(reason).headers["WWW-Authenticate"]
    assert challenge == (
        f'Bearer realm="mcp", error="invalid_token", error_description="{reason}", '
        'APIKey realm="mcp", header="X-API-Key", query="api_key"'
    )


def test_the_realm_is_configurable() -> None:
    app = build_app(KEYS, MCP_AUTH_REALM="my-service")
    response = app.test_client().get("/whoami", headers={"X-API-Key": "nope"})
    assert response.headers["WWW-Authenticate"].startswith('Bearer realm="my-service"')


@pytest.mark.parametrize("error", [MissingAPIKey, InvalidAPIKey, APIKeyExpired])
def test_401_errors_are_werkzeug_unauthorized(error: type[AuthenticationError]) -> None:
    assert issubclass(error, Unauthorized)
    assert issubclass(error, MCPAuthError)
    assert issubclass(error, HTTPException)
    assert error.code == 401


@pytest.mark.parametrize("reason", REASONS)
def test_app_errorhandler_401_replaces_the_body(reason: str) -> None:
    config, headers = CASES[reason]
    app = build_app(KEYS, **config)
    seen: list[HTTPException] = []

    @app.errorhandler(401)
    def custom(error: HTTPException) -> tuple[str, int]:
        seen.append(error)
        return "custom refusal", 401

    response = app.test_client().get("/whoami", headers=headers)
    assert response.status_code == 401
    assert response.get_data(as_text=True) == "custom refusal"
    [error] = seen
    assert isinstance(error, MCPAuthError)
    assert error.reason == reason


def test_errorhandler_for_unauthorized_class_also_applies() -> None:
    app = build_app(KEYS)

    @app.errorhandler(Unauthorized)
    def custom(error: Unauthorized) -> tuple[dict[str, str], int]:
        return {"mine": type(error).__name__}, 401

    response = app.test_client().get("/whoami", headers={"X-API-Key": "wrong"})
    assert response.get_json() == {"mine": "InvalidAPIKey"}


def rpc(message: Any) -> dict[str, Any]:
    return {"json": message}


@pytest.mark.parametrize("reason", REASONS)
@pytest.mark.parametrize("request_id", ["req-1", 7, 0])
def test_json_rpc_request_gets_a_json_rpc_error_echoing_the_id(
    reason: str, request_id: str | int
) -> None:
    message = {"jsonrpc": "2.0", "id": request_id, "method": "tools/list"}
    response = refused(reason, "POST", "/mcp", **rpc(message))
    assert response.mimetype == "application/json"
    assert "WWW-Authenticate" in response.headers
    body = response.get_json()
    assert set(body) == {"jsonrpc", "id", "error"}
    assert body["jsonrpc"] == "2.0"
    assert body["id"] == request_id
    assert type(body["id"]) is type(request_id)
    error = body["error"]
    assert error["code"] == JSONRPC_UNAUTHORIZED
    assert reason in error["message"]
    assert error["data"]["reason"] == reason
    assert error["data"]["status"] == 401


def test_json_rpc_error_message_carries_the_human_text() -> None:
    message = {"jsonrpc": "2.0", "id": 1, "method": "initialize"}
    body = refused("invalid_api_key", "POST", "/mcp", **rpc(message)).get_json()
    assert "key ID matches exactly" in body["error"]["message"]


@pytest.mark.parametrize(
    "message",
    [
        {"jsonrpc": "2.0", "method": "notifications/initialized"},  # notification: no id
        {"jsonrpc": "2.0", "id": None, "method": "ping"},
        {"jsonrpc": "2.0", "id": True, "method": "ping"},  # not a valid id
        {"jsonrpc": "2.0", "id": {"nested": 1}, "method": "ping"},
        [{"jsonrpc": "2.0", "id": 1, "method": "ping"}],  # batch
    ],
)
def test_json_rpc_without_a_usable_id_gets_id_null(message: Any) -> None:
    body = refused("invalid_api_key", "POST", "/mcp", **rpc(message)).get_json()
    assert body["jsonrpc"] == "2.0"
    assert body["id"] is None
    assert body["error"]["data"]["reason"] == "invalid_api_key"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"json": {"query": "select"}},
        {"json": {"jsonrpc": "1.0", "id": 1, "method": "x"}},
        {"json": [1, 2, 3]},
        {"data": "jsonrpc=2.0&id=1"},
        {"data": '{"jsonrpc": "2.0", "id": 1', "content_type": "application/json"},
        {},
    ],
)
def test_a_post_that_is_not_json_rpc_gets_the_plain_body(kwargs: dict[str, Any]) -> None:
    body = refused("invalid_api_key", "POST", "/whoami", **kwargs).get_json()
    assert body == {"error": "invalid_api_key", "message": InvalidAPIKey.description}


def test_a_get_gets_the_plain_body_even_with_json_rpc_in_the_query() -> None:
    body = refused("invalid_api_key", "GET", "/whoami", query_string={"jsonrpc": "2.0"}).get_json()
    assert set(body) == {"error", "message"}


# -- the official MCP client shows the reason, not "Server returned an error response" --


def mcp_client_error(app: Flask, headers: dict[str, str]) -> Any:
    """Connect the official ``mcp`` client in-process and return the MCPError it raised."""
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared.exceptions import MCPError

    async def connect() -> None:
        transport = httpx2.ASGITransport(app=WsgiToAsgi(app))
        async with httpx2.AsyncClient(
            transport=transport, base_url="http://testserver", headers=headers
        ) as http:
            with anyio.fail_after(30):
                async with Client(
                    streamable_http_client("http://testserver/mcp", http_client=http)
                ) as client:
                    await client.list_tools()

    try:
        anyio.run(connect)
    except BaseException as exc:  # the client wraps failures in ExceptionGroups
        pending = [exc]
        while pending:
            current = pending.pop()
            if isinstance(current, MCPError):
                return current
            if isinstance(current, BaseExceptionGroup):
                pending.extend(current.exceptions)
        raise
    pytest.fail("the client connected although the key was refused")


@pytest.mark.parametrize("reason", REASONS)
def test_the_official_mcp_client_reports_the_reason(reason: str) -> None:
    config, headers = CASES[reason]
    error = mcp_client_error(build_app(KEYS, **config), headers)
    assert error.error.code == JSONRPC_UNAUTHORIZED
    assert reason in error.error.message
    assert "Server returned an error response" not in error.error.message
