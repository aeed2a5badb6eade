"""The OAuth sign-in end to end: the official ``mcp`` client's ``OAuthClientProvider``
against the example service under real gunicorn (4 workers) and a real Redis.

A ``Person`` plays the browser: it GETs the authorization URL (keeping cookies), reads the
sign-in form's hidden fields, POSTs them with an API key and a decision, and hands the
``Location`` of the 302 (code, state, iss) to the provider's callback.  Nothing listens
on the redirect URI: the redirect is read, never followed.

Two servers per module share one Redis: one with 3-second access tokens (expiry and
refresh), one with the default lifetime (everything else, so no refresh interferes).
Every key lives in an ``MCP_API_KEYS_FILE`` checked on every request, so a key removed
from it is refused at once.  Which worker answered is read from the generated
``X-Request-ID`` (a random prefix per process, then a counter).
"""

from __future__ import annotations

import base64
import hashlib
import importlib
import json
import os
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import anyio
import httpx2
import pytest
from dotenv import dotenv_values
from support.example import DEMO_DOTENV, example_gunicorn, tool_text
from support.keyfiles import write_atomically
from support.servers import GunicornServer, RedisServer, require_executable, wait_for


def _require(module: str) -> None:
    """Skip without ``module``, except under CI=true, where the test must run."""
    if os.environ.get("CI", "").lower() == "true":
        importlib.import_module(module)
    else:
        pytest.importorskip(module)


_require("gunicorn")
_require("authlib")

from mcp import Client  # noqa: E402
from mcp.client.auth import OAuthClientProvider  # noqa: E402
from mcp.client.streamable_http import streamable_http_client  # noqa: E402
from mcp.shared.auth import (  # noqa: E402
    AuthorizationCodeResult,
    OAuthClientInformationFull,
    OAuthClientMetadata,
    OAuthToken,
)

WORKERS = 4
SHORT_TTL = 3  # seconds an access token lives on the short-lived server
#: Nothing listens here: the Person reads the redirect and never follows it.
REDIRECT_URI = "http://127.0.0.1:9/oauth/callback"
WRONG_KEY_MESSAGE = "That API key was not accepted"

DEMO_KEYS: dict[str, Any] = json.loads(dotenv_values(DEMO_DOTENV)["MCP_API_KEYS"] or "{}")
WRITER_KEY = "demo-writer-key"
READER_KEY = "demo-reader-key"
CONNECTOR_KEY = "chatgpt-connector-key"
#: Removed from the key file while a session that signed in with it is live.
REVOCABLE_KEY = "e2e-revocable-key-7f3a91c2"
REVOCABLE = {"name": "Revocable", "userId": "revocable", "role": "user", "permissions": ["read"]}
ALL_KEYS = {**DEMO_KEYS, REVOCABLE_KEY: REVOCABLE}


# -- the servers -------------------------------------------------------------------------


@dataclass
class OAuthServer:
    gunicorn: GunicornServer
    key_file: Path
    audit_log: Path

    @property
    def issuer(self) -> str:
        return self.gunicorn.url

    @property
    def mcp_url(self) -> str:
        return self.gunicorn.mcp_url

    def audit_events(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.audit_log.read_text().splitlines() if line]


@pytest.fixture(scope="module")
def shared_redis() -> Iterator[RedisServer]:
    server = RedisServer(require_executable("redis-server"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _start(directory: Path, redis: RedisServer, **extra: str) -> OAuthServer:
    directory.mkdir()
    key_file = directory / "keys.json"
    write_atomically(key_file, ALL_KEYS)
    audit_log = directory / "audit.jsonl"
    env = {
        "MCP_EXAMPLE_DOTENV": str(DEMO_DOTENV),  # JWT_SECRET and the default role
        "MCP_EXAMPLE_INSTANCE_PATH": str(directory / "instance"),
        "MCP_EXAMPLE_WORKERS": str(WORKERS),
        "RATELIMIT_STORAGE_URI": redis.url,
        "MCP_API_KEYS_FILE": str(key_file),
        "MCP_API_KEYS_FILE_CHECK_INTERVAL": "0",
        "MCP_AUDIT_LOG": str(audit_log),
        **extra,
    }
    gunicorn = example_gunicorn(directory, env)
    gunicorn.env["MCP_OAUTH_ISSUER"] = gunicorn.url  # the port is chosen before the start
    gunicorn.start()
    return OAuthServer(gunicorn, key_file, audit_log)


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, shared_redis: RedisServer
) -> Iterator[OAuthServer]:
    """Default token lifetimes."""
    started = _start(tmp_path_factory.mktemp("oauth") / "default", shared_redis)
    try:
        yield started
    finally:
        started.gunicorn.stop()


@pytest.fixture(scope="module")
def short_server(
    tmp_path_factory: pytest.TempPathFactory, shared_redis: RedisServer
) -> Iterator[OAuthServer]:
    """Access tokens that expire after SHORT_TTL seconds."""
    started = _start(
        tmp_path_factory.mktemp("oauth") / "short",
        shared_redis,
        MCP_OAUTH_ACCESS_TOKEN_TTL=str(SHORT_TTL),
    )
    try:
        yield started
    finally:
        started.gunicorn.stop()


# -- the person at the sign-in page ------------------------------------------------------


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.hidden: dict[str, str] = {}
        self.error: str | None = None
        self._in_error = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "form":
            self.action = values.get("action")
        elif tag == "input" and values.get("type") == "hidden" and values.get("name"):
            self.hidden[str(values["name"])] = values.get("value") or ""
        elif tag == "p" and values.get("class") == "error":
            self._in_error = True

    def handle_data(self, data: str) -> None:
        if self._in_error:
            self.error = (self.error or "") + data

    def handle_endtag(self, tag: str) -> None:
        if tag == "p":
            self._in_error = False


def parse_form(html: str) -> _FormParser:
    parser = _FormParser()
    parser.feed(html)
    assert parser.action is not None, html
    assert "csrf_token" in parser.hidden, html
    return parser


@dataclass
class Answer:
    status: int
    html: str
    location: str | None


class SignInRefused(Exception):
    """The redirect back to the client carried an error, or no redirect came."""


class Person:
    """Signs in on the page: the keys to type, one attempt each, and the decision."""

    def __init__(self, keys: list[str], decision: str = "approve") -> None:
        self.keys = keys
        self.decision = decision
        self.forms: list[_FormParser] = []
        self.answers: list[Answer] = []
        self.location: str | None = None
        self.expected_state: str | None = None

    async def redirect_handler(self, authorization_url: str) -> None:
        self.location = None
        self.expected_state = parse_qs(urlsplit(authorization_url).query)["state"][0]
        async with httpx2.AsyncClient(follow_redirects=False, timeout=30) as browser:
            page = await browser.get(authorization_url)
            assert page.status_code == 200, page.text
            assert "mcp_oauth_csrf" in browser.cookies
            form = parse_form(page.text)
            for key in self.keys:
                self.forms.append(form)
                reply = await browser.post(
                    urljoin(authorization_url, form.action),
                    data={**form.hidden, "api_key": key, "decision": self.decision},
                )
                answer = Answer(reply.status_code, reply.text, reply.headers.get("Location"))
                self.answers.append(answer)
                if reply.status_code == 302:
                    self.location = answer.location
                    return
                form = parse_form(reply.text)  # the form again, with the message

    async def callback_handler(self) -> AuthorizationCodeResult:
        if self.location is None:
            raise SignInRefused(f"no redirect: {[a.status for a in self.answers]}")
        query = {
            name: values[0] for name, values in parse_qs(urlsplit(self.location).query).items()
        }
        if "error" in query:
            raise SignInRefused(query["error"])
        return AuthorizationCodeResult(code=query["code"], state=query["state"], iss=query["iss"])


# -- the client --------------------------------------------------------------------------


class MemoryStorage:
    """The provider's TokenStorage protocol, in memory."""

    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client: OAuthClientInformationFull | None = None
        self.token_history: list[OAuthToken] = []

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens
        self.token_history.append(tokens)

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client = client_info


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    status: int
    request_id: str
    authenticate: str
    body: bytes

    @property
    def worker(self) -> str:
        return self.request_id[:16]  # the generated id's per-process prefix


@dataclass
class Traffic:
    """Every response the client got, in order (auth-flow requests included)."""

    seen: list[Seen] = field(default_factory=list)

    async def record(self, response: httpx2.Response) -> None:
        body = await response.aread() if response.status_code >= 400 else b""
        self.seen.append(
            Seen(
                response.request.method,
                response.request.url.path,
                response.status_code,
                response.headers.get("X-Request-ID", ""),
                response.headers.get("WWW-Authenticate", ""),
                body,
            )
        )

    def of(self, method: str, path: str) -> list[Seen]:
        return [s for s in self.seen if s.method == method and s.path == path]


@asynccontextmanager
async def oauth_client(
    server: OAuthServer, person: Person, storage: MemoryStorage, traffic: Traffic
) -> AsyncIterator[Client]:
    provider = OAuthClientProvider(
        server.mcp_url,
        OAuthClientMetadata(redirect_uris=[REDIRECT_URI], client_name="E2E client"),
        storage,
        person.redirect_handler,
        person.callback_handler,
    )
    async with (
        httpx2.AsyncClient(
            auth=provider,
            timeout=httpx2.Timeout(30),
            # A new connection per request, so that the workers take turns.
            limits=httpx2.Limits(max_keepalive_connections=0),
            event_hooks={"response": [traffic.record]},
        ) as http,
        Client(streamable_http_client(server.mcp_url, http_client=http)) as client,
    ):
        yield client


def bearer_post(server: OAuthServer, token: str) -> httpx2.Response:
    """One tools/list with a raw access token, outside the provider."""
    return httpx2.post(
        server.mcp_url,
        json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
        headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
        timeout=30,
    )


def reason_of(body: bytes | str) -> str:
    """The refusal's reason from the MCP endpoint's JSON-RPC error."""
    return str(json.loads(body)["error"]["data"]["reason"])


def errors_in(group: BaseException) -> list[BaseException]:
    """Every leaf exception of a (nested) exception group."""
    if isinstance(group, BaseExceptionGroup):
        return [leaf for inner in group.exceptions for leaf in errors_in(inner)]
    found = [group]
    cause = group.__cause__ or group.__context__
    return found + (errors_in(cause) if cause is not None else [])


# -- 1. the whole flow, expiry and refresh ------------------------------------------------


def test_sign_in_tools_expiry_and_refresh_across_workers(short_server: OAuthServer) -> None:
    server = short_server
    person = Person([WRITER_KEY])
    storage = MemoryStorage()
    traffic = Traffic()

    async def session() -> dict[str, Any]:
        async with oauth_client(server, person, storage, traffic) as client:
            tools = {tool.name for tool in (await client.list_tools()).tools}
            echoed = tool_text(await client.call_tool("echo", {"text": "before expiry"}))
            first = storage.tokens
            assert first is not None and first.expires_in == SHORT_TTL
            await anyio.sleep(SHORT_TTL + 0.5)
            # The provider sees the token expired and refreshes before sending the call.
            note = json.loads(
                tool_text(await client.call_tool("add_note", {"text": "after expiry"}))
            )
            whoami = json.loads(tool_text(await client.call_tool("whoami", {})))
            return {"tools": tools, "echoed": echoed, "first": first, "note": note, "who": whoami}

    result = anyio.run(session)
    assert result["tools"] == {"whoami", "echo", "list_notes", "add_note"}
    assert result["echoed"] == "before expiry"
    assert result["note"]["text"] == "after expiry"
    assert result["note"]["author"] == "Demo Writer"
    assert result["who"]["name"] == "Demo Writer"
    assert result["who"]["permissions"] == ["read", "write"]

    # Discovery, registration, the sign-in (by the Person), then the token: in that order.
    paths = [(s.method, s.path, s.status) for s in traffic.seen]
    assert paths[0] == ("POST", "/mcp", 401), paths
    assert 'resource_metadata="' + server.issuer in traffic.seen[0].authenticate
    assert ("GET", "/.well-known/oauth-protected-resource", 200) in paths
    assert ("GET", "/.well-known/oauth-authorization-server", 200) in paths
    assert paths.index(("POST", "/register", 201)) < paths.index(("POST", "/token", 200))
    assert [a.status for a in person.answers] == [302]
    redirect = urlsplit(person.answers[0].location or "")
    query = parse_qs(redirect.query)
    assert f"{redirect.scheme}://{redirect.netloc}{redirect.path}" == REDIRECT_URI
    assert query["iss"] == [server.issuer] and query["state"] == [person.expected_state]

    # Expiry: one refresh (a second token request), which rotated both tokens.
    tokens = traffic.of("POST", "/token")
    assert [t.status for t in tokens] == [200, 200], paths
    first, refreshed = storage.token_history
    assert refreshed.access_token != first.access_token
    assert refreshed.refresh_token and refreshed.refresh_token != first.refresh_token
    # No 401 after the sign-in: the refresh came before the call, not after a refusal.
    after_sign_in = paths[paths.index(("POST", "/token", 200)) :]
    assert ("POST", "/mcp", 401) not in after_sign_in, paths
    # The server refuses the expired token itself; the rotated refresh token is spent.
    expired = bearer_post(server, first.access_token)
    assert expired.status_code == 401
    assert reason_of(expired.text) == "token_expired"
    assert 'error="invalid_token"' in expired.headers["WWW-Authenticate"]
    assert storage.client is not None
    reused = httpx2.post(
        f"{server.issuer}/token",
        data={"grant_type": "refresh_token", "refresh_token": first.refresh_token or ""},
        auth=(storage.client.client_id, storage.client.client_secret or ""),
        timeout=30,
    )
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"

    # The audit log: the sign-in with the key, then the MCP calls with the token (each
    # worker writes its batch within 100 ms).
    events = wait_for(
        lambda: (
            (found := server.audit_events())
            and any(e["credential_source"] == "signin" for e in found)
            and sum(e["credential_source"] == "oauth" for e in found) >= 5
            and found
        ),
        "the sign-in's and the token's audit lines",
    )
    signins = [e for e in events if e["credential_source"] == "signin"]
    assert [(e["event"], e["path"], e["status"]) for e in signins] == [
        ("auth_success", "/authorize", 302)
    ]
    assert signins[0]["name"] == "Demo Writer"
    with_token = [e for e in events if e["credential_source"] == "oauth"]
    assert len(with_token) >= 5  # initialize ... whoami
    assert {e["oauth_client_id"] for e in with_token} == {storage.client.client_id}
    assert {(e["event"], e["path"], e["name"]) for e in with_token} == {
        ("auth_success", "/mcp", "Demo Writer")
    }
    assert WRITER_KEY not in server.audit_log.read_text()

    # More than one worker took part (a new connection per request).
    workers = {s.worker for s in traffic.seen}
    assert len(workers) > 1, traffic.seen


# -- 2. a wrong key, then the right one ---------------------------------------------------


def test_a_wrong_key_gets_the_form_again_then_the_right_key_signs_in(
    server: OAuthServer,
) -> None:
    person = Person(["not-a-key-at-all", READER_KEY])
    storage = MemoryStorage()
    traffic = Traffic()

    async def session() -> str:
        async with oauth_client(server, person, storage, traffic) as client:
            return tool_text(await client.call_tool("echo", {"text": "second try"}))

    assert anyio.run(session) == "second try"
    wrong, right = person.answers
    assert wrong.status == 401 and wrong.location is None
    assert WRONG_KEY_MESSAGE in wrong.html
    assert person.forms[1].error is not None and WRONG_KEY_MESSAGE in person.forms[1].error
    assert "code=" not in wrong.html
    assert "not-a-key-at-all" not in wrong.html
    # The form came back with the same OAuth request in its hidden fields.
    first_fields = {k: v for k, v in person.forms[0].hidden.items() if k != "csrf_token"}
    again = {k: v for k, v in person.forms[1].hidden.items() if k != "csrf_token"}
    assert again == first_fields
    assert right.status == 302 and "code=" in (right.location or "")
    assert [t.status for t in traffic.of("POST", "/token")] == [200]
    wanted = {("auth_failure", 401, None), ("auth_success", 302, "Demo Reader")}
    # Each worker writes its batch of audit lines within 100 ms.
    wait_for(
        lambda: (
            wanted
            <= {
                (e["event"], e["status"], e["name"])
                for e in server.audit_events()
                if e["credential_source"] == "signin"
            }
        ),
        "the sign-in's audit lines",
    )


# -- 3. deny ------------------------------------------------------------------------------


def test_deny_sends_access_denied_and_no_token(server: OAuthServer) -> None:
    person = Person([WRITER_KEY], decision="deny")
    storage = MemoryStorage()
    traffic = Traffic()

    async def session() -> None:
        async with oauth_client(server, person, storage, traffic) as client:
            await client.list_tools()

    with pytest.raises(BaseException) as failure:  # what it carries: checked below
        anyio.run(session)
    refusals = [e for e in errors_in(failure.value) if isinstance(e, SignInRefused)]
    assert [str(e) for e in refusals][:1] == ["access_denied"], failure.value
    (answer,) = person.answers
    assert answer.status == 302
    query = parse_qs(urlsplit(answer.location or "").query)
    assert query["error"] == ["access_denied"]
    assert query["state"] == [person.expected_state] and query["iss"] == [server.issuer]
    assert "code" not in query
    assert storage.tokens is None
    assert traffic.of("POST", "/token") == []


# -- 4. a key revoked while its session is live --------------------------------------------


def test_a_key_removed_from_the_key_file_ends_its_session_and_its_refresh(
    server: OAuthServer,
) -> None:
    person = Person([REVOCABLE_KEY])
    storage = MemoryStorage()
    traffic = Traffic()
    outcome: dict[str, Any] = {}

    async def session() -> None:
        async with oauth_client(server, person, storage, traffic) as client:
            outcome["before"] = tool_text(await client.call_tool("echo", {"text": "still here"}))
            outcome["revoked_at"] = len(traffic.seen)
            write_atomically(server.key_file, DEMO_KEYS)  # the key is gone
            await client.call_tool("echo", {"text": "after revocation"})
            outcome["after"] = "the call after the revocation succeeded"

    try:
        with pytest.raises(BaseException) as failure:  # what it carries: checked below
            anyio.run(session)
    finally:
        write_atomically(server.key_file, ALL_KEYS)

    assert "after" not in outcome, outcome["after"]
    # The session ended because the Person could not sign in again with the revoked key.
    refusals = [e for e in errors_in(failure.value) if isinstance(e, SignInRefused)]
    assert refusals, failure.value
    assert outcome["before"] == "still here"
    after = traffic.seen[outcome["revoked_at"] :]
    # The very next request is refused: the token's key is no longer in the store.
    assert (after[0].method, after[0].path, after[0].status) == ("POST", "/mcp", 401), after
    assert reason_of(after[0].body) == "invalid_token"
    assert 'error="invalid_token"' in after[0].authenticate
    # The provider then asked the Person again, and the revoked key was refused on the page.
    assert [a.status for a in person.answers] == [302, 401]
    assert WRONG_KEY_MESSAGE in person.answers[1].html
    assert [t.status for t in traffic.of("POST", "/token")] == [200]

    # The refresh token of that sign-in no longer works either (key file still without it).
    assert storage.tokens is not None and storage.tokens.refresh_token
    assert storage.client is not None
    write_atomically(server.key_file, DEMO_KEYS)
    try:
        refreshed = httpx2.post(
            f"{server.issuer}/token",
            data={"grant_type": "refresh_token", "refresh_token": storage.tokens.refresh_token},
            auth=(storage.client.client_id, storage.client.client_secret or ""),
            timeout=30,
        )
        token_now = bearer_post(server, storage.tokens.access_token)
    finally:
        write_atomically(server.key_file, ALL_KEYS)
    assert refreshed.status_code == 400, refreshed.text
    assert refreshed.json()["error"] == "invalid_grant"
    assert token_now.status_code == 401 and reason_of(token_now.text) == "invalid_token"
    # With the key back, the (unexpired) access token is accepted again: nothing was cached.
    assert bearer_post(server, storage.tokens.access_token).status_code == 200


# -- 5. the steps on different workers; one code, one token --------------------------------


def _pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge.decode().rstrip("=")


@dataclass
class Round:
    """One hand-driven sign-in; which worker answered each step."""

    client_id: str
    verifier: str
    code: str
    workers: dict[str, str]


def _fresh(**kwargs: Any) -> httpx2.Client:
    """A client that opens a new connection per request (any worker may take it)."""
    return httpx2.Client(limits=httpx2.Limits(max_keepalive_connections=0), timeout=30, **kwargs)


def sign_in_by_hand(server: OAuthServer, key: str) -> Round:
    workers: dict[str, str] = {}
    with _fresh(follow_redirects=False) as http:
        registered = http.post(
            f"{server.issuer}/register",
            json={
                "redirect_uris": [REDIRECT_URI],
                "token_endpoint_auth_method": "none",
                "client_name": "hand-driven",
            },
        )
        assert registered.status_code == 201, registered.text
        workers["register"] = registered.headers["X-Request-ID"][:16]
        client_id = registered.json()["client_id"]
        verifier, challenge = _pkce()
        state = secrets.token_urlsafe(16)
        page = http.get(
            f"{server.issuer}/authorize",
            params={
                "response_type": "code",
                "client_id": client_id,
                "redirect_uri": REDIRECT_URI,
                "state": state,
                "code_challenge": challenge,
                "code_challenge_method": "S256",
                "resource": server.mcp_url,
            },
        )
        assert page.status_code == 200, page.text
        workers["page"] = page.headers["X-Request-ID"][:16]
        form = parse_form(page.text)
        approved = http.post(
            urljoin(f"{server.issuer}/authorize", form.action),
            data={**form.hidden, "api_key": key, "decision": "approve"},
        )
        assert approved.status_code == 302, approved.text
        workers["sign-in"] = approved.headers["X-Request-ID"][:16]
    query = parse_qs(urlsplit(approved.headers["Location"]).query)
    assert query["state"] == [state] and query["iss"] == [server.issuer]
    return Round(client_id, verifier, query["code"][0], workers)


def redeem(server: OAuthServer, round_: Round) -> httpx2.Response:
    with _fresh() as http:
        return http.post(
            f"{server.issuer}/token",
            data={
                "grant_type": "authorization_code",
                "code": round_.code,
                "redirect_uri": REDIRECT_URI,
                "client_id": round_.client_id,
                "code_verifier": round_.verifier,
                "resource": server.mcp_url,
            },
        )


def test_registration_sign_in_and_token_on_different_workers(server: OAuthServer) -> None:
    """Nothing a worker issues is kept in that worker: every step works on any other."""
    rounds: list[Round] = []
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        round_ = sign_in_by_hand(server, CONNECTOR_KEY)
        token = redeem(server, round_)
        assert token.status_code == 200, token.text
        round_.workers["token"] = token.headers["X-Request-ID"][:16]
        used = bearer_post(server, token.json()["access_token"])
        assert used.status_code == 200, used.text
        round_.workers["use"] = used.headers["X-Request-ID"][:16]
        rounds.append(round_)
        steps = round_.workers
        if len({steps["register"], steps["sign-in"], steps["token"]}) == 3:
            break
    assert len({steps["register"], steps["sign-in"], steps["token"]}) == 3, [
        r.workers for r in rounds
    ]


def test_a_code_is_redeemed_once_across_workers(server: OAuthServer) -> None:
    round_ = sign_in_by_hand(server, CONNECTOR_KEY)
    with ThreadPoolExecutor(8) as pool:
        concurrent = list(pool.map(lambda _: redeem(server, round_), range(8)))
    sequential = [redeem(server, round_) for _ in range(3)]
    replies = concurrent + sequential
    statuses = sorted(reply.status_code for reply in replies)
    assert statuses == [200] + [400] * 10, [r.text for r in replies]
    assert {r.json()["error"] for r in replies if r.status_code == 400} == {"invalid_grant"}
    assert len({r.headers["X-Request-ID"][:16] for r in concurrent}) > 1
    # The replay ended the grant: the one token response's refresh token is refused.
    (won,) = [r for r in replies if r.status_code == 200]
    with _fresh() as http:
        refreshed = http.post(
            f"{server.issuer}/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": won.json()["refresh_token"],
                "client_id": round_.client_id,
            },
        )
    assert refreshed.status_code == 400, refreshed.text
    assert refreshed.json()["error"] == "invalid_grant"
