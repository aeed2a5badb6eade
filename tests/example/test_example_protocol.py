"""The example's MCP endpoint at the wire level, with Flask's test client."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path
from typing import Any

import httpx2
import pytest
from asgiref.wsgi import WsgiToAsgi
from flask.testing import FlaskClient
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from support.example import IN_PROCESS_URL, LEVELS, Level, make_example_app, tool_text

READER = LEVELS["read"].key
WRITER = LEVELS["read-write"].key


@pytest.fixture
def client(tmp_path: Path) -> FlaskClient:
    return make_example_app(tmp_path).test_client()


def rpc(
    client: FlaskClient,
    method: str,
    params: dict[str, Any] | None = None,
    *,
    key: str | None = READER,
    message_id: Any = 1,
    headers: dict[str, str] | None = None,
) -> Any:
    message: dict[str, Any] = {"jsonrpc": "2.0", "id": message_id, "method": method}
    if params is not None:
        message["params"] = params
    all_headers = {"X-API-Key": key} if key else {}
    all_headers.update(headers or {})
    return client.post("/mcp", json=message, headers=all_headers)


def initialize_params(version: str) -> dict[str, Any]:
    return {
        "protocolVersion": version,
        "capabilities": {},
        "clientInfo": {"name": "test", "version": "1"},
    }


@pytest.mark.parametrize("version", ["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"])
def test_initialize_answers_a_supported_version_with_that_version(
    client: FlaskClient, version: str
) -> None:
    response = rpc(client, "initialize", initialize_params(version), message_id="init-1")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert body["jsonrpc"] == "2.0"
    assert body["id"] == "init-1"
    result = body["result"]
    assert result["protocolVersion"] == version
    assert result["capabilities"] == {"tools": {"listChanged": False}}
    assert result["serverInfo"] == {"name": "flask-mcp-auth-example", "version": "0.1.0"}
    assert "list_notes" in result["instructions"]


@pytest.mark.parametrize("version", ["2099-01-01", "2026-07-28", "", None])
def test_initialize_answers_an_unknown_version_with_the_newest(
    client: FlaskClient, version: str | None
) -> None:
    body = rpc(client, "initialize", initialize_params(version)).get_json()  # type: ignore[arg-type]
    assert body["result"]["protocolVersion"] == "2025-11-25"


def test_no_session_id_is_issued(client: FlaskClient) -> None:
    response = rpc(client, "initialize", initialize_params("2025-11-25"))
    assert "Mcp-Session-Id" not in response.headers


@pytest.mark.parametrize(
    "message",
    [
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 3}},
        {"jsonrpc": "2.0", "method": "notifications/never-heard-of-it"},
        {"jsonrpc": "2.0", "id": 5, "result": {}},  # a client's answer to a server request
    ],
)
def test_notifications_and_responses_get_202_without_a_body(
    client: FlaskClient, message: dict[str, Any]
) -> None:
    response = client.post("/mcp", json=message, headers={"X-API-Key": READER})
    assert response.status_code == 202
    assert response.data == b""


def test_ping_answers_an_empty_result(client: FlaskClient) -> None:
    assert rpc(client, "ping", message_id=9).get_json() == {
        "jsonrpc": "2.0",
        "id": 9,
        "result": {},
    }


@pytest.mark.parametrize("method", ["resources/list", "prompts/get", "server/discover"])
def test_unknown_method_is_32601(client: FlaskClient, method: str) -> None:
    response = rpc(client, method, message_id=4)
    body = response.get_json()
    assert body["id"] == 4
    assert body["error"]["code"] == -32601
    assert method in body["error"]["message"]


@pytest.mark.parametrize("raw", [b"{", b"not json", b"", b'{"jsonrpc": "2.0", "id": 1,'])
def test_malformed_json_is_32700(client: FlaskClient, raw: bytes) -> None:
    response = client.post(
        "/mcp", data=raw, content_type="application/json", headers={"X-API-Key": READER}
    )
    assert response.status_code == 400
    body = response.get_json()
    assert body["id"] is None
    assert body["error"]["code"] == -32700


@pytest.mark.parametrize(
    ("message", "phrase"),
    [
        ([{"jsonrpc": "2.0", "id": 1, "method": "ping"}], "batches are not supported"),
        ("ping", "JSON-RPC 2.0 object"),
        ({"id": 1, "method": "ping"}, "JSON-RPC 2.0 object"),
        ({"jsonrpc": "1.0", "id": 1, "method": "ping"}, "JSON-RPC 2.0 object"),
        ({"jsonrpc": "2.0", "id": 1.5, "method": "ping"}, "id must be"),
        ({"jsonrpc": "2.0", "id": True, "method": "ping"}, "id must be"),
        ({"jsonrpc": "2.0", "id": 1, "method": 7}, "method must be a string"),
        ({"jsonrpc": "2.0"}, "no method"),
    ],
)
def test_invalid_request_is_32600(client: FlaskClient, message: Any, phrase: str) -> None:
    response = client.post("/mcp", json=message, headers={"X-API-Key": READER})
    assert response.status_code == 400
    body = response.get_json()
    assert body["error"]["code"] == -32600
    assert phrase in body["error"]["message"]


def test_params_that_are_not_an_object_are_32602(client: FlaskClient) -> None:
    body = client.post(
        "/mcp",
        json={"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": [1]},
        headers={"X-API-Key": READER},
    ).get_json()
    assert body["error"]["code"] == -32602


# GET (and DELETE) are answered as POST is: the key first, then the 405 the Streamable HTTP
# transport prescribes for a server that offers no SSE stream.

NO_STREAM_METHODS = ["GET", "DELETE", "HEAD"]


@pytest.mark.parametrize("method", NO_STREAM_METHODS)
def test_get_without_a_key_is_401_missing_api_key(client: FlaskClient, method: str) -> None:
    response = client.open("/mcp", method=method)
    post = client.post("/mcp")  # the same refusal a POST without a key gets
    assert response.status_code == post.status_code == 401
    assert response.headers["WWW-Authenticate"] == post.headers["WWW-Authenticate"]
    assert response.mimetype == "application/json"
    if method != "HEAD":
        assert response.get_json() == post.get_json()
        assert response.get_json()["error"] == "missing_api_key"


@pytest.mark.parametrize("method", NO_STREAM_METHODS)
def test_get_with_a_wrong_key_is_401_invalid_api_key(client: FlaskClient, method: str) -> None:
    response = client.open("/mcp", method=method, headers={"X-API-Key": "not-a-key"})
    assert response.status_code == 401
    assert "WWW-Authenticate" in response.headers
    if method != "HEAD":
        assert response.get_json()["error"] == "invalid_api_key"


@pytest.mark.parametrize("method", NO_STREAM_METHODS)
def test_get_with_a_valid_key_is_405_no_sse_stream(client: FlaskClient, method: str) -> None:
    response = client.open("/mcp", method=method, headers={"X-API-Key": READER})
    assert response.status_code == 405
    assert response.headers["Allow"] == "POST, OPTIONS"
    assert response.mimetype == "application/json"
    if method != "HEAD":
        body = response.get_json()
        assert body["error"] == "method_not_allowed"
        assert "no SSE stream" in body["message"]
        assert "POST" in body["message"]


def test_options_names_the_same_methods_as_the_405(client: FlaskClient) -> None:
    # Flask's automatic answer would list GET, HEAD and DELETE as allowed too.
    response = client.options("/mcp")
    assert response.status_code == 204
    assert response.headers["Allow"] == "POST, OPTIONS"


def test_an_unsupported_protocol_version_header_is_refused_with_400(client: FlaskClient) -> None:
    response = rpc(client, "tools/list", headers={"MCP-Protocol-Version": "2099-01-01"})
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == -32022  # UnsupportedProtocolVersion (2026-07-28)
    assert "2099-01-01" in error["message"]
    assert error["data"] == {
        "supported": ["2026-07-28", "2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"],
        "requested": "2099-01-01",
    }


def test_a_supported_protocol_version_header_is_accepted(client: FlaskClient) -> None:
    response = rpc(client, "tools/list", headers={"MCP-Protocol-Version": "2025-03-26"})
    assert response.status_code == 200


@pytest.mark.parametrize("level", LEVELS.values(), ids=list(LEVELS))
def test_tools_list_shows_only_the_tools_the_key_may_call(
    client: FlaskClient, level: Level
) -> None:
    tools = rpc(client, "tools/list", key=level.key).get_json()["result"]["tools"]
    assert {tool["name"] for tool in tools} == level.visible
    for tool in tools:
        assert tool["description"]
        assert tool["inputSchema"]["type"] == "object"


@pytest.mark.parametrize("level", LEVELS.values(), ids=list(LEVELS))
def test_a_forbidden_tool_is_403_naming_what_is_missing(client: FlaskClient, level: Level) -> None:
    for tool, phrase in level.forbidden.items():
        response = rpc(
            client, "tools/call", {"name": tool, "arguments": {"text": "x"}}, key=level.key
        )
        assert response.status_code == 403, tool
        error = response.get_json()["error"]
        assert error["code"] == -32003
        assert error["data"]["reason"] == "insufficient_permissions"
        assert phrase in error["message"], (tool, error["message"])


def test_a_forbidden_call_reveals_nothing_about_arguments(client: FlaskClient) -> None:
    # The permission check comes before the argument check.
    response = rpc(client, "tools/call", {"name": "add_note", "arguments": {"bogus": 1}})
    assert response.status_code == 403


def test_tools_call_runs_the_tool(client: FlaskClient) -> None:
    body = rpc(client, "tools/call", {"name": "echo", "arguments": {"text": "héllo"}}).get_json()
    assert body["result"] == {"content": [{"type": "text", "text": "héllo"}], "isError": False}


def test_a_structured_result_is_sent_as_text_and_structured_content(client: FlaskClient) -> None:
    result = rpc(client, "tools/call", {"name": "whoami"}).get_json()["result"]
    assert result["structuredContent"]["name"] == "Reader"
    assert '"Reader"' in result["content"][0]["text"]


def test_an_unknown_tool_is_32602(client: FlaskClient) -> None:
    body = rpc(client, "tools/call", {"name": "rm_rf", "arguments": {}}).get_json()
    assert body["error"]["code"] == -32602
    assert "rm_rf" in body["error"]["message"]


def test_tools_call_without_a_name_is_32602(client: FlaskClient) -> None:
    body = rpc(client, "tools/call", {"arguments": {}}).get_json()
    assert body["error"]["code"] == -32602


@pytest.mark.parametrize(
    ("arguments", "phrase"),
    [
        ({}, "missing required argument 'text'"),
        ({"text": 5}, "'text' must be of type string"),
        ({"text": "a", "extra": 1}, "unexpected argument 'extra'"),
    ],
)
def test_bad_arguments_are_a_tool_error_the_model_can_read(
    client: FlaskClient, arguments: dict[str, Any], phrase: str
) -> None:
    result = rpc(client, "tools/call", {"name": "echo", "arguments": arguments}).get_json()[
        "result"
    ]
    assert result["isError"] is True
    assert phrase in result["content"][0]["text"]


def test_list_notes_limit_is_checked(client: FlaskClient) -> None:
    for limit, ok in [(0, False), (1, True), (100, True), (101, False), (True, False)]:
        result = rpc(
            client, "tools/call", {"name": "list_notes", "arguments": {"limit": limit}}
        ).get_json()["result"]
        assert result["isError"] is not ok, limit


def test_add_note_refuses_blank_and_overlong_text(client: FlaskClient) -> None:
    for text in ["   ", "x" * 2001]:
        result = rpc(
            client, "tools/call", {"name": "add_note", "arguments": {"text": text}}, key=WRITER
        ).get_json()["result"]
        assert result["isError"] is True
    listed = rpc(client, "tools/call", {"name": "list_notes"}).get_json()["result"]
    assert listed["structuredContent"] == {"notes": []}


def test_notes_are_stored_in_the_instance_folder(tmp_path: Path) -> None:
    client = make_example_app(tmp_path).test_client()
    added = rpc(
        client, "tools/call", {"name": "add_note", "arguments": {"text": "first"}}, key=WRITER
    ).get_json()["result"]["structuredContent"]
    assert added["text"] == "first"
    assert added["author"] == "Writer"
    assert (tmp_path / "notes.sqlite3").is_file()
    # A second app on the same folder (another worker, or after a restart) sees the note.
    other = make_example_app(tmp_path).test_client()
    notes = rpc(other, "tools/call", {"name": "list_notes"}).get_json()["result"]
    assert [n["text"] for n in notes["structuredContent"]["notes"]] == ["first"]


def test_list_notes_returns_the_newest_oldest_first(client: FlaskClient) -> None:
    for number in range(5):
        rpc(
            client,
            "tools/call",
            {"name": "add_note", "arguments": {"text": f"note {number}"}},
            key=WRITER,
        )
    result = rpc(
        client, "tools/call", {"name": "list_notes", "arguments": {"limit": 3}}
    ).get_json()["result"]
    assert [n["text"] for n in result["structuredContent"]["notes"]] == [
        "note 2",
        "note 3",
        "note 4",
    ]


def test_list_keys_shows_names_and_fingerprints_never_key_ids(client: FlaskClient) -> None:
    response = rpc(
        client, "tools/call", {"name": "list_keys"}, key=LEVELS["admin role, read only"].key
    )
    text = response.get_data(as_text=True)
    listed = response.get_json()["result"]["structuredContent"]["keys"]
    assert {entry["name"] for entry in listed} >= {"Reader", "Writer", "ChatGPT Connector"}
    assert all(len(entry["fingerprint"]) == 12 for entry in listed)
    expired = next(entry for entry in listed if entry["name"] == "Expired")
    assert expired["expired"] is True
    assert expired["expires_at"] == "2020-01-01T00:00:00Z"
    for level in LEVELS.values():
        assert level.key not in text


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "missing_api_key"),
        ({"X-API-Key": "wrong-key"}, "invalid_api_key"),
        ({"X-API-Key": "test-expired-key"}, "api_key_expired"),
    ],
)
def test_the_endpoint_needs_a_valid_key(
    client: FlaskClient, headers: dict[str, str], reason: str
) -> None:
    for method in ("initialize", "tools/list"):
        response = rpc(client, method, key=None, headers=headers)
        assert response.status_code == 401
        assert "WWW-Authenticate" in response.headers
        body = response.get_json()
        assert body["error"]["data"]["reason"] == reason
        assert "wrong-key" not in response.get_data(as_text=True)


def test_anonymous_callers_still_reach_the_status_route(client: FlaskClient) -> None:
    response = client.get("/mcp/status")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ok"
    assert body["authenticated"] is False
    assert body["role"] == "guest"


@pytest.mark.parametrize(
    "headers",
    [{"Authorization": f"Bearer {READER}"}, {"X-API-Key": READER}],
)
def test_header_and_bearer_keys_both_work(client: FlaskClient, headers: dict[str, str]) -> None:
    response = rpc(client, "tools/list", key=None, headers=headers)
    assert response.status_code == 200


def test_a_query_parameter_key_works(client: FlaskClient) -> None:
    response = client.post(
        f"/mcp?api_key={READER}", json={"jsonrpc": "2.0", "id": 1, "method": "ping"}
    )
    assert response.get_json()["result"] == {}


def test_an_oversized_body_is_refused_without_being_read(client: FlaskClient) -> None:
    text = "x" * (1024 * 1024)
    message = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "echo"}}
    message["params"]["arguments"] = {"text": text}
    response = client.post("/mcp", json=message, headers={"X-API-Key": READER})
    assert response.status_code == 413


# -- the 2026-07-28 revision: no handshake, metadata on every request -----------------

MODERN = "2026-07-28"
CAPABILITIES_KEY = "io.modelcontextprotocol/clientCapabilities"
VERSION_KEY = "io.modelcontextprotocol/protocolVersion"
SERVER_INFO = {"name": "flask-mcp-auth-example", "version": "0.1.0"}


def modern_rpc(
    client: FlaskClient,
    method: str,
    params: dict[str, Any] | None = None,
    *,
    key: str = READER,
    meta: dict[str, Any] | None = None,
    headers: dict[str, str | None] | None = None,
) -> Any:
    """A request as a 2026-07-28 client sends it; ``headers`` values of None are left out."""
    body_params = dict(params or {})
    body_params["_meta"] = (
        {VERSION_KEY: MODERN, CAPABILITIES_KEY: {}, "io.modelcontextprotocol/clientInfo": {}}
        if meta is None
        else meta
    )
    all_headers: dict[str, str | None] = {
        "X-API-Key": key,
        "MCP-Protocol-Version": MODERN,
        "Mcp-Method": method,
    }
    if method == "tools/call":
        all_headers["Mcp-Name"] = body_params.get("name")
    all_headers.update(headers or {})
    sent = {name: value for name, value in all_headers.items() if value is not None}
    message = {"jsonrpc": "2.0", "id": 7, "method": method, "params": body_params}
    return client.post("/mcp", json=message, headers=sent)


def test_server_discover_names_the_versions_capabilities_and_server(
    client: FlaskClient,
) -> None:
    response = modern_rpc(client, "server/discover")
    assert response.status_code == 200
    result = response.get_json()["result"]
    assert result["supportedVersions"] == [
        "2026-07-28",
        "2025-11-25",
        "2025-06-18",
        "2025-03-26",
        "2024-11-05",
    ]
    assert result["capabilities"] == {"tools": {"listChanged": False}}
    assert result["resultType"] == "complete"
    assert result["_meta"] == {"io.modelcontextprotocol/serverInfo": SERVER_INFO}
    assert result["ttlMs"] == 0
    assert result["cacheScope"] == "public"  # the same answer for every key
    assert "list_notes" in result["instructions"]
    assert "Mcp-Session-Id" not in response.headers


@pytest.mark.parametrize("level", LEVELS.values(), ids=list(LEVELS))
def test_modern_tools_list_is_per_key_and_private_to_caches(
    client: FlaskClient, level: Level
) -> None:
    result = modern_rpc(client, "tools/list", key=level.key).get_json()["result"]
    assert {tool["name"] for tool in result["tools"]} == level.visible
    assert result["resultType"] == "complete"
    assert result["cacheScope"] == "private"
    assert result["ttlMs"] == 0
    assert result["_meta"] == {"io.modelcontextprotocol/serverInfo": SERVER_INFO}


def test_modern_tools_call_runs_the_tool_and_refuses_as_before(client: FlaskClient) -> None:
    echoed = modern_rpc(client, "tools/call", {"name": "echo", "arguments": {"text": "hi"}})
    assert echoed.status_code == 200
    result = echoed.get_json()["result"]
    assert result["content"] == [{"type": "text", "text": "hi"}]
    assert result["resultType"] == "complete"
    assert "ttlMs" not in result  # tools/call results are not cacheable
    refused = modern_rpc(client, "tools/call", {"name": "add_note", "arguments": {"text": "x"}})
    assert refused.status_code == 403
    assert refused.get_json()["error"]["code"] == -32003


def test_a_base64_encoded_mcp_name_is_decoded(client: FlaskClient) -> None:
    encoded = "=?base64?" + base64.b64encode(b"whoami").decode() + "?="
    response = modern_rpc(client, "tools/call", {"name": "whoami"}, headers={"Mcp-Name": encoded})
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("method", "params", "headers", "phrase"),
    [
        ("tools/list", None, {"Mcp-Method": None}, "Mcp-Method header is missing"),
        ("tools/list", None, {"Mcp-Method": "tools/call"}, "does not match method"),
        ("tools/call", {"name": "whoami"}, {"Mcp-Name": None}, "Mcp-Name header is missing"),
        ("tools/call", {"name": "whoami"}, {"Mcp-Name": "echo"}, "does not match params.name"),
        ("tools/call", {"name": "whoami"}, {"Mcp-Name": "=?base64?!!?="}, "does not match"),
        ("tools/list", None, {"MCP-Protocol-Version": None}, "MCP-Protocol-Version header"),
        ("tools/list", None, {"MCP-Protocol-Version": "2025-11-25"}, "does not match"),
    ],
    ids=[
        "no Mcp-Method",
        "other Mcp-Method",
        "no Mcp-Name",
        "other Mcp-Name",
        "broken base64",
        "no version header",
        "legacy version header",
    ],
)
def test_headers_that_do_not_mirror_the_body_are_header_mismatch(
    client: FlaskClient,
    method: str,
    params: dict[str, Any] | None,
    headers: dict[str, str | None],
    phrase: str,
) -> None:
    response = modern_rpc(client, method, params, headers=headers)
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == -32020
    assert phrase in error["message"]


@pytest.mark.parametrize(
    "meta",
    [{}, {VERSION_KEY: MODERN}, {CAPABILITIES_KEY: {}}, {VERSION_KEY: MODERN, CAPABILITIES_KEY: 1}],
    ids=["empty", "no capabilities", "no version", "capabilities not an object"],
)
def test_a_modern_request_without_its_metadata_is_32602(
    client: FlaskClient, meta: dict[str, Any]
) -> None:
    response = modern_rpc(client, "tools/list", meta=meta)
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == -32602


def test_an_unsupported_version_in_meta_is_32022(client: FlaskClient) -> None:
    response = modern_rpc(
        client,
        "tools/list",
        meta={VERSION_KEY: "2099-01-01", CAPABILITIES_KEY: {}},
        headers={"MCP-Protocol-Version": None},
    )
    assert response.status_code == 400
    assert response.get_json()["error"]["data"]["requested"] == "2099-01-01"


@pytest.mark.parametrize("method", ["ping", "initialize", "resources/list", "logging/setLevel"])
def test_methods_the_modern_revision_lacks_are_404_32601(client: FlaskClient, method: str) -> None:
    response = modern_rpc(client, method)
    if method == "initialize":
        # initialize always negotiates a handshake revision (it names its version in the body).
        assert response.status_code == 200
        assert response.get_json()["result"]["protocolVersion"] == "2025-11-25"
        return
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == -32601


def test_a_modern_request_still_needs_a_valid_key(client: FlaskClient) -> None:
    response = modern_rpc(client, "server/discover", key="not-a-key")
    assert response.status_code == 401
    assert response.get_json()["error"]["data"]["reason"] == "invalid_api_key"


@pytest.mark.parametrize(("mode", "version"), [("auto", "2026-07-28"), ("legacy", "2025-11-25")])
def test_the_official_client_negotiates_each_era(tmp_path: Path, mode: str, version: str) -> None:
    app = make_example_app(tmp_path)

    async def scenario() -> list[str]:
        async with (
            httpx2.AsyncClient(
                transport=httpx2.ASGITransport(app=WsgiToAsgi(app)),
                headers={"X-API-Key": WRITER},
                timeout=httpx2.Timeout(30),
            ) as http,
            Client(streamable_http_client(IN_PROCESS_URL, http_client=http), mode=mode) as mcp,
        ):
            assert mcp.protocol_version == version
            assert mcp.server_info is not None
            assert mcp.server_info.name == "flask-mcp-auth-example"
            listed = await mcp.list_tools()
            assert tool_text(await mcp.call_tool("echo", {"text": mode})) == mode
            with pytest.raises(MCPError) as refused:
                await mcp.call_tool("list_keys", {})
            assert refused.value.code == -32003
            assert (await mcp.call_tool("whoami", {})).is_error is False
            return sorted(tool.name for tool in listed.tools)

    assert asyncio.run(scenario()) == sorted(LEVELS["read-write"].visible)
