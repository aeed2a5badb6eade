"""The example service as users run it: gunicorn -c example_app/gunicorn.conf.py,
with the demo configuration, on a free loopback port, and the official mcp client."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from mcp.shared.exceptions import MCPError
from support.example import (
    DEMO_DOTENV,
    GUNICORN_CONF,
    LEVELS,
    connect,
    connect_failure,
    example_gunicorn,
    gunicorn_settings,
    tool_text,
)
from support.paths import DOCS_DIR, REPO_ROOT
from support.servers import GunicornServer, child_environment, free_port

# The demo keys of example_app/.env.example and what each may call.
DEMO_LEVELS = {
    "chatgpt-connector-key": ({"whoami", "echo", "list_notes", "add_note"}, {"list_keys"}),
    "demo-reader-key": ({"whoami", "echo", "list_notes"}, {"add_note", "list_keys"}),
    "demo-writer-key": ({"whoami", "echo", "list_notes", "add_note"}, {"list_keys"}),
    "demo-admin-key": ({"whoami", "echo", "list_notes", "add_note", "list_keys"}, set()),
}


def demo_environment(instance_path: Path) -> dict[str, str]:
    return {
        **child_environment(),
        "MCP_EXAMPLE_DOTENV": str(DEMO_DOTENV),
        "MCP_EXAMPLE_INSTANCE_PATH": str(instance_path),
        "MCP_EXAMPLE_WORKERS": "2",
    }


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GunicornServer]:
    folder = tmp_path_factory.mktemp("demo-server")
    server = example_gunicorn(folder, demo_environment(folder / "instance"))
    try:
        server.start()
        yield server
    finally:
        server.stop()


def test_the_seed_curl_test_works(demo_server: GunicornServer) -> None:
    # curl -H "X-API-Key: chatgpt-connector-key" http://localhost:3210/mcp/status
    response = httpx2.get(
        f"{demo_server.url}/mcp/status",
        headers={"X-API-Key": "chatgpt-connector-key"},
        timeout=10,
    )
    assert response.status_code == 200
    body = response.json()
    assert body["authenticated"] is True
    assert body["principal"]["name"] == "ChatGPT Connector"
    assert body["principal"]["permissions"] == ["*"]


def test_the_demo_configuration_is_announced_once(demo_server: GunicornServer) -> None:
    assert demo_server.output().count("DEMO CONFIGURATION") == 1


@pytest.mark.parametrize("key", list(DEMO_LEVELS))
def test_demo_keys_over_the_network(demo_server: GunicornServer, key: str) -> None:
    allowed, forbidden = DEMO_LEVELS[key]

    async def scenario() -> None:
        async with connect(demo_server.mcp_url, {"X-API-Key": key}) as client:
            assert client.protocol_version == "2026-07-28"
            listed = await client.list_tools()
            assert {tool.name for tool in listed.tools} == allowed
            assert tool_text(await client.call_tool("echo", {"text": key})) == key
            for tool in forbidden:
                with pytest.raises(MCPError, match="insufficient_permissions"):
                    await client.call_tool(tool, {"text": "x"})

    asyncio.run(scenario())


def test_bearer_key_over_the_network(demo_server: GunicornServer) -> None:
    async def scenario() -> None:
        headers = {"Authorization": "Bearer demo-reader-key"}
        async with connect(demo_server.mcp_url, headers) as client:
            whoami = await client.call_tool("whoami", {})
            assert whoami.structured_content is not None
            assert whoami.structured_content["name"] == "Demo Reader"

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({"X-API-Key": "not-a-demo-key"}, "invalid_api_key"),
        ({"X-API-Key": "demo-expired-key"}, "api_key_expired"),
        ({}, "missing_api_key"),
    ],
    ids=["wrong", "expired", "missing"],
)
def test_refused_keys_over_the_network(
    demo_server: GunicornServer, headers: dict[str, str], reason: str
) -> None:
    error = asyncio.run(connect_failure(demo_server.mcp_url, headers))
    assert error.code == -32001
    assert reason in str(error)


def test_get_is_405_with_a_key_and_401_without(demo_server: GunicornServer) -> None:
    response = httpx2.get(demo_server.mcp_url, headers={"X-API-Key": "demo-reader-key"}, timeout=10)
    assert response.status_code == 405
    assert response.headers["Allow"] == "POST, OPTIONS"
    anonymous = httpx2.get(demo_server.mcp_url, timeout=10)
    assert anonymous.status_code == 401
    assert anonymous.json()["error"] == "missing_api_key"


def test_notes_survive_a_restart(tmp_path: Path) -> None:
    keys = {"restart-writer-key": LEVELS["read-write"].definition}
    env = {**demo_environment(tmp_path / "instance"), "MCP_API_KEYS": json.dumps(keys)}
    server = example_gunicorn(tmp_path, env)
    headers = {"X-API-Key": "restart-writer-key"}

    async def add() -> None:
        async with connect(server.mcp_url, headers) as client:
            await client.call_tool("add_note", {"text": "before the restart"})

    async def listed() -> list[str]:
        async with connect(server.mcp_url, headers) as client:
            result = await client.call_tool("list_notes", {})
            assert result.structured_content is not None
            return [note["text"] for note in result.structured_content["notes"]]

    try:
        server.start()
        asyncio.run(add())
        server.stop()
        server.start()
        assert asyncio.run(listed()) == ["before the restart"]
    finally:
        server.stop()
    assert (tmp_path / "instance" / "notes.sqlite3").is_file()


def test_gunicorn_binds_127_0_0_1_3210_by_default() -> None:
    env = {**child_environment(), "MCP_EXAMPLE_DOTENV": str(DEMO_DOTENV)}
    assert gunicorn_settings(env, ("bind", "workers", "wsgi_app")) == {
        "bind": "127.0.0.1:3210",
        "workers": 1,
        "wsgi_app": "example_app.app:create_app()",
    }


def python_snippets(markdown: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", markdown.read_text(), flags=re.DOTALL)


def test_the_python_snippets_of_the_client_guide_run(demo_server: GunicornServer) -> None:
    snippets = python_snippets(DOCS_DIR / "clients.md")
    assert len(snippets) == 2
    outputs = []
    for snippet in snippets:
        code = snippet.replace("http://127.0.0.1:3210", demo_server.url)
        assert code != snippet, "the snippet no longer uses the documented URL"
        run = subprocess.run(
            [sys.executable, "-c", code],
            env=child_environment(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert run.returncode == 0, run.stderr
        outputs.append(run.stdout)
    assert "tools: ['whoami', 'echo', 'list_notes', 'add_note']" in outputs[0]
    assert "'text': 'hello from Python', 'author': 'Demo Writer'" in outputs[0]
    assert "refused: -32003 Forbidden (insufficient_permissions)" in outputs[0]
    assert "refused: -32001 Unauthorized (invalid_api_key)" in outputs[1]


def test_a_broken_key_store_stops_gunicorn_with_the_reason(tmp_path: Path) -> None:
    keys = '{"secret-key-id-123": {"name": "Broken", "role": "boss"}}'
    env = {**demo_environment(tmp_path / "instance"), "MCP_API_KEYS": keys}
    env["MCP_EXAMPLE_BIND"] = f"127.0.0.1:{free_port()}"
    run = subprocess.run(
        [sys.executable, "-m", "gunicorn", "-c", str(GUNICORN_CONF)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode != 0
    assert 'entry "Broken", field "role": unknown role \'boss\'' in run.stderr
    assert "secret-key-id-123" not in run.stderr + run.stdout
