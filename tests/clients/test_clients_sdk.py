"""The official MCP TypeScript SDK client (@modelcontextprotocol/sdk) against the example
service under gunicorn: tests/clients/sdk_client.mjs, driven with JSON in and JSON out."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from clients_support import LIMITED_KEY, LIMITED_PER_MINUTE, NodeClients
from support.example import EXPIRED_KEY, LEVELS, Level
from support.paths import DOCS_DIR
from support.servers import GunicornServer

DOC_URL = "http://127.0.0.1:3210/mcp"


def run_sessions(
    clients: NodeClients, server: GunicornServer, tmp_path: Any, sessions: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    payload = json.dumps({"url": server.mcp_url, "sessions": sessions})
    run = clients.run([str(clients.sdk_script), payload], clients.environment(tmp_path))
    assert run.returncode == 0, run.stderr
    return list(json.loads(run.stdout)["sessions"])


def tool_names(step: dict[str, Any]) -> set[str]:
    assert step["ok"], step
    return {tool["name"] for tool in step["result"]["tools"]}


def text_of(step: dict[str, Any]) -> str:
    assert step["ok"], step
    return "".join(part["text"] for part in step["result"]["content"] if part["type"] == "text")


@pytest.mark.parametrize("level", LEVELS.values(), ids=list(LEVELS))
def test_each_permission_level_lists_and_calls_its_tools(
    node_clients: NodeClients, client_server: GunicornServer, tmp_path: Any, level: Level
) -> None:
    forbidden = list(level.forbidden)
    steps: list[dict[str, Any]] = [{"list": True}, {"call": "whoami"}]
    steps += [{"call": tool, "arguments": {"text": "x"}} for tool in forbidden]
    steps.append({"call": "whoami"})  # after the refusals: the session goes on
    (session,) = run_sessions(
        node_clients, client_server, tmp_path, [{"key": level.key, "steps": steps}]
    )
    assert session["connected"], session["error"]
    assert session["protocolVersion"] == "2025-11-25"  # SDK 1.x: the initialize handshake
    assert tool_names(session["steps"][0]) == level.visible
    assert session["steps"][1]["result"]["structuredContent"]["name"] == level.definition["name"]
    for tool, step in zip(forbidden, session["steps"][2:-1], strict=True):
        assert not step["ok"], (tool, step)
        error = step["error"]
        assert error["name"] == "StreamableHTTPError"
        assert error["code"] == 403
        assert '"code":-32003' in error["message"]
        assert "insufficient_permissions" in error["message"]
        assert level.forbidden[tool] in error["message"]
    assert session["steps"][-1]["ok"], session["steps"][-1]


def test_a_403_mid_session_then_the_session_goes_on(
    node_clients: NodeClients, client_server: GunicornServer, tmp_path: Any
) -> None:
    steps = [
        {"call": "echo", "arguments": {"text": "before"}},
        {"call": "add_note", "arguments": {"text": "not allowed"}},
        {"call": "echo", "arguments": {"text": "after"}},
    ]
    (session,) = run_sessions(
        node_clients, client_server, tmp_path, [{"key": LEVELS["read"].key, "steps": steps}]
    )
    before, refused, after = session["steps"]
    assert text_of(before) == "before"
    assert refused["error"]["code"] == 403
    assert "permission 'write'" in refused["error"]["message"]
    assert text_of(after) == "after"


@pytest.mark.parametrize(
    ("key", "reason"),
    [("not-a-key", "invalid_api_key"), (EXPIRED_KEY, "api_key_expired"), (None, "missing_api_key")],
    ids=["wrong", "expired", "missing"],
)
def test_a_refused_key_fails_connect_with_401_and_the_reason(
    node_clients: NodeClients,
    client_server: GunicornServer,
    tmp_path: Any,
    key: str | None,
    reason: str,
) -> None:
    (session,) = run_sessions(
        node_clients, client_server, tmp_path, [{"key": key, "steps": [{"list": True}]}]
    )
    assert not session["connected"]
    error = session["error"]
    assert error["name"] == "StreamableHTTPError"
    assert error["code"] == 401
    assert '"code":-32001' in error["message"]
    assert f"({reason})" in error["message"]


def test_a_429_mid_session_fails_the_call_and_another_key_goes_on(
    node_clients: NodeClients, client_server: GunicornServer, tmp_path: Any
) -> None:
    # Bounded: connecting costs up to three requests of the limit (initialize,
    # notifications/initialized, the GET the SDK tries), so it is used up within
    # LIMITED_PER_MINUTE calls; no test waits for the window to pass.
    calls = [{"call": "echo", "arguments": {"text": str(n)}} for n in range(LIMITED_PER_MINUTE + 2)]
    limited, other = run_sessions(
        node_clients,
        client_server,
        tmp_path,
        [
            {"key": LIMITED_KEY, "steps": calls},
            {"key": LEVELS["read"].key, "steps": [{"call": "echo", "arguments": {"text": "on"}}]},
        ],
    )
    assert limited["connected"], limited["error"]
    outcomes = [step["ok"] for step in limited["steps"]]
    first_refusal = outcomes.index(False)
    assert first_refusal >= 1, limited["steps"]
    assert not any(outcomes[first_refusal:]), "once used up, the limit holds for the window"
    for step in limited["steps"][first_refusal:]:
        error = step["error"]
        # Each call is answered by the service (not "Not connected"): the session lives on.
        assert error["code"] == 429
        assert '"code":-32029' in error["message"]
        assert "rate_limit_exceeded" in error["message"]
        assert f"{LIMITED_PER_MINUTE} requests per minute" in error["message"]
        assert LIMITED_KEY not in error["message"]
    assert text_of(other["steps"][0]) == "on"


# -- the client guide's snippet is the script's ----------------------------------------


def guide_snippet() -> str:
    text = (DOCS_DIR / "clients.md").read_text()
    section = text.split("## TypeScript / Node: the official SDK", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```js\n(.*?)```", section, re.S)
    assert len(blocks) == 1
    return str(blocks[0])


def test_the_guide_connects_as_the_script_does(node_clients: NodeClients) -> None:
    script = node_clients.sdk_script.read_text()
    tested = script.split("// --- docs/clients.md: begin\n", 1)[1].split(
        "// --- docs/clients.md: end"
    )[0]
    snippet = guide_snippet()
    assert tested in snippet, "docs/clients.md and sdk_client.mjs connect differently"
    assert snippet.startswith(
        script[script.index("import { Client }") : script.index("\n\n// ---")]
    )


def test_the_guide_snippet_runs(
    node_clients: NodeClients, client_server: GunicornServer, tmp_path: Any
) -> None:
    snippet = guide_snippet()
    code = snippet.replace(DOC_URL, client_server.mcp_url).replace(
        '"demo-reader-key"', f'"{LEVELS["read"].key}"'
    )
    assert client_server.mcp_url in code and LEVELS["read"].key in code
    run = node_clients.run(
        ["--input-type=module", "--eval", code], node_clients.environment(tmp_path)
    )
    assert run.returncode == 0, run.stderr
    assert "[ 'whoami', 'echo', 'list_notes' ]" in run.stdout
    assert "text: 'hello'" in run.stdout
