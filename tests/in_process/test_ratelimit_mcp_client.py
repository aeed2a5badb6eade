"""What the official MCP client (2.x) shows a user whose key hits its rate limit."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from flask import Flask, request

from flask_mcp_auth import MCPAuth

mcp_client = pytest.importorskip("mcp.client.streamable_http")
httpx2 = pytest.importorskip("httpx2")
asgiref_wsgi = pytest.importorskip("asgiref.wsgi")

KEY = "chatgpt-connector-key"
TOOLS = [
    {
        "name": "echo",
        "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}},
    }
]


def mcp_app(per_minute: int) -> Flask:
    """A hand-written stateless MCP JSON-RPC endpoint, as Flask MCP services have."""
    app = Flask(__name__)
    app.config["MCP_API_KEYS"] = json.dumps(
        {KEY: {"name": "Connector", "role": "user", "rateLimit": {"requestsPerMinute": per_minute}}}
    )
    MCPAuth(app)

    @app.post("/mcp")
    def mcp() -> Any:
        message = request.get_json()
        if "id" not in message:
            return "", 202
        method, params = message["method"], message.get("params") or {}
        if method == "initialize":
            result: dict[str, Any] = {
                "protocolVersion": params.get("protocolVersion", "2025-11-25"),
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "rate-limit-test", "version": "1"},
            }
        elif method == "tools/list":
            result = {"tools": TOOLS}
        elif method == "tools/call":
            text = params["arguments"]["text"]
            result = {"content": [{"type": "text", "text": text}], "isError": False}
        else:
            error = {"code": -32601, "message": f"Method not found: {method}"}
            return {"jsonrpc": "2.0", "id": message["id"], "error": error}
        return {"jsonrpc": "2.0", "id": message["id"], "result": result}

    return app


async def session(app: Flask) -> list[Any]:
    """Connect with the key, then call the tool five times; return results or errors."""
    from mcp import Client
    from mcp.shared.exceptions import MCPError

    transport = httpx2.ASGITransport(app=asgiref_wsgi.WsgiToAsgi(app))
    outcomes: list[Any] = []
    async with (
        httpx2.AsyncClient(
            transport=transport, base_url="http://testserver", headers={"X-API-Key": KEY}
        ) as http,
        Client(
            mcp_client.streamable_http_client("http://testserver/mcp", http_client=http),
            mode="legacy",
        ) as client,
    ):
        for i in range(5):
            try:
                result = await client.call_tool("echo", {"text": f"hi {i}"})
                outcomes.append(result.content[0].text)
            except MCPError as error:
                outcomes.append(error)
    return outcomes


def test_client_shows_which_window_was_hit_and_keeps_the_session() -> None:
    outcomes = asyncio.run(asyncio.wait_for(session(mcp_app(per_minute=5)), timeout=60))
    # The handshake takes some of the five requests; the calls that fit succeed in order.
    served = [o for o in outcomes if isinstance(o, str)]
    assert served and served == [f"hi {i}" for i in range(len(served))]
    refused = outcomes[len(served) :]
    assert len(refused) >= 2
    for error in refused:  # the session survives a 429: every later call gets the reason
        assert error.error.code == -32029
        assert "rate_limit_exceeded" in error.error.message
        assert "5 requests per minute" in error.error.message
        assert "resets in" in error.error.message
