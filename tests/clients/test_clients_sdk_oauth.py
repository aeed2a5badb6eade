"""The official MCP TypeScript SDK client's OAuth support (@modelcontextprotocol/sdk) against
the example service under gunicorn with the sign-in on (MCP_OAUTH_ISSUER) and its demo keys.

tests/clients/sdk_oauth_client.mjs is an ``OAuthClientProvider`` whose
``redirectToAuthorization`` plays the person at the sign-in page (GET the form, POST the
hidden fields with the API key and ``decision=approve``), then follows the SDK's documented
pattern: connect -> ``UnauthorizedError`` -> ``finishAuth(code)`` -> connect a new transport.
Beside it: header clients on the same server, and mcp-remote's own OAuth flow with a $BROWSER
that signs in.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from clients_support import MARKER, NodeClients, kill_marked
from mcp import Client
from mcp.client.stdio import StdioServerParameters, stdio_client
from support.example import DEMO_DOTENV, example_gunicorn, tool_text
from support.servers import GunicornServer, free_port

#: The example's demo keys (example_app/.env.example).
READER_KEY = "demo-reader-key"
READER_TOOLS = ["whoami", "echo", "list_notes"]
WRONG_KEY = "not-a-demo-key"


@pytest.fixture(scope="module")
def oauth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GunicornServer]:
    """The example service (1 worker, memory://) with the sign-in on and the demo keys."""
    folder = tmp_path_factory.mktemp("clients-oauth-server")
    server = example_gunicorn(
        folder,
        {
            "MCP_EXAMPLE_DOTENV": str(DEMO_DOTENV),
            "MCP_EXAMPLE_INSTANCE_PATH": str(folder / "instance"),
            "MCP_EXAMPLE_WORKERS": "1",
        },
    )
    server.env["MCP_OAUTH_ISSUER"] = server.url  # the port is chosen when the server is built
    try:
        server.start()
        yield server
    finally:
        server.stop()


def sign_in(clients: NodeClients, server: GunicornServer, home: Path, key: str) -> dict[str, Any]:
    script = str(clients.sdk_script.with_name("sdk_oauth_client.mjs"))
    run = clients.run([script, server.mcp_url, key], clients.environment(home))
    assert run.returncode == 0, run.stderr
    return dict(json.loads(run.stdout))


def audit_lines(server: GunicornServer, since: int, *paths: str) -> list[dict[str, Any]]:
    """The audit lines gunicorn wrote after byte ``since`` of its log, once there is one for
    each of ``paths``: each worker writes its own batch, up to MCP_AUDIT_FLUSH_MS later."""
    deadline = time.monotonic() + 5
    lines: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        text = server.output()[since:]
        lines = [json.loads(line) for line in text.splitlines() if line.startswith('{"ts"')]
        if lines and set(paths) <= {line["path"] for line in lines}:
            break
        time.sleep(0.05)
    return lines


def test_the_right_key_signs_in_and_the_token_lists_and_calls_tools(
    node_clients: NodeClients, oauth_server: GunicornServer, tmp_path: Path
) -> None:
    since = len(oauth_server.output())
    report = sign_in(node_clients, oauth_server, tmp_path, READER_KEY)

    assert report["firstConnect"]["unauthorized"], report["firstConnect"]
    assert report["registered"], "the SDK registers itself (RFC 7591)"
    signin = report["signin"]
    assert signin["pageStatus"] == 200
    assert {"csrf_token", "client_id", "code_challenge", "state", "redirect_uri"} <= set(
        signin["hiddenFields"]
    )
    assert signin["status"] == 302, signin
    assert signin["location"] == "http://127.0.0.1:8765/callback"
    assert signin["code"] and signin["error"] is None
    assert signin["stateMatches"], signin
    assert signin["iss"] == oauth_server.url  # RFC 9207

    assert report["error"] is None, report["error"]
    tokens = report["tokens"]
    assert tokens["token_type"] == "Bearer"
    assert tokens["has_access_token"] and tokens["has_refresh_token"]
    assert not tokens["access_token_is_the_key"]
    assert report["connected"]
    assert report["tools"] == READER_TOOLS  # the reader key's tools, nothing more
    echo = report["echo"]
    assert not echo["isError"]
    assert echo["content"] == [{"type": "text", "text": "via oauth"}]

    lines = audit_lines(oauth_server, since, "/authorize", "/mcp")
    signed_in = [line for line in lines if line["path"] == "/authorize"]
    assert [(line["event"], line["credential_source"], line["status"]) for line in signed_in] == [
        ("auth_success", "signin", 302)
    ]
    served = [line for line in lines if line["path"] == "/mcp" and line["status"] < 400]
    assert served, lines
    for line in served:
        assert line["credential_source"] == "oauth", line
        assert line["name"] == "Demo Reader"
        assert line["oauth_client_id"].startswith("mcpc_")
    assert READER_KEY not in oauth_server.output()[since:]


def test_a_wrong_key_is_refused_on_the_sign_in_page_and_no_token_is_issued(
    node_clients: NodeClients, oauth_server: GunicornServer, tmp_path: Path
) -> None:
    since = len(oauth_server.output())
    report = sign_in(node_clients, oauth_server, tmp_path, WRONG_KEY)

    assert report["firstConnect"]["unauthorized"], report["firstConnect"]
    signin = report["signin"]
    assert signin["status"] == 401, signin
    assert signin["refused"]
    assert signin["message"] == "That API key was not accepted. Check it and try again."
    assert not signin["keyInPage"], "the re-rendered form does not echo the key"
    assert signin["code"] is None
    assert report["tokens"] is None
    assert not report["connected"]

    lines = audit_lines(oauth_server, since, "/authorize")
    refused = [line for line in lines if line["path"] == "/authorize"]
    assert [(line["event"], line["reason"], line["credential_source"]) for line in refused] == [
        ("auth_failure", "invalid_api_key", "signin")
    ]


def test_header_clients_are_unaffected_by_the_sign_in(
    node_clients: NodeClients, oauth_server: GunicornServer, tmp_path: Path
) -> None:
    """tests/clients/sdk_client.mjs (X-API-Key) against the same server, sign-in on."""
    payload = json.dumps(
        {
            "url": oauth_server.mcp_url,
            "sessions": [
                {
                    "key": READER_KEY,
                    "steps": [{"list": True}, {"call": "echo", "arguments": {"text": "hdr"}}],
                },
                {"key": WRONG_KEY, "steps": []},
            ],
        }
    )
    run = node_clients.run(
        [str(node_clients.sdk_script), payload], node_clients.environment(tmp_path)
    )
    assert run.returncode == 0, run.stderr
    good, wrong = json.loads(run.stdout)["sessions"]
    assert good["connected"], good["error"]
    listed, echoed = good["steps"]
    assert [tool["name"] for tool in listed["result"]["tools"]] == READER_TOOLS
    assert echoed["result"]["content"] == [{"type": "text", "text": "hdr"}]
    # A wrong header key is still the API-key 401, not an OAuth detour.
    assert not wrong["connected"]
    assert wrong["error"]["code"] == 401
    assert "(invalid_api_key)" in wrong["error"]["message"]


# -- mcp-remote's OAuth flow, with a "browser" that signs in ------------------------------

#: The person at the sign-in page, as the browser mcp-remote opens: ``$BROWSER <url>``
#: (the ``open`` package's bundled xdg-open runs it when there is no desktop).  It GETs the
#: form, POSTs it back with the key, delivers the redirect to mcp-remote's callback and
#: writes what it saw to $SIGNIN_REPORT.  It always exits 0, so no other opener is tried.
BROWSER_SCRIPT = """\
#!{python}
import http.client, html, json, os, re, sys, urllib.parse, urllib.request

url = urllib.parse.urlsplit(sys.argv[1])
seen = {{"opened": sys.argv[1].split("?", 1)[0]}}
try:
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    connection.request("GET", url.path + "?" + url.query)
    page = connection.getresponse()
    cookies = [v for k, v in page.getheaders() if k.lower() == "set-cookie"]
    cookie = "; ".join(v.split(";", 1)[0] for v in cookies)
    fields = {{
        html.unescape(name): html.unescape(value)
        for name, value in re.findall(
            r'<input type="hidden" name="([^"]*)" value="([^"]*)">', page.read().decode()
        )
    }}
    fields.update(api_key=os.environ["SIGNIN_API_KEY"], decision="approve")
    connection.request(
        "POST",
        url.path,
        urllib.parse.urlencode(fields),
        {{
            "Content-Type": "application/x-www-form-urlencoded",
            "Cookie": cookie,
            "Origin": f"{{url.scheme}}://{{url.netloc}}",
        }},
    )
    answer = connection.getresponse()
    answer.read()
    seen["status"] = answer.status
    location = answer.getheader("Location") or ""
    back = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)
    seen["callback"] = location.split("?", 1)[0]
    seen["has_code"] = bool(back.get("code"))
    seen["iss"] = back.get("iss", [None])[0]
    if answer.status == 302:
        with urllib.request.urlopen(location, timeout=10) as delivered:
            seen["delivered"] = delivered.status
except Exception as error:  # reported, never raised: the browser "opened"
    seen["error"] = repr(error)
with open(os.environ["SIGNIN_REPORT"], "w") as out:
    json.dump(seen, out)
"""


def run_session(params: StdioServerParameters, errlog: Path, scenario: Any) -> Any:
    """``scenario(client)`` through mcp-remote on stdio, bounded; leaves no process behind."""

    async def session() -> Any:
        with errlog.open("w") as log:
            async with Client(stdio_client(params, errlog=log), mode="legacy") as client:
                return await scenario(client)

    try:
        return asyncio.run(asyncio.wait_for(session(), 40))
    finally:
        assert params.env is not None
        kill_marked(params.env[MARKER])


def test_mcp_remote_signs_in_through_the_browser_it_opens(
    node_clients: NodeClients, oauth_server: GunicornServer, tmp_path: Path
) -> None:
    browser = tmp_path / "browser"
    browser.write_text(BROWSER_SCRIPT.format(python=sys.executable))
    browser.chmod(0o755)
    signin_report = tmp_path / "signin.json"
    callback_port = free_port()
    env = node_clients.environment(
        tmp_path,
        {
            "BROWSER": str(browser),
            "SIGNIN_API_KEY": READER_KEY,
            "SIGNIN_REPORT": str(signin_report),
        },
    )
    for variable in ("DISPLAY", "WAYLAND_DISPLAY", "XDG_CURRENT_DESKTOP", "DESKTOP_SESSION"):
        env.pop(variable, None)  # xdg-open's generic path: $BROWSER
    params = StdioServerParameters(
        command=str(node_clients.node),
        args=[
            str(node_clients.mcp_remote),
            oauth_server.mcp_url,
            str(callback_port),
            "--host",
            "127.0.0.1",
        ],
        env=env,
    )

    async def scenario(client: Client) -> tuple[list[str], str]:
        listed = await client.list_tools()
        return [tool.name for tool in listed.tools], tool_text(
            await client.call_tool("echo", {"text": "via mcp-remote"})
        )

    since = len(oauth_server.output())
    log = tmp_path / "mcp-remote.log"
    tools, echoed = run_session(params, log, scenario)
    assert tools == READER_TOOLS
    assert echoed == "via mcp-remote"

    seen = json.loads(signin_report.read_text())
    assert seen == {
        "opened": f"{oauth_server.url}/authorize",
        "status": 302,
        "callback": f"http://127.0.0.1:{callback_port}/oauth/callback",
        "has_code": True,
        "iss": oauth_server.url,
        "delivered": 200,
    }, log.read_text()
    served = [
        line
        for line in audit_lines(oauth_server, since, "/mcp")
        if line["path"] == "/mcp" and line["status"] < 400
    ]
    assert served and {line["credential_source"] for line in served} == {"oauth"}
