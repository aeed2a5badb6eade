"""A per-key rate limit hit in the middle of an MCP session (the ratelimit module at work)."""

from __future__ import annotations

import pytest

pytest.importorskip("flask_mcp_auth.ratelimit")

import asyncio
from pathlib import Path

import httpx2
from asgiref.wsgi import WsgiToAsgi
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from support.example import IN_PROCESS_URL, make_example_app, tool_text

PER_MINUTE = 8
# Bounded: connecting costs a few requests (discover probe, initialize,
# notifications/initialized), so the limit is reached well within this many calls.
MAX_CALLS = PER_MINUTE + 5

KEYS = {
    "limited-key": {
        "name": "Limited",
        "role": "user",
        "permissions": ["read"],
        "rateLimit": {"requestsPerMinute": PER_MINUTE},
    },
    "unlimited-key": {"name": "Unlimited", "role": "user", "permissions": ["read"]},
}


def test_a_rate_limit_mid_session_fails_the_call_and_keeps_the_session(tmp_path: Path) -> None:
    app = make_example_app(tmp_path, KEYS)

    async def scenario() -> None:
        async with (
            httpx2.AsyncClient(
                transport=httpx2.ASGITransport(app=WsgiToAsgi(app)),
                headers={"X-API-Key": "limited-key"},
                timeout=httpx2.Timeout(30),
            ) as http,
            Client(streamable_http_client(IN_PROCESS_URL, http_client=http)) as client,
        ):
            limited: MCPError | None = None
            successes = 0
            for _ in range(MAX_CALLS):
                try:
                    await client.call_tool("echo", {"text": "hi"})
                    successes += 1
                except MCPError as error:
                    limited = error
                    break
            assert limited is not None, f"no rate limit after {MAX_CALLS} calls"
            assert successes < PER_MINUTE
            assert limited.code == -32029
            assert "rate_limit_exceeded" in str(limited)
            assert "limited-key" not in str(limited)

            # The session survives the 429: the next call is answered (limited again) ...
            with pytest.raises(MCPError, match="rate_limit_exceeded"):
                await client.call_tool("echo", {"text": "again"})
            # ... and succeeds on the same session once the caller switches keys.
            http.headers["X-API-Key"] = "unlimited-key"
            assert tool_text(await client.call_tool("echo", {"text": "after"})) == "after"

    asyncio.run(scenario())
