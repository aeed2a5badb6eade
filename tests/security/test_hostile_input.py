"""Hostile input, property-based.

Whatever a client puts in ``X-API-Key``, ``Authorization`` or the ``api_key``
query parameter, the answer is a JSON 200, 401, 403 or 429 and never a 500; a
credential that is not a live key never authenticates and never downgrades to
anonymous access; error bodies never contain a configured key id.  Whatever
``MCP_API_KEYS`` holds, loading it gives a valid key store or a ConfigError.

Requests are raw WSGI environs: header values and ``QUERY_STRING`` are
latin-1 strings holding the bytes a server received, so they can carry any
byte, Unicode as UTF-8, and byte sequences that are not UTF-8 at all.  The app
runs with TESTING on, so an exception would propagate here instead of hiding
behind a 500 page.

Example counts come from tests/support/hypothesis_profiles.py (HYPOTHESIS_PROFILE=long
for many more).
"""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import logging
import re
import socket
import string
import threading
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, quote, quote_from_bytes

import pytest
from apps.security_app import create_app
from flask import Flask
from hypothesis import assume, example, given
from hypothesis import strategies as st
from mcp.types import JSONRPCError
from support.servers import GunicornServer
from werkzeug.datastructures import Headers
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.serving import make_server
from werkzeug.test import EnvironBuilder, run_wsgi_app

from flask_mcp_auth import ROLES, ConfigError, InvalidAPIKey, KeyStore, MCPAuth, generate_api_key
from flask_mcp_auth.audit import AUDIT_LOGGER
from flask_mcp_auth.debug import configure_debug
from flask_mcp_auth.errors import JSONRPC_PEEK_LIMIT

SECRET = "hostile-input-signing-secret"
# Distinctive key ids, so a leak into a response or a message is unmistakable.
READER = "reader-4c1f9a7be20d"
ADMIN = "admin-93e5b1d07a6c"
EXPIRED = "expired-5d1c07e8f2ab"
KEYS = {
    READER: {"name": "Reader", "userId": "reader-user", "role": "user", "permissions": ["read"]},
    ADMIN: {"name": "Admin", "userId": "admin-user", "role": "admin", "permissions": ["*"]},
    EXPIRED: {
        "name": "Old",
        "role": "admin",
        "permissions": ["*"],
        "expiresAt": "2020-01-01T00:00:00Z",
    },
}
LIVE = frozenset({READER, ADMIN, generate_api_key(READER, SECRET), generate_api_key(ADMIN, SECRET)})
KNOWN = LIVE | {EXPIRED, generate_api_key(EXPIRED, SECRET)}

# Routes of tests/apps/security_app.py: open to guests, or needing a permission / role.
OPEN_ROUTES = ("/data", "/mcp/status")
PROTECTED_ROUTES = ("/read", "/admin")
ERROR_REASONS = {"missing_api_key", "invalid_api_key", "api_key_expired"}

# Failed-attempt lockout off: these properties send thousands of wrong credentials from
# one address; the lockout has its own properties below.
SETTINGS = {"MCP_API_KEYS": json.dumps(KEYS), "JWT_SECRET": SECRET, "MCP_AUTH_FAILURE_LIMIT": "off"}
# The failed-attempt lockout, on: a few guesses, then the address is locked.
LOCKOUT_LIMIT = 3


class AuditLines(logging.Handler):
    """The application's own handler on the audit logger: keeps every line written."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())

    def since(self, mark: int) -> list[dict[str, Any]]:
        """The events written after ``mark`` (a len(lines)), parsed: each must be JSON."""
        return [json.loads(line) for line in self.lines[mark:]]


# Built when this module's tests start, not at import: the audit logger is
# process-wide, and other modules' tests expect to find it as they left it.
APPS: dict[str, Flask] = {}
AUDIT = AuditLines()


@pytest.fixture(scope="module", autouse=True)
def hostile_apps() -> Iterator[None]:
    audit_logger = logging.getLogger(AUDIT_LOGGER)
    audit_logger.addHandler(AUDIT)  # so init_app adds no stderr handler of its own
    try:
        APPS["main"] = create_app(TESTING=True, **SETTINGS)
        APPS["lockout"] = create_app(
            TESTING=True, **{**SETTINGS, "MCP_AUTH_FAILURE_LIMIT": f"{LOCKOUT_LIMIT} per minute"}
        )
        yield
    finally:
        audit_logger.removeHandler(AUDIT)
        APPS.clear()


# -- requests as a server would hand them over -----------------------------------


class Reply:
    def __init__(self, status: int, headers: Headers, body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def json(self) -> Any:
        assert self.headers.get("Content-Type", "").startswith("application/json"), self.headers
        return json.loads(self.body)


def call(
    path: str,
    *,
    method: str = "GET",
    headers: Iterable[tuple[str, str]] = (),
    query: str = "",
    body: bytes = b"",
    content_type: str | None = None,
    app: Flask | None = None,
    remote_addr: str = "127.0.0.1",
) -> Reply:
    """Run one request through the WSGI app; values are latin-1 strings of raw bytes."""
    environ = EnvironBuilder(
        method=method, path=path, data=body, content_type=content_type
    ).get_environ()
    environ["QUERY_STRING"] = query
    environ["REMOTE_ADDR"] = remote_addr
    for name, value in headers:
        key = "HTTP_" + name.upper().replace("-", "_")
        # A server joins a repeated header into one comma-separated value.
        environ[key] = f"{environ[key]},{value}" if key in environ else value
    app_iter, status, response_headers = run_wsgi_app(app or APPS["main"], environ, buffered=True)
    try:
        content = b"".join(app_iter)
    finally:
        getattr(app_iter, "close", lambda: None)()
    return Reply(int(status.split()[0]), Headers(response_headers), content)


def as_wire(text: str) -> str:
    """Unicode text as a client sends it (UTF-8), seen through WSGI's latin-1 lens."""
    return text.encode("utf-8", "surrogatepass").decode("latin-1")


def bearer_token(authorization: str) -> str | None:
    """The token of an 'Authorization: Bearer <token>' value (RFC 6750), else None."""
    scheme, _, token = authorization.strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


def query_values(query: str, name: str = "api_key") -> list[str]:
    decoded = query.encode("latin-1").decode("utf-8", "replace")
    return [v for k, v in parse_qsl(decoded, keep_blank_values=True) if k == name]


SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:+=/@-]{1,128}")


def without_request_id(headers: Headers) -> list[tuple[str, str]]:
    return sorted((k, v) for k, v in headers.items() if k != "X-Request-ID")


def assert_clean_reply(reply: Reply) -> None:
    """Only 200/401/403/429, JSON, a challenge on 401, and no key id anywhere."""
    assert reply.status in (200, 401, 403, 429), reply.body[:300]
    body = reply.json()
    if reply.status == 401:
        assert body["error"] in ERROR_REASONS
        assert reply.headers["WWW-Authenticate"].startswith('Bearer realm="mcp"')
    for key_id in KEYS:
        assert key_id.encode() not in reply.body


# -- strategies --------------------------------------------------------------------

# Anything a server passes on in a header or query string: every byte but CR/LF.
any_bytes = st.binary(max_size=300).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b""))
unicode_text = st.text(max_size=120).map(as_wire)
control_text = st.text(st.characters(max_codepoint=0x1F, exclude_characters="\r\n"), max_size=40)
huge_value = st.builds(
    lambda unit, count: unit * count,
    st.sampled_from(["A", "\x00", "\xff", "%", " ", "mcp_", as_wire("\U0001f511")]),
    st.integers(2_000, 64_000),
)


@st.composite
def near_misses(draw: st.DrawFn) -> str:
    """A known credential, slightly wrong: what a guesser or a typo produces."""
    known = draw(st.sampled_from(sorted(KNOWN)))
    at = draw(st.integers(0, len(known) - 1))
    char = draw(st.characters(max_codepoint=0xFF))
    mutation = draw(st.sampled_from(["insert", "replace", "drop", "truncate", "case", "join"]))
    if mutation == "insert":
        return known[:at] + char + known[at:]
    if mutation == "replace":
        return known[:at] + char + known[at + 1 :]
    if mutation == "drop":
        return known[:at] + known[at + 1 :]
    if mutation == "truncate":
        return known[:at]
    if mutation == "case":
        return known.swapcase()
    return known + draw(st.sampled_from([",", ", ", ";", " "])) + known


other_signed = st.one_of(
    # Validly signed, but for a key id the store does not hold.
    st.text(string.ascii_letters + string.digits + "-_", min_size=1, max_size=30).map(
        lambda key_id: generate_api_key(key_id, SECRET)
    ),
    # A live key id signed with another secret.
    st.sampled_from([READER, ADMIN]).map(lambda key_id: generate_api_key(key_id, "not-the-secret")),
)


def is_live(value: str) -> bool:
    return value.strip() in LIVE


# Values that must never authenticate (including the expired key, exactly).
junk = st.one_of(
    st.just(""),
    st.sampled_from([" ", "null", "undefined", "Bearer", "mcp_", "mcp__", "*", EXPIRED]),
    any_bytes.map(lambda b: b.decode("latin-1")),
    unicode_text,
    control_text,
    near_misses(),
    other_signed,
    st.just(generate_api_key(EXPIRED, SECRET)),
).filter(lambda value: not is_live(value))
junk_or_huge = st.one_of(junk, huge_value)

schemes = st.sampled_from(["Bearer", "bearer", "BEARER", "Basic", "Digest", "Token", "ApiKey", ""])
authorization_values = st.one_of(
    st.builds(
        lambda scheme, gap, token: scheme + gap + token,
        schemes,
        st.sampled_from([" ", "  ", "\t", ""]),
        junk_or_huge,
    ),
    st.sampled_from(["Bearer", "Bearer ", "Bearer  ", "bearer\t", ""]),
    any_bytes.map(lambda b: b.decode("latin-1")),
).filter(lambda value: not is_live(bearer_token(value) or ""))

# Query parameters: (name, how the value is written).  "api%5Fkey" decodes to api_key.
param_names = st.sampled_from(["api_key", "api%5Fkey", "API_KEY", "apikey", "api_key[]", "x"])


@st.composite
def query_param(draw: st.DrawFn) -> str:
    name = draw(param_names)
    form = draw(st.sampled_from(["percent", "raw", "empty", "bare", "broken-percent"]))
    if form == "percent":
        value = quote_from_bytes(draw(junk).encode("utf-8", "surrogatepass"), safe="")
    elif form == "raw":  # bytes as received, not percent-encoded, maybe not UTF-8
        raw = draw(any_bytes)
        value = raw.replace(b"&", b"").replace(b"#", b"").decode("latin-1")
    elif form == "empty":
        return name + "="
    elif form == "bare":
        return name
    else:
        value = draw(st.sampled_from(["%", "%f", "%zz", "%ff%fe", "%00", "%C3%28", "%ED%A0%80"]))
    return f"{name}={value}"


queries = st.lists(query_param(), max_size=4).map("&".join)


# Hostile request ids (a caller who puts a key in its own request id logs it: not tested).
request_id_values = st.one_of(
    st.just("req-42"),
    st.just("a" * 129),
    any_bytes.map(lambda b: b.decode("latin-1")),
    unicode_text,
    control_text,
    huge_value,
)


@st.composite
def hostile_requests(draw: st.DrawFn) -> dict[str, Any]:
    headers: list[tuple[str, str]] = []
    for _ in range(draw(st.integers(0, 3))):
        headers.append(("X-API-Key", draw(junk_or_huge)))
    for _ in range(draw(st.integers(0, 3))):
        headers.append(("Authorization", draw(authorization_values)))
    for _ in range(draw(st.integers(0, 2))):
        headers.append(("X-Request-ID", draw(request_id_values)))
    draw(st.randoms()).shuffle(headers)
    return {
        "path": draw(st.sampled_from(OPEN_ROUTES + PROTECTED_ROUTES)),
        "headers": headers,
        "query": draw(queries),
    }


def presented_credentials(request: dict[str, Any]) -> list[str]:
    """Every value the request offers as a credential, in any of the three places."""
    headers = request["headers"]
    api_key = [v for n, v in headers if n == "X-API-Key"]
    offered = [",".join(api_key)] if api_key else []
    authorization = [v for n, v in headers if n == "Authorization"]
    if authorization:
        token = bearer_token(",".join(authorization))
        offered += [token] if token is not None else []
    return offered + query_values(request["query"])


# -- hostile credentials -------------------------------------------------------------


@given(hostile_requests())
@example({"path": "/data", "headers": [], "query": "x=\xff"})  # raw non-UTF-8 byte: was a 500
@example({"path": "/read", "headers": [], "query": "api_key=\xff\xfe"})
@example({"path": "/read", "headers": [("Authorization", "Bearer")], "query": ""})
@example({"path": "/data", "headers": [("X-API-Key", "")], "query": ""})
@example({"path": "/read", "headers": [("X-API-Key", "A" * 64_000)], "query": ""})
def test_hostile_credentials_never_authenticate_and_never_500(request: dict[str, Any]) -> None:
    mark = len(AUDIT.lines)
    reply = call(request["path"], headers=request["headers"], query=request["query"])
    assert_clean_reply(reply)
    # The request id is echoed only when it is safe to put in headers and logs.
    assert SAFE_REQUEST_ID.fullmatch(reply.headers["X-Request-ID"])
    events = AUDIT.since(mark)
    assert not any(key_id in line for line in AUDIT.lines[mark:] for key_id in KEYS)
    offered = presented_credentials(request)
    if offered:
        # A credential that is not a live key is refused, even where guests are welcome,
        # and the refusal is audited once, with the reason the caller was given.
        assert reply.status == 401
        assert reply.json()["error"] in ("invalid_api_key", "api_key_expired")
        assert [(e["event"], e["reason"], e["status"]) for e in events] == [
            ("auth_failure", reply.json()["error"], 401)
        ]
        assert events[0]["request_id"] == reply.headers["X-Request-ID"]
        return
    assert events == []  # no credential, no 403 or 429: nothing to audit
    if request["path"] in PROTECTED_ROUTES:
        assert reply.status == 401
        assert reply.json()["error"] == "missing_api_key"
    else:
        assert reply.status == 200
        assert reply.json().get("authenticated", False) is False


EXPIRED_FORMS = {EXPIRED, generate_api_key(EXPIRED, SECRET)}


@given(
    guess=junk_or_huge.filter(lambda v: v.strip() not in EXPIRED_FORMS),
    path=st.sampled_from(OPEN_ROUTES + PROTECTED_ROUTES),
)
def test_every_wrong_guess_gets_the_same_answer(guess: str, path: str) -> None:
    """Guessing: no reply tells a near miss, a bad signature or garbage from any other miss."""
    reply = call(path, headers=[("X-API-Key", guess)])
    canonical = call("/read", headers=[("X-API-Key", "a-wrong-guess")])
    assert (reply.status, reply.body) == (canonical.status, canonical.body)
    # Every header but the per-request id (see the audit log) is the same.
    assert without_request_id(reply.headers) == without_request_id(canonical.headers)


_address_numbers = itertools.count(1)


def fresh_address() -> str:
    """A client address no earlier example used, so each starts with a clean count."""
    number = next(_address_numbers)
    return f"10.{number >> 16 & 255}.{number >> 8 & 255}.{number & 255}"


def without_time(reply: Reply) -> tuple[int, list[str], dict[str, Any]]:
    """A 429's status, header names and body, minus the parts that change with the clock."""
    body = {k: v for k, v in reply.json().items() if k not in ("message", "retry_after")}
    return reply.status, sorted(reply.headers.keys()), body


@given(
    guesses=st.lists(
        junk.filter(lambda v: v.strip() not in EXPIRED_FORMS),
        min_size=LOCKOUT_LIMIT + 1,
        max_size=LOCKOUT_LIMIT + 3,
        unique_by=str.strip,  # a repeated wrong value counts once: each guess is a new one
    ),
    then=st.one_of(junk, st.sampled_from(sorted(LIVE))),
    slot=st.sampled_from(["header", "bearer", "query"]),
)
def test_a_locked_out_address_learns_nothing_from_any_credential(
    guesses: list[str], then: str, slot: str
) -> None:
    """Guessing: past MCP_AUTH_FAILURE_LIMIT every credential, a live key included,
    gets the same 429, so further guesses carry no signal; other callers are unaffected."""
    address = fresh_address()

    def attempt(value: str, remote_addr: str = address) -> Reply:
        headers, query = slot_request(slot, value)
        return call(
            "/read", headers=headers, query=query, app=APPS["lockout"], remote_addr=remote_addr
        )

    replies = [attempt(guess) for guess in guesses]
    assert [r.status for r in replies[:LOCKOUT_LIMIT]] == [401] * LOCKOUT_LIMIT
    locked = [*replies[LOCKOUT_LIMIT:], attempt(then)]
    for reply in locked:
        assert_clean_reply(reply)
        assert reply.json()["error"] == "too_many_failed_attempts"
        assert int(reply.headers["Retry-After"]) > 0
        assert without_time(reply) == without_time(locked[0])
    # No credential: not a guess, so still served; another address is not locked.
    assert call("/data", app=APPS["lockout"], remote_addr=address).status == 200
    assert attempt(READER, remote_addr=fresh_address()).status == 200


def lockout_app(proxy_hops: int | None) -> Flask:
    app = create_app(
        TESTING=True, **{**SETTINGS, "MCP_AUTH_FAILURE_LIMIT": f"{LOCKOUT_LIMIT} per minute"}
    )
    if proxy_hops is not None:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxy_hops)  # type: ignore[method-assign]
    return app


def guess_from(app: Flask, peer: str, forwarded_for: str | None = None, n: int = 0) -> int:
    # A new wrong value each time: a repeated one counts once per window.
    headers = [("X-API-Key", f"a-wrong-guess-{n}")]
    if forwarded_for is not None:
        headers.append(("X-Forwarded-For", forwarded_for))
    return call("/read", headers=headers, app=app, remote_addr=peer).status


def test_without_proxyfix_a_forged_forwarded_for_does_not_escape_the_lockout() -> None:
    app = lockout_app(proxy_hops=None)
    statuses = [guess_from(app, "10.9.0.1", f"198.51.100.{n}", n) for n in range(LOCKOUT_LIMIT + 2)]
    assert statuses == [401] * LOCKOUT_LIMIT + [429, 429]


def test_behind_one_proxy_proxyfix_counts_each_client_and_ignores_forged_hops() -> None:
    """The proxy (10.9.0.2) appends the real client; x_for=1 trusts only that last hop."""
    app = lockout_app(proxy_hops=1)
    proxy = "10.9.0.2"
    for n in range(LOCKOUT_LIMIT + 2):  # the client forges a new first hop every time
        status = guess_from(app, proxy, f"198.51.100.{n}, 203.0.113.7", n)
        assert status == (401 if n < LOCKOUT_LIMIT else 429)
    # Another client behind the same proxy is not locked out by the first one.
    assert guess_from(app, proxy, "203.0.113.8") == 401


def test_trusting_more_hops_than_there_are_proxies_lets_a_guesser_escape() -> None:
    """Why docs/rate-limiting.md says never more: with x_for=2 and one proxy, the forged
    hop is believed, and rotating it gives unlimited guesses."""
    app = lockout_app(proxy_hops=2)
    statuses = [
        guess_from(app, "10.9.0.2", f"198.51.100.{n}, 203.0.113.7", n)
        for n in range(LOCKOUT_LIMIT + 2)
    ]
    assert statuses == [401] * (LOCKOUT_LIMIT + 2)


@given(hostile_requests())
def test_debug_output_under_hostile_input_holds_no_key_and_never_breaks(
    request: dict[str, Any],
) -> None:
    """DEBUG=auth:* on: each decision is logged, and nothing a client sends (near misses
    of real keys included) puts a key id in the debug lines or breaks the request."""
    configure_debug("auth:*")
    try:
        with contextlib.redirect_stderr(io.StringIO()) as debug_output:
            reply = call(request["path"], headers=request["headers"], query=request["query"])
    finally:
        configure_debug(None)
    assert_clean_reply(reply)
    lines = debug_output.getvalue()
    assert "auth:request" in lines
    assert not any(key_id in lines for key_id in KEYS)


def slot_request(slot: str, value: str) -> tuple[list[tuple[str, str]], str]:
    if slot == "header":
        return [("X-API-Key", value)], ""
    if slot == "bearer":
        return [("Authorization", "Bearer " + value)], ""
    return [], "api_key=" + quote(value, safe="")


SLOTS = ("header", "bearer", "query")


@given(
    live=st.sampled_from(sorted(LIVE)),
    slot=st.sampled_from(SLOTS),
    padding=st.sampled_from(["", " ", "\t", "  "]),
    lower=st.data(),
)
def test_live_key_authenticates_whatever_is_in_lower_priority_places(
    live: str, slot: str, padding: str, lower: st.DataObject
) -> None:
    """Precedence is X-API-Key, then Bearer, then ?api_key: junk below the key is ignored."""
    headers, query = slot_request(slot, padding + live + padding)
    for lower_slot in SLOTS[SLOTS.index(slot) + 1 :]:
        extra_headers, extra_query = slot_request(lower_slot, lower.draw(junk))
        headers += extra_headers
        query = query or extra_query
    mark = len(AUDIT.lines)
    reply = call("/read", headers=headers, query=query)
    assert_clean_reply(reply)
    assert reply.status == 200
    assert reply.json()["user"] in ("reader-user", "admin-user")
    events = AUDIT.since(mark)
    assert [(e["event"], e["status"], e["credential_source"]) for e in events] == [
        ("auth_success", 200, slot)
    ]
    assert not any(key_id in line for line in AUDIT.lines[mark:] for key_id in KEYS)


@given(
    live=st.sampled_from(sorted(LIVE)),
    slot=st.sampled_from(SLOTS[1:]),
    bad=junk,
    higher=st.data(),
)
def test_junk_in_a_higher_priority_place_is_not_rescued_by_a_live_key(
    live: str, slot: str, bad: str, higher: st.DataObject
) -> None:
    """The first credential present decides; a guess cannot fall through to a stolen key."""
    headers, query = slot_request(slot, live)
    higher_slot = higher.draw(st.sampled_from(SLOTS[: SLOTS.index(slot)]))
    extra_headers, _ = slot_request(higher_slot, bad)
    reply = call("/read", headers=extra_headers + headers, query=query)
    assert_clean_reply(reply)
    assert reply.status == 401


@given(live=st.sampled_from(sorted(LIVE)), bad=junk, live_first=st.booleans())
def test_repeated_api_key_header_with_one_live_key_is_refused(
    live: str, bad: str, live_first: bool
) -> None:
    """Two X-API-Key headers reach the app as one joined value, which is not a key."""
    values = [live, bad] if live_first else [bad, live]
    reply = call("/read", headers=[("X-API-Key", v) for v in values])
    assert_clean_reply(reply)
    assert reply.status == 401


@given(
    scheme=st.sampled_from(["Basic", "Digest", "Token", "ApiKey", "Bearer-Token"]),
    token=junk,
    live=st.sampled_from(sorted(LIVE)),
)
def test_other_authorization_schemes_are_not_credentials(
    scheme: str, token: str, live: str
) -> None:
    """Only Bearer carries a key; another scheme leaves the query parameter in charge."""
    reply = call(
        "/read",
        headers=[("Authorization", f"{scheme} {token}")],
        query="api_key=" + quote(live, safe=""),
    )
    assert_clean_reply(reply)
    assert reply.status == 200


@pytest.mark.parametrize(
    ("path", "credential", "status"),
    [
        ("/read", READER, 200),
        ("/admin", READER, 403),
        ("/admin", ADMIN, 200),
        ("/read", EXPIRED, 401),
    ],
)
def test_oracle_control_live_keys_behave_as_configured(
    path: str, credential: str, status: int
) -> None:
    """The properties above would pass vacuously if no key ever worked; these must."""
    reply = call(path, headers=[("X-API-Key", credential)])
    assert_clean_reply(reply)
    assert reply.status == status


# -- JSON-RPC and other bodies on a failed authentication -----------------------------------

json_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**200), max_value=10**200),
    st.floats(),
    st.text(max_size=40),
)


def json_containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.lists(children, max_size=5), st.dictionaries(st.text(max_size=10), children, max_size=5)
    )


json_values = st.recursive(json_leaves, json_containers, max_leaves=25)
request_ids = st.one_of(
    st.integers(),
    st.integers(min_value=-(10**300), max_value=10**300),
    st.text(max_size=40),
    st.none(),
    st.floats(),
    st.booleans(),
    json_values,
)


@st.composite
def jsonrpc_messages(draw: st.DrawFn) -> dict[str, Any]:
    message: dict[str, Any] = {"jsonrpc": draw(st.sampled_from(["2.0", "2.0", "1.0", 2.0]))}
    if draw(st.booleans()):
        message["id"] = draw(request_ids)
    message["method"] = draw(
        st.one_of(st.sampled_from(["initialize", "tools/call", "tools/list"]), json_values)
    )
    if draw(st.booleans()):
        message["params"] = draw(json_values)
    return message


def dump(value: Any) -> bytes:
    return json.dumps(value).encode()


bodies = st.one_of(
    jsonrpc_messages().map(dump),
    st.lists(jsonrpc_messages(), max_size=4).map(dump),  # batches, the empty one included
    st.lists(st.one_of(jsonrpc_messages(), json_values), min_size=1, max_size=4).map(dump),
    json_values.map(dump),
    jsonrpc_messages().map(lambda m: dump(m)[: len(dump(m)) // 2]),  # truncated
    st.integers(1, 200_000).map(lambda depth: b"[" * depth + b"]" * depth),  # deep nesting
    st.integers(1, 50_000).map(lambda depth: b'{"a":' * depth + b"1" + b"}" * depth),
    st.just(b'{"jsonrpc":"2.0","id":' + b"9" * 5_000 + b',"method":"x"}'),  # int too long
    jsonrpc_messages().map(lambda m: json.dumps(m).encode("utf-16")),
    st.binary(max_size=300),
)
content_types = st.sampled_from(
    [
        "application/json",
        "application/json; charset=utf-8",
        "application/vnd.api+json",
        "text/plain",
        "application/x-www-form-urlencoded",
        None,
    ]
)


def parse_like_flask(body: bytes, content_type: str | None) -> Any:
    """What the request's JSON is, if Flask sees JSON at all (else None)."""
    mimetype = (content_type or "").split(";")[0].strip()
    is_json = mimetype == "application/json" or (
        mimetype.startswith("application/") and mimetype.endswith("+json")
    )
    if not is_json:
        return None
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        return None


def expected_id(message: dict[str, Any]) -> Any:
    msg_id = message.get("id")
    return msg_id if isinstance(msg_id, (str, int)) and not isinstance(msg_id, bool) else None


@given(
    body=bodies,
    content_type=content_types,
    credential=junk,
    path=st.sampled_from(["/mcp", "/read"]),
)
@example(b"[" * 100_000 + b"]" * 100_000, "application/json", "nope", "/mcp")  # was a 500
@example(b'[{"jsonrpc":"2.0","id":1,"method":"tools/list"}]', "application/json", "", "/mcp")
@example(b'{"jsonrpc":"2.0","method":"notifications/initialized"}', "application/json", "x", "/mcp")
def test_failed_authentication_always_gets_a_well_formed_error(
    body: bytes, content_type: str | None, credential: str, path: str
) -> None:
    reply = call(
        path,
        method="POST",
        headers=[("X-API-Key", credential)],
        body=body,
        content_type=content_type,
    )
    assert reply.status == 401
    answer = reply.json()
    assert not any(key_id.encode() in reply.body for key_id in KEYS)
    sent = parse_like_flask(body, content_type)
    is_message = isinstance(sent, dict) and sent.get("jsonrpc") == "2.0"
    is_batch = isinstance(sent, list) and any(isinstance(m, dict) and "jsonrpc" in m for m in sent)
    if is_message or is_batch:
        # What the official MCP client parses into MCPError(code, message).
        error = JSONRPCError.model_validate(answer)
        assert error.id == (expected_id(sent) if is_message else None)
        assert error.error.code == -32001
        assert answer["error"]["data"]["reason"] in ("invalid_api_key", "api_key_expired")
    else:
        assert answer["error"] in ("invalid_api_key", "api_key_expired")
        assert isinstance(answer["message"], str)


def test_body_over_max_content_length_still_gets_the_401() -> None:
    """Reading the body to find a JSON-RPC id used to raise 413 inside the 401: a 500."""
    app = create_app(TESTING=True, MAX_CONTENT_LENGTH=16, **SETTINGS)
    body = dump({"jsonrpc": "2.0", "id": 7, "method": "tools/list", "params": {}})
    reply = call(
        "/mcp",
        method="POST",
        headers=[("X-API-Key", "wrong")],
        body=body,
        content_type="application/json",
        app=app,
    )
    assert reply.status == 401
    assert reply.json()["error"] == "invalid_api_key"


@pytest.mark.parametrize("over_limit", [False, True])
def test_failed_request_body_is_read_for_its_id_only_up_to_the_peek_limit(
    over_limit: bool,
) -> None:
    """Resource exhaustion: a 401 must not buffer and parse an arbitrarily large body."""
    head = b'{"jsonrpc":"2.0","id":41,"method":"tools/call","params":{"blob":"'
    tail = b'"}}'
    size = JSONRPC_PEEK_LIMIT + (1 if over_limit else 0)
    body = head + b"x" * (size - len(head) - len(tail)) + tail
    reply = call(
        "/mcp",
        method="POST",
        headers=[("X-API-Key", "wrong")],
        body=body,
        content_type="application/json",
    )
    assert reply.status == 401
    if over_limit:
        assert reply.json() == {"error": "invalid_api_key", "message": InvalidAPIKey.description}
    else:
        assert JSONRPCError.model_validate(reply.json()).id == 41


# -- MCP_API_KEYS documents ------------------------------------------------------------


def check_loaded(store: KeyStore, document: Any) -> None:
    """A store that loaded is fully valid and finds every key id of the document."""
    assert len(store) == len(document)
    for key_id in document:
        key = store.find(key_id)
        assert key is not None and key.key_id == key_id
    for key in store:
        assert key.role in ROLES
        assert all(isinstance(p, str) and p.strip() == p and p for p in key.permissions)
        for limit in (key.requests_per_minute, key.requests_per_hour):
            assert limit is None or (type(limit) is int and limit > 0)
        assert key.expires_at is None or key.expires_at.utcoffset().total_seconds() == 0
        assert len(key.fingerprint) == 12 and all(c in string.hexdigits for c in key.fingerprint)


def load_outcome(document: Any) -> KeyStore | ConfigError:
    """KeyStore.load(document), and the same through MCPAuth.init_app."""
    try:
        store = KeyStore.load(document, SECRET)
    except ConfigError as error:
        outcome: KeyStore | ConfigError = error
    else:
        outcome = store
    app = Flask(__name__)
    app.config.update(MCP_API_KEYS=document, JWT_SECRET=SECRET)
    try:
        MCPAuth(app)
    except ConfigError:
        assert isinstance(outcome, ConfigError)
    else:
        assert isinstance(outcome, KeyStore)
    return outcome


def python_containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.lists(children, max_size=4),
        st.tuples(children, children),
        st.frozensets(st.integers(), max_size=3),
        st.dictionaries(st.one_of(st.text(max_size=8), st.integers(), st.none()), children),
    )


python_values = st.recursive(
    st.one_of(json_leaves, st.binary(max_size=10), st.builds(object), st.just(float("nan"))),
    python_containers,
    max_leaves=20,
)
raw_documents = st.one_of(
    json_values.map(json.dumps),  # NaN and Infinity included
    python_values,  # app.config may hold anything
    st.text(max_size=200),
    st.binary(max_size=200),
    st.integers(1, 200_000).map(lambda depth: "[" * depth + "]" * depth),
    st.integers(1, 50_000).map(lambda depth: '{"k":' * depth + "{}" + "}" * depth),
    st.integers(4_000, 20_000).map(
        lambda digits: '{"k": {"rateLimit": {"requestsPerMinute": ' + "9" * digits + "}}}"
    ),
)


@given(raw_documents)
@example('{"k": {"expiresAt": "0001-01-01T00:00:00+01:00"}}')  # OverflowError before the fix
@example('{"k": {"expiresAt": "9999-12-31T23:59:59-01:00"}}')
def test_any_document_loads_cleanly_or_raises_config_error(document: Any) -> None:
    outcome = load_outcome(document)
    if isinstance(outcome, KeyStore) and isinstance(document, dict):
        check_loaded(outcome, document)


# Valid documents, then one mutation each: what a person editing the JSON by hand produces.
key_ids = st.text(string.ascii_letters + string.digits, min_size=16, max_size=24).map(
    lambda s: "kid-" + s
)
datetimes = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.timezones()
)


@st.composite
def valid_entries(draw: st.DrawFn) -> dict[str, Any]:
    entry: dict[str, Any] = {}
    if draw(st.booleans()):
        entry["name"] = draw(st.text(min_size=1, max_size=20).filter(str.strip))
    if draw(st.booleans()):
        entry["userId"] = draw(st.text(min_size=1, max_size=20).filter(str.strip))
    if draw(st.booleans()):
        entry["role"] = draw(st.sampled_from(ROLES))
    if draw(st.booleans()):
        entry["permissions"] = draw(
            st.lists(st.sampled_from(["*", "read", "write", "admin", "tools:*", "tools:echo"]))
        )
    if draw(st.booleans()):
        entry["rateLimit"] = {
            name: draw(st.integers(1, 10**12))
            for name in draw(st.sets(st.sampled_from(["requestsPerMinute", "requestsPerHour"])))
        }
    if draw(st.booleans()):
        entry["expiresAt"] = draw(datetimes).isoformat()
    return entry


valid_documents = st.dictionaries(key_ids, valid_entries(), min_size=1, max_size=4)


def mutations(field_value: st.SearchStrategy[Any]) -> st.SearchStrategy[Callable[[dict], None]]:
    field_names = st.sampled_from(
        ["name", "userId", "role", "permissions", "rateLimit", "expiresAt"]
    )

    def set_field(name: str, value: Any) -> Callable[[dict], None]:
        return lambda entry: entry.__setitem__(name, value)

    def rename(old: str, new: str) -> Callable[[dict], None]:
        def apply(entry: dict) -> None:
            entry[new] = entry.pop(old, None)

        return apply

    return st.one_of(
        st.builds(set_field, field_names, field_value),
        st.builds(
            set_field,
            st.just("rateLimit"),
            st.dictionaries(
                st.sampled_from(["requestsPerMinute", "requestsPerHour", "requestsPerDay"]),
                st.one_of(st.sampled_from([0, -1, True, 1.5, "100", None, 10**400]), field_value),
            ),
        ),
        st.builds(set_field, st.just("expiresAt"), st.datetimes().map(datetime.isoformat)),
        st.builds(
            set_field,
            st.just("expiresAt"),
            st.datetimes(timezones=st.timezones()).map(datetime.isoformat),
        ),
        st.builds(
            set_field,
            st.just("permissions"),
            st.lists(st.one_of(st.sampled_from(["", " ", "read"]), field_value), max_size=3),
        ),
        st.builds(
            rename,
            field_names,
            st.sampled_from(["Name", "user_id", "userid", "roles", "permission", "expires"]),
        ),
    )


field_mutations = mutations(json_values)


@st.composite
def near_valid_documents(draw: st.DrawFn) -> tuple[Any, list[str]]:
    document = draw(valid_documents)
    ids = list(document)
    target = draw(st.sampled_from(ids))
    how = draw(st.sampled_from(["field", "field", "entry", "key id", "duplicate", "text"]))
    if how == "field":
        draw(field_mutations)(document[target])
    elif how == "entry":
        document[target] = draw(json_values)
    elif how == "key id":
        document[draw(st.sampled_from(["", " ", " " + target, target + "\t", "a\x00b"]))] = (
            document.pop(target)
        )
    if how == "duplicate":  # only expressible as text
        text = json.dumps(document)
        first = json.dumps({target: document[target]})[1:-1]
        return "{" + first + ", " + text[1:], ids
    if how == "text":
        text = json.dumps(document)
        cut = draw(st.integers(0, len(text)))
        return text[:cut] + draw(st.text(max_size=3)) + text[cut:], ids
    return json.dumps(document), ids


@given(valid_documents)
def test_valid_documents_load_and_every_key_works(document: dict[str, Any]) -> None:
    """The generator's control: unmutated documents always load."""
    outcome = load_outcome(json.dumps(document))
    assert isinstance(outcome, KeyStore)
    check_loaded(outcome, document)


@given(near_valid_documents())
def test_near_valid_documents_load_or_raise_config_error_without_the_key_ids(
    case: tuple[str, list[str]],
) -> None:
    text, ids = case
    outcome = load_outcome(text)
    if isinstance(outcome, ConfigError):
        message = str(outcome)
        assert message.startswith("MCP_API_KEYS")
        # In plain-key mode a key id is the secret itself: never in a message.
        assert not any(key_id in message for key_id in ids), message
    else:
        document = json.loads(text)
        assume(isinstance(document, dict))
        check_loaded(outcome, document)


# -- the same over real servers, as raw bytes on a loopback socket ------------------------

# Statuses a server's own HTTP parser uses to reject a malformed request before the app.
SERVER_REJECTIONS = (400, 414, 431)


def raw_request(target: bytes, *header_lines: bytes) -> bytes:
    head = [b"GET " + target + b" HTTP/1.1", b"Host: 127.0.0.1", *header_lines]
    return b"\r\n".join([*head, b"Connection: close", b"", b""])


RAW_REQUESTS = {
    "raw-byte-in-query": (raw_request(b"/data?x=\xff"), 200),
    "raw-bytes-in-api-key": (raw_request(b"/read?api_key=\xff\xfe"), 401),
    "percent-encoded-invalid-utf8": (raw_request(b"/read?api_key=%ff%fe"), 401),
    "repeated-api-key-param": (raw_request(b"/read?api_key=&api_key=x"), 401),
    "latin1-bytes-in-header": (raw_request(b"/read", b"X-API-Key: \xff\xfe\x80"), 401),
    "utf8-in-header": (raw_request(b"/read", "X-API-Key: \U0001f511".encode()), 401),
    "empty-header": (raw_request(b"/data", b"X-API-Key:"), 401),
    "empty-bearer": (raw_request(b"/data", b"Authorization: Bearer"), 401),
    "repeated-header-with-live-key": (
        raw_request(b"/read", b"X-API-Key: guess", b"X-API-Key: " + READER.encode()),
        401,
    ),
    "live-key": (raw_request(b"/read", b"X-API-Key: " + READER.encode()), 200),
    "nul-in-header": (raw_request(b"/read", b"X-API-Key: a\x00b"), 401),
    "huge-header": (raw_request(b"/read", b"X-API-Key: " + b"A" * 60_000), 401),
    "huge-query": (raw_request(b"/read?api_key=" + b"A" * 60_000), 401),
}


def send_raw(port: int, data: bytes) -> tuple[int, bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=20) as connection:
        connection.sendall(data)
        received = b""
        while chunk := connection.recv(65536):
            received += chunk
    status_line, _, rest = received.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]


@pytest.fixture(scope="module")
def werkzeug_server(hostile_apps: None) -> Iterator[int]:
    """Flask's development server (what ``flask run`` uses), in a thread."""
    server = make_server("127.0.0.1", 0, APPS["main"], threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_port
    finally:
        server.shutdown()
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def gunicorn_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    log_path = tmp_path_factory.mktemp("gunicorn") / "gunicorn.log"
    server = GunicornServer(
        "security_app:create_app()", workers=1, env=SETTINGS, log_path=log_path, graceful_timeout=2
    ).start()
    try:
        yield server.port
    finally:
        server.stop()


@pytest.mark.parametrize("server", ["werkzeug_server", "gunicorn_server"])
@pytest.mark.parametrize(("data", "expected"), RAW_REQUESTS.values(), ids=list(RAW_REQUESTS))
def test_raw_hostile_requests_over_real_servers(
    server: str, data: bytes, expected: int, request: pytest.FixtureRequest
) -> None:
    port = request.getfixturevalue(server)
    status, body = send_raw(port, data)
    if status in SERVER_REJECTIONS:
        return  # the server's HTTP parser refused it before the app ran: not our answer
    assert status == expected, body[:300]
    assert not any(key_id.encode() in body for key_id in KEYS)
