"""The example service with the official ``mcp`` client (2.x), in-process over ASGI."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from flask import Flask
from mcp.shared.exceptions import MCPError
from support.example import (
    EXPIRED_KEY,
    IN_PROCESS_URL,
    LEVELS,
    Level,
    connect,
    connect_failure,
    make_example_app,
    tool_text,
)

WRITER = LEVELS["read-write"].key
READER = LEVELS["read"].key


@pytest.fixture
def app(tmp_path: Path) -> Flask:
    return make_example_app(tmp_path)


@pytest.mark.parametrize("level", LEVELS.values(), ids=list(LEVELS))
def test_each_permission_level(app: Flask, level: Level) -> None:
    async def scenario() -> None:
        async with connect(IN_PROCESS_URL, {"X-API-Key": level.key}, app=app) as client:
            # mode="auto": the server/discover probe succeeds, no initialize
            assert client.protocol_version == "2026-07-28"
            assert client.server_info is not None
            assert client.server_info.name == "flask-mcp-auth-example"
            assert client.server_capabilities.tools is not None

            listed = await client.list_tools()
            assert {tool.name for tool in listed.tools} == level.visible

            whoami = await client.call_tool("whoami", {})
            assert whoami.is_error is False
            assert whoami.structured_content is not None
            assert whoami.structured_content["name"] == level.definition["name"]

            if "echo" in level.visible:
                echoed = await client.call_tool("echo", {"text": "hello"})
                assert tool_text(echoed) == "hello"

            for tool, phrase in level.forbidden.items():
                with pytest.raises(MCPError) as refused:
                    await client.call_tool(tool, {"text": "x"})
                assert refused.value.code == -32003
                assert "insufficient_permissions" in str(refused.value)
                assert phrase in str(refused.value), (tool, str(refused.value))

            # A refusal does not end the session.
            assert (await client.call_tool("whoami", {})).is_error is False

    asyncio.run(scenario())


def test_notes_round_trip(app: Flask) -> None:
    async def scenario() -> None:
        async with connect(IN_PROCESS_URL, {"X-API-Key": WRITER}, app=app) as writer:
            added = await writer.call_tool("add_note", {"text": "buy milk"})
            assert added.structured_content is not None
            assert added.structured_content["author"] == "Writer"
        async with connect(IN_PROCESS_URL, {"X-API-Key": READER}, app=app) as reader:
            listed = await reader.call_tool("list_notes", {})
            assert listed.structured_content is not None
            assert [n["text"] for n in listed.structured_content["notes"]] == ["buy milk"]

    asyncio.run(scenario())


def test_a_tool_error_is_a_result_not_an_exception(app: Flask) -> None:
    async def scenario() -> None:
        async with connect(IN_PROCESS_URL, {"X-API-Key": READER}, app=app) as client:
            result = await client.call_tool("echo", {"text": 42})
            assert result.is_error is True
            assert "must be of type string" in tool_text(result)

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("headers", "reason", "phrase"),
    [
        ({"X-API-Key": "not-a-key"}, "invalid_api_key", "not recognised"),
        ({"X-API-Key": EXPIRED_KEY}, "api_key_expired", "expired"),
        ({}, "missing_api_key", "requires an API key"),
        ({"Authorization": "Bearer not-a-key"}, "invalid_api_key", "not recognised"),
    ],
    ids=["wrong", "expired", "missing", "wrong-bearer"],
)
def test_a_refused_key_raises_mcperror_with_the_reason(
    app: Flask, headers: dict[str, str], reason: str, phrase: str
) -> None:
    error = asyncio.run(connect_failure(IN_PROCESS_URL, headers, app=app))
    assert error.code == -32001
    assert reason in str(error)
    assert phrase in str(error)
    assert "not-a-key" not in str(error)


@pytest.mark.parametrize(
    ("url", "headers"),
    [
        (IN_PROCESS_URL, {"Authorization": f"Bearer {READER}"}),
        (f"{IN_PROCESS_URL}?api_key={READER}", {}),
    ],
    ids=["bearer", "query-parameter"],
)
def test_bearer_and_query_parameter_keys_work_with_the_client(
    app: Flask, url: str, headers: dict[str, str]
) -> None:
    async def scenario() -> None:
        async with connect(url, headers, app=app) as client:
            listed = await client.list_tools()
            assert {tool.name for tool in listed.tools} == LEVELS["read"].visible

    asyncio.run(scenario())
