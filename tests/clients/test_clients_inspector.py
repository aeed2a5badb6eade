"""The MCP Inspector CLI (@modelcontextprotocol/inspector 2.x, Node 22) against the example
service under gunicorn: the commands of docs/clients.md, read from the guide, run with the
installed Inspector instead of ``npx``, without a terminal."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
from clients_support import NodeClients
from support.example import EXPIRED_KEY, LEVELS, Level
from support.paths import DOCS_DIR
from support.servers import GunicornServer

DOC_URL = "http://127.0.0.1:3210/mcp"
DOC_KEY = "X-API-Key: demo-reader-key"


def guide_commands() -> list[list[str]]:
    """Every ``npx @modelcontextprotocol/inspector`` command of the guide's Inspector section."""
    text = (DOCS_DIR / "clients.md").read_text()
    section = text.split("## MCP Inspector (command line)", 1)[1].split("\n## ", 1)[0]
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", section, re.S):
        for command in block.replace("\\\n", " ").strip().split("\n\n"):
            words = shlex.split(command.strip())
            assert words[:2] == ["npx", "@modelcontextprotocol/inspector"], words
            commands.append(words[2:])
    assert len(commands) == 3, commands
    return commands


def guide_command(*, method: str, refusal: bool = False) -> list[str]:
    (found,) = [
        c
        for c in guide_commands()
        if c[c.index("--method") + 1] == method and ("--stored-auth-only" in c) == refusal
    ]
    assert found[found.index("--cli") + 1] == DOC_URL
    return found


def with_key(words: list[str], server: GunicornServer, key: str | None) -> list[str]:
    """The command for ``server`` with ``key`` in its header (``key`` None: no header)."""
    words = [server.mcp_url if word == DOC_URL else word for word in words]
    at = words.index("--header")
    if key is None:
        del words[at : at + 2]
    else:
        assert words[at + 1] in (DOC_KEY, "X-API-Key: $KEY")
        words[at + 1] = f"X-API-Key: {key}"
    return words


def inspect(clients: NodeClients, tmp_path: Path, words: list[str]) -> tuple[int, str]:
    run = clients.run([str(clients.inspector_bin), *words], clients.environment(tmp_path))
    return run.returncode, run.stdout + run.stderr


@pytest.mark.parametrize("level", LEVELS.values(), ids=list(LEVELS))
def test_each_permission_level_lists_and_calls(
    node_clients: NodeClients, client_server: GunicornServer, tmp_path: Path, level: Level
) -> None:
    code, output = inspect(
        node_clients,
        tmp_path,
        with_key(guide_command(method="tools/list"), client_server, level.key),
    )
    assert code == 0, output
    assert {tool["name"] for tool in json.loads(output)["tools"]} == level.visible

    call = with_key(guide_command(method="tools/call"), client_server, level.key)
    assert call[call.index("--tool-name") + 1] == "echo"
    code, output = inspect(node_clients, tmp_path, call)
    if "echo" in level.visible:
        assert code == 0, output
        assert json.loads(output)["content"] == [{"type": "text", "text": "hello"}]
    else:
        assert code == 5, output
        assert "tool_not_found" in output
        assert "Tool 'echo' not found on server" in output

    # A tool the key may not call is refused by the Inspector itself (it is not listed).
    tool = next(iter(level.forbidden))
    call[call.index("--tool-name") + 1] = tool
    code, output = inspect(node_clients, tmp_path, call)
    assert code == 5, output
    assert f"Tool '{tool}' not found on server" in output


@pytest.mark.parametrize(
    ("key", "reason"),
    [("not-a-key", "invalid_api_key"), (EXPIRED_KEY, "api_key_expired"), (None, "missing_api_key")],
    ids=["wrong", "expired", "missing"],
)
def test_a_refused_key_exits_3_with_the_reason(
    node_clients: NodeClients,
    client_server: GunicornServer,
    tmp_path: Path,
    key: str | None,
    reason: str,
) -> None:
    refusal = with_key(guide_command(method="tools/list", refusal=True), client_server, key)
    code, output = inspect(node_clients, tmp_path, refusal)
    assert code == 3, output
    error = json.loads(output)["error"]
    assert error["code"] == "auth_required"
    assert '"code":-32001' in error["message"]
    assert f"({reason})" in error["message"]

    # Without --stored-auth-only and without a terminal it says only that OAuth needs one.
    refusal.remove("--stored-auth-only")
    code, output = inspect(node_clients, tmp_path, refusal)
    assert code == 3, output
    assert "Interactive OAuth requires a TTY on stdin or stderr" in output
    assert "--stored-auth-only" in output
