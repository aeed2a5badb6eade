"""mcp-remote (the stdio bridge for Claude Desktop) against the example service under
gunicorn, driven through stdio by the official Python ``mcp`` client, with exactly the
configuration docs/clients.md gives for Claude Desktop (read from the guide)."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import pytest
from clients_support import NodeClients, kill_marked
from mcp import Client
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.shared.exceptions import MCPError
from support.example import EXPIRED_KEY, LEVELS, Level, mcp_errors, tool_text
from support.paths import DOCS_DIR
from support.servers import GunicornServer

DOC_URL = "http://127.0.0.1:3210/mcp"
SESSION_TIMEOUT = 45.0  # seconds; a session takes 2-3 s


def guide_config() -> dict[str, Any]:
    """The Claude Desktop entry of docs/clients.md: command, args, env."""
    text = (DOCS_DIR / "clients.md").read_text()
    section = text.split("## Claude Desktop", 1)[1].split("\n## ", 1)[0]
    (block,) = [b for b in re.findall(r"```json\n(.*?)```", section, re.S) if "mcp-remote" in b]
    (server,) = json.loads(block)["mcpServers"].values()
    return dict(server)


def parameters(
    clients: NodeClients, server: GunicornServer, home: Path, key: str | None
) -> StdioServerParameters:
    """The guide's entry, run by the installed mcp-remote instead of ``npx -y mcp-remote``.

    ``key`` None leaves the header out (a configuration without a key).
    """
    config = guide_config()
    assert config["command"] == "npx"
    args = list(config["args"])
    assert args[:3] == ["-y", "mcp-remote", DOC_URL]
    args[:3] = [str(clients.mcp_remote), server.mcp_url]
    (variable,) = config["env"]
    assert f"X-API-Key:${{{variable}}}" in args
    env: dict[str, str] = {}
    if key is None:
        at = args.index("--header")
        del args[at : at + 2]
    else:
        env[variable] = key
    return StdioServerParameters(
        command=str(clients.node), args=args, env=clients.environment(home, env)
    )


def run_session(params: StdioServerParameters, errlog: Path, scenario: Any, mode: str) -> Any:
    async def session() -> Any:
        with errlog.open("w") as log:
            async with Client(stdio_client(params, errlog=log), mode=mode) as client:
                return await scenario(client)

    try:
        return asyncio.run(asyncio.wait_for(session(), SESSION_TIMEOUT))
    finally:
        assert params.env is not None
        kill_marked(params.env["FLASK_MCP_AUTH_CLIENT_TEST"])


@pytest.mark.parametrize("level", LEVELS.values(), ids=list(LEVELS))
def test_each_permission_level_through_mcp_remote(
    node_clients: NodeClients, client_server: GunicornServer, tmp_path: Path, level: Level
) -> None:
    async def scenario(client: Client) -> None:
        assert client.protocol_version == "2025-11-25"  # Claude Desktop: initialize
        listed = await client.list_tools()
        assert {tool.name for tool in listed.tools} == level.visible
        whoami = await client.call_tool("whoami", {})
        assert whoami.structured_content is not None
        assert whoami.structured_content["name"] == level.definition["name"]
        if "echo" in level.visible:
            assert tool_text(await client.call_tool("echo", {"text": "hi"})) == "hi"
        for tool, phrase in level.forbidden.items():
            with pytest.raises(MCPError) as refused:
                await client.call_tool(tool, {"text": "x"})
            # mcp-remote passes the 403 on as an error carrying the service's answer.
            assert '"code":-32003' in str(refused.value)
            assert "insufficient_permissions" in str(refused.value)
            assert phrase in str(refused.value)
        # The refusals did not end the session.
        assert (await client.call_tool("whoami", {})).is_error is False

    params = parameters(node_clients, client_server, tmp_path, level.key)
    run_session(params, tmp_path / "mcp-remote.log", scenario, mode="legacy")


def test_a_2026_client_gets_2026_07_28_through_mcp_remote(
    node_clients: NodeClients, client_server: GunicornServer, tmp_path: Path
) -> None:
    # The Python client's server/discover probe passes through the bridge to the service.
    async def scenario(client: Client) -> str:
        assert tool_text(await client.call_tool("echo", {"text": "modern"})) == "modern"
        return client.protocol_version

    params = parameters(node_clients, client_server, tmp_path, LEVELS["read"].key)
    assert run_session(params, tmp_path / "mcp-remote.log", scenario, mode="auto") == "2026-07-28"


@pytest.mark.parametrize(
    ("key", "shown"),
    [
        ("not-a-key", "was refused (invalid_api_key)"),
        (EXPIRED_KEY, "was refused (api_key_expired)"),
        (None, "This MCP server offers no OAuth client registration"),
    ],
    ids=["wrong", "expired", "missing"],
)
def test_a_refused_key_ends_the_bridge_with_the_reason_in_its_log(
    node_clients: NodeClients,
    client_server: GunicornServer,
    tmp_path: Path,
    key: str | None,
    shown: str,
) -> None:
    async def scenario(client: Client) -> None:
        raise AssertionError("connected with a refused key")

    params = parameters(node_clients, client_server, tmp_path, key)
    log = tmp_path / "mcp-remote.log"
    errors: list[MCPError] = []
    try:
        run_session(params, log, scenario, mode="legacy")
    except* MCPError as group:
        errors = mcp_errors(group)
    # What the stdio side shows: the bridge went away.
    assert [str(error) for error in errors] == ["Connection closed"]
    # What mcp-remote logs (Claude Desktop's mcp*.log): the OAuth attempt and its answer.
    output = log.read_text()
    assert "Dynamic Client Registration rejected (HTTP 404)" in output
    assert '"error":"oauth_not_supported"' in output
    assert shown in output
    if key is None:
        assert "was refused (" not in output
