"""Per-key, default, anonymous and failed-attempt rate limits, in one process (memory://).

Time is injected: ``clock`` replaces the clock that limits' memory storage and
flask_mcp_auth.ratelimit read, so window expiry is tested without sleeping.
"""

from __future__ import annotations

import json
import time
import types
from typing import Any

import pytest
from flask import Flask
from limits import RateLimitItemPerHour, RateLimitItemPerMinute, parse

from flask_mcp_auth import ConfigError, MCPAuth
from flask_mcp_auth.ratelimit import Limit, server_worker_count
from flask_mcp_auth.ratelimit import counters as ratelimit_counters
from flask_mcp_auth.ratelimit import limiter as ratelimit_module
from flask_mcp_auth.ratelimit import redis_counters as ratelimit_redis_counters
from flask_mcp_auth.ratelimit import responses as ratelimit_responses

KEY = "chatgpt-connector-key"


class Clock:
    """A settable stand-in for the time module, as seen by the code under test."""

    def __init__(self) -> None:
        self.now = time.time()
        self.mono = 1000.0

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.mono

    def advance(self, seconds: float) -> None:
        self.now += seconds
        self.mono += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    import limits.storage.memory

    fake = Clock()
    stand_in = types.SimpleNamespace(time=fake.time, monotonic=fake.monotonic)
    monkeypatch.setattr(limits.storage.memory, "time", stand_in)
    for module in (
        ratelimit_module,
        ratelimit_responses,
        ratelimit_counters,
        ratelimit_redis_counters,
    ):
        monkeypatch.setattr(module, "time", stand_in)
    return fake


def keys_with(rate_limit: dict[str, int] | None = None, **extra: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": "ChatGPT Connector", "role": "user", "permissions": ["*"]}
    if rate_limit is not None:
        entry["rateLimit"] = rate_limit
    entry.update(extra)
    return {KEY: entry}


def build(keys: dict[str, Any], **config: Any) -> Flask:
    app = Flask(__name__)
    app.config["TESTING"] = True
    app.config["MCP_API_KEYS"] = json.dumps(keys)
    app.config.update(config)
    MCPAuth(app)

    @app.get("/data")
    def data() -> dict[str, bool]:
        return {"ok": True}

    @app.post("/mcp")
    def mcp() -> dict[str, Any]:
        return {"jsonrpc": "2.0", "id": 1, "result": {}}

    return app


def call(client: Any, key: str | None = KEY, addr: str = "127.0.0.1", path: str = "/data") -> Any:
    headers = {"X-API-Key": key} if key is not None else {}
    return client.get(path, headers=headers, environ_base={"REMOTE_ADDR": addr})


# -- the two windows ------------------------------------------------------------------------


def test_minute_window_triggers_on_its_own(clock: Clock) -> None:
    client = build(keys_with({"requestsPerMinute": 3, "requestsPerHour": 100})).test_client()
    assert [call(client).status_code for _ in range(3)] == [200, 200, 200]
    refused = call(client)
    assert refused.status_code == 429
    body = refused.get_json()
    assert body["error"] == "rate_limit_exceeded"
    assert body["window"] == "minute"
    assert "3 requests per minute" in body["message"]
    assert "resets in 60 seconds" in body["message"]
    assert refused.headers["Retry-After"] == "60"
    assert refused.headers["X-RateLimit-Limit"] == "3"
    assert refused.headers["X-RateLimit-Remaining"] == "0"

    clock.advance(20)
    assert call(client).headers["Retry-After"] == "40"
    clock.advance(41)  # past the minute: the hour window (5 of 100 used) allows it
    allowed = call(client)
    assert allowed.status_code == 200
    assert allowed.headers["X-RateLimit-Remaining"] == "2"


def test_hour_window_triggers_on_its_own(clock: Clock) -> None:
    client = build(keys_with({"requestsPerMinute": 100, "requestsPerHour": 3})).test_client()
    assert [call(client).status_code for _ in range(3)] == [200, 200, 200]
    refused = call(client)
    assert refused.status_code == 429
    assert refused.get_json()["window"] == "hour"
    assert "3 requests per hour" in refused.get_json()["message"]
    assert refused.headers["Retry-After"] == "3600"
    assert refused.headers["X-RateLimit-Limit"] == "3"

    clock.advance(61)  # a new minute does not help: the hour window still refuses
    still = call(client)
    assert still.status_code == 429
    assert still.headers["Retry-After"] == str(3600 - 61)
    clock.advance(3600)
    assert call(client).status_code == 200


def test_refusal_by_the_minute_does_not_use_up_the_hour(clock: Clock) -> None:
    client = build(keys_with({"requestsPerMinute": 2, "requestsPerHour": 5})).test_client()
    statuses = [call(client).status_code for _ in range(10)]
    assert statuses == [200, 200] + [429] * 8
    clock.advance(61)
    # Only the two accepted requests count against the hour: three more fit.
    assert [call(client).status_code for _ in range(2)] == [200, 200]
    clock.advance(61)
    assert [call(client).status_code for _ in range(2)] == [200, 429]


def test_headers_on_successes_report_the_window_nearest_to_refusing(clock: Clock) -> None:
    client = build(keys_with({"requestsPerMinute": 10, "requestsPerHour": 12})).test_client()
    first = call(client)
    assert first.status_code == 200
    assert first.headers["X-RateLimit-Limit"] == "10"
    assert first.headers["X-RateLimit-Remaining"] == "9"
    reset = int(first.headers["X-RateLimit-Reset"])
    assert clock.now < reset <= clock.now + 61
    for _ in range(8):
        call(client)
    clock.advance(61)
    # Tenth request: the minute window has 9 left, the hour window 12 - 10 = 2: it is reported.
    later = call(client)
    assert later.headers["X-RateLimit-Limit"] == "12"
    assert later.headers["X-RateLimit-Remaining"] == "2"
    assert int(later.headers["X-RateLimit-Reset"]) > clock.now + 3000


def test_every_route_counts_against_the_same_key_windows(clock: Clock) -> None:
    client = build(keys_with({"requestsPerMinute": 3})).test_client()
    assert call(client, path="/data").status_code == 200
    assert call(client, path="/mcp/status").status_code == 200
    assert call(client, path="/no-such-route").status_code == 404
    assert call(client, path="/data").status_code == 429


def test_no_headers_for_a_key_without_limits(clock: Clock) -> None:
    response = call(build(keys_with()).test_client())
    assert response.status_code == 200
    assert "X-RateLimit-Limit" not in response.headers


def test_jsonrpc_shape_for_mcp_messages(clock: Clock) -> None:
    client = build(keys_with({"requestsPerMinute": 1})).test_client()
    message = {"jsonrpc": "2.0", "id": 7, "method": "tools/list"}
    assert client.post("/mcp", json=message, headers={"X-API-Key": KEY}).status_code == 200
    refused = client.post("/mcp", json=message, headers={"X-API-Key": KEY})
    assert refused.status_code == 429
    body = refused.get_json()
    assert body["id"] == 7
    assert body["error"]["code"] == -32029
    assert body["error"]["data"]["reason"] == "rate_limit_exceeded"
    assert "per minute" in body["error"]["message"]
    assert refused.headers["Retry-After"] == "60"


# -- default and anonymous limits --------------------------------------------------------


def test_default_limit_applies_to_keys_without_rate_limit(clock: Clock) -> None:
    keys = {**keys_with(), "limited": {"name": "Own", "rateLimit": {"requestsPerMinute": 5}}}
    client = build(keys, MCP_DEFAULT_RATE_LIMIT="2/minute").test_client()
    assert [call(client).status_code for _ in range(3)] == [200, 200, 429]
    # A key with its own rateLimit is held to it, not to the default.
    assert [call(client, "limited").status_code for _ in range(6)] == [200] * 5 + [429]


def test_default_limit_from_the_environment(clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MCP_DEFAULT_RATE_LIMIT", "1 per minute")
    client = build(keys_with()).test_client()
    assert [call(client).status_code for _ in range(2)] == [200, 429]


def test_anonymous_limit_is_per_client_address(clock: Clock) -> None:
    client = build(keys_with(), MCP_ANONYMOUS_RATE_LIMIT="2/minute").test_client()
    assert [call(client, None, "10.0.0.1").status_code for _ in range(3)] == [200, 200, 429]
    refused = call(client, None, "10.0.0.1")
    assert "anonymous callers" in refused.get_json()["message"]
    assert call(client, None, "10.0.0.2").status_code == 200
    # A key is not held to the anonymous limit of its address.
    assert call(client, KEY, "10.0.0.1").status_code == 200
    clock.advance(61)
    assert call(client, None, "10.0.0.1").status_code == 200


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MCP_DEFAULT_RATE_LIMIT", "lots per minute"),
        ("MCP_ANONYMOUS_RATE_LIMIT", "10/fortnight"),
        ("MCP_AUTH_FAILURE_LIMIT", "5/minute;50/hour"),
    ],
)
def test_bad_limit_strings_stop_start_up_naming_the_setting(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        build(keys_with(), **{name: value})


# -- failed-attempt throttling -----------------------------------------------------------


def test_failed_attempts_lock_out_the_address_until_the_window_resets(clock: Clock) -> None:
    client = build(keys_with(), MCP_AUTH_FAILURE_LIMIT="3/minute").test_client()
    assert [call(client, f"guess-{n}").status_code for n in range(3)] == [401, 401, 401]
    locked = call(client, "guess-3")
    assert locked.status_code == 429
    assert locked.get_json()["error"] == "too_many_failed_attempts"
    assert locked.headers["Retry-After"] == "60"
    # A valid key from the locked address gives no signal either.
    valid = call(client, KEY)
    assert valid.status_code == 429
    assert valid.get_json()["error"] == "too_many_failed_attempts"
    # Requests without a credential are not locked out.
    assert call(client, None).status_code == 200
    # Another address is unaffected, with a valid key or a wrong one.
    assert call(client, KEY, "10.9.9.9").status_code == 200
    assert call(client, "guess-3", "10.9.9.9").status_code == 401

    clock.advance(30)
    assert call(client, KEY).headers["Retry-After"] == "30"
    clock.advance(31)
    assert call(client, KEY).status_code == 200
    assert call(client, "guess").status_code == 401


def test_failed_attempt_lockout_is_on_by_default_at_20_per_minute(clock: Clock) -> None:
    client = build(keys_with()).test_client()
    assert {call(client, f"guess-{i}").status_code for i in range(20)} == {401}
    assert call(client, "guess-21").status_code == 429
    # Locked out: every credential from the address, the right key and a repeat too.
    assert call(client, KEY).status_code == 429
    assert call(client, "guess-0").status_code == 429


def test_the_same_wrong_key_repeated_counts_once_so_the_fixed_key_works(clock: Clock) -> None:
    """A misconfigured client retries one wrong value (mcp-remote 4 times a start, the
    Python client twice a connection): 50 of them are one failed attempt, not a lockout."""
    client = build(keys_with()).test_client()
    assert {call(client, "chatgpt-connector-kye").status_code for _ in range(50)} == {401}
    assert call(client, KEY).status_code == 200
    # The typo counted once: 19 distinct values more are still allowed, the 20th is not.
    assert {call(client, f"guess-{i}").status_code for i in range(19)} == {401}
    assert call(client, "guess-19").status_code == 429
    assert call(client, KEY).status_code == 429


def test_repeats_do_not_hide_distinct_guesses(clock: Clock) -> None:
    """Interleaving repeats with new values: every new value still counts."""
    client = build(keys_with(), MCP_AUTH_FAILURE_LIMIT="3/minute").test_client()
    statuses = [call(client, value).status_code for value in "aabbaacbad"]
    assert statuses == [401] * 7 + [429] * 3  # a, b and c counted: locked, repeats included
    assert call(client, KEY).status_code == 429


def test_a_repeated_wrong_key_counts_again_after_the_window_resets(clock: Clock) -> None:
    client = build(keys_with(), MCP_AUTH_FAILURE_LIMIT="3/minute").test_client()
    assert call(client, "first").status_code == 401  # opens the window: resets in 60 s
    clock.advance(50)
    assert [call(client, "typo").status_code for _ in range(5)] == [401] * 5  # counted once
    clock.advance(11)  # the window has reset, and the mark of "typo" with it
    assert [call(client, v).status_code for v in ("typo", "typo", "b", "c")] == [401] * 4
    assert call(client, "d").status_code == 429  # "typo" counted again: typo, b, c, then d


def test_values_presented_while_locked_out_count_once_the_lock_opens(clock: Clock) -> None:
    """A value refused by the lock was not counted, so it must not be marked as counted:
    otherwise a guesser could queue values during the lockout and try them free after."""
    client = build(keys_with(), MCP_AUTH_FAILURE_LIMIT="2/minute").test_client()
    assert [call(client, v).status_code for v in ("a", "b", "queued")] == [401, 401, 429]
    clock.advance(61)
    statuses = [call(client, v).status_code for v in ("queued", "queued", "c", "d")]
    assert statuses == [401, 401, 401, 429]  # "queued" and "c" counted


def test_failed_attempts_are_counted_once_under_concurrent_requests(clock: Clock) -> None:
    from concurrent.futures import ThreadPoolExecutor

    app = build(keys_with(), MCP_AUTH_FAILURE_LIMIT="3/minute")

    def attempt(_: int) -> int:
        return int(call(app.test_client(), "same-typo").status_code)

    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(attempt, range(40))) == {401}
    counts = app.extensions["mcp_auth"].state_for(app).rate_limits.counter.counts()
    assert [n for k, n in counts.items() if k.endswith("/failures/127.0.0.1/3/1/minute")] == [1]


@pytest.mark.parametrize("off", ["", "off"])
def test_failed_attempt_lockout_can_be_switched_off(clock: Clock, off: str) -> None:
    client = build(keys_with(), MCP_AUTH_FAILURE_LIMIT=off).test_client()
    assert {call(client, "guess").status_code for _ in range(30)} == {401}
    assert call(client, KEY).status_code == 200


def test_expired_key_is_locked_out_too_but_does_not_count(clock: Clock) -> None:
    keys = {
        **keys_with(),
        "old-key": {"name": "Old", "expiresAt": "2020-01-01T00:00:00Z"},
    }
    client = build(keys, MCP_AUTH_FAILURE_LIMIT="2/minute").test_client()
    assert {call(client, "old-key").status_code for _ in range(5)} == {401}
    assert call(client, KEY).status_code == 200
    assert [call(client, f"guess-{n}").status_code for n in range(3)] == [401, 401, 429]
    assert call(client, "old-key").status_code == 429


# -- what is stored, and the status route ----------------------------------------------------


def test_storage_keys_hold_the_fingerprint_never_the_key_id(clock: Clock) -> None:
    app = build(keys_with({"requestsPerMinute": 5}), MCP_ANONYMOUS_RATE_LIMIT="5/minute")
    client = app.test_client()
    call(client)
    call(client, None)
    call(client, "wrong-" + KEY)
    auth = app.extensions["mcp_auth"]
    stored = list(auth.state_for(app).rate_limits.counter.counts())
    assert stored
    assert not [k for k in stored if KEY in k]
    fingerprint = next(iter(auth.state_for(app).store)).fingerprint
    assert any(fingerprint in k for k in stored)


WRONG_VALUES = ["chatgpt-connector-kye", "chatgpt-connector-key-2", "Bearer-ish", "x", "1234567"]


def test_failed_attempt_marks_never_hold_the_presented_value(clock: Clock) -> None:
    app = build(keys_with())
    client = app.test_client()
    for value in WRONG_VALUES * 3:
        call(client, value)
    stored = list(app.extensions["mcp_auth"].state_for(app).rate_limits.counter.counts())
    marks = [k for k in stored if "/failures/127.0.0.1/seen/" in k]
    assert len(marks) == len(WRONG_VALUES)  # one per distinct value
    for value in WRONG_VALUES:
        assert not [k for k in stored if value in k.split("/failures/127.0.0.1/")[-1]]
    assert not [k for k in stored if KEY[:-1] in k]


def test_failed_attempt_marks_are_keyed_by_the_signing_secret(clock: Clock) -> None:
    """The mark is an HMAC: the same under the same secret (so workers agree), another
    under another secret, so a storage reader cannot test guesses without the secret."""

    def marks(**config: Any) -> list[str]:
        app = build(keys_with(), **config)
        call(app.test_client(), "chatgpt-connector-kye")
        counts = app.extensions["mcp_auth"].state_for(app).rate_limits.counter.counts()
        return [k for k in counts if "/seen/" in k]

    first, again, other = (
        marks(JWT_SECRET="s" * 32),
        marks(JWT_SECRET="s" * 32),
        marks(JWT_SECRET="t" * 32),
    )
    assert len(first) == 1 and first == again and first != other
    # Without a secret, derived from the configured key ids: the same for the same keys.
    plain, plain_again = marks(), marks()
    assert plain == plain_again and plain != first
    assert marks(MCP_API_KEYS=json.dumps({"another-key": {"role": "user"}})) != plain


def test_limit_keys_match_the_limits_library(clock: Clock) -> None:
    for item in (RateLimitItemPerMinute(5), RateLimitItemPerHour(7), parse("3 per 2 seconds")):
        assert Limit.of(item).key("mcp-auth/key/abc") == item.key_for("mcp-auth/key/abc")


def test_status_route_reports_the_callers_windows(clock: Clock) -> None:
    client = build(keys_with({"requestsPerMinute": 5, "requestsPerHour": 50})).test_client()
    call(client)
    body = call(client, path="/mcp/status").get_json()
    windows = {w["window"]: w for w in body["rate_limits"]}
    assert windows["minute"]["remaining"] == 3
    assert windows["minute"]["amount"] == 5
    assert windows["hour"]["remaining"] == 48
    assert KEY not in json.dumps(body)


# -- a Limiter passed by the app -----------------------------------------------------------


def test_counts_go_to_the_limiter_the_app_passes(clock: Clock) -> None:
    from flask_limiter import Limiter
    from flask_limiter.util import get_remote_address

    app = Flask(__name__)
    app.config["MCP_API_KEYS"] = json.dumps(keys_with({"requestsPerMinute": 2}))
    limiter = Limiter(get_remote_address, app=app, storage_uri="memory://")
    auth = MCPAuth(app, limiter=limiter)

    @app.get("/data")
    @limiter.limit("100/minute")
    def data() -> dict[str, bool]:
        return {"ok": True}

    client = app.test_client()
    assert [call(client).status_code for _ in range(3)] == [200, 200, 429]
    assert auth.state_for(app).rate_limits.strategy.storage is limiter.storage
    fingerprint = next(iter(auth.state_for(app).store)).fingerprint
    assert any(fingerprint in k for k in auth.state_for(app).rate_limits.counter.counts())


def test_an_uninitialised_limiter_is_a_clear_error() -> None:
    from flask_limiter import Limiter
    from flask_limiter.util import get_remote_address

    app = Flask(__name__)
    with pytest.raises(ConfigError, match="not initialised"):
        MCPAuth(app, limiter=Limiter(get_remote_address))


# -- storage failure without a server --------------------------------------------------------


def closed_port() -> int:
    from support.servers import free_port

    return free_port()  # nothing listens there


def test_unreachable_storage_falls_back_to_memory_and_logs_once(
    clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    pytest.importorskip("redis")
    app = build(
        keys_with({"requestsPerMinute": 3}),
        RATELIMIT_STORAGE_URI=f"redis://127.0.0.1:{closed_port()}",
        RATELIMIT_STORAGE_OPTIONS={"socket_connect_timeout": 1},
    )
    client = app.test_client()
    with caplog.at_level("ERROR", logger="flask_mcp_auth.ratelimit"):
        statuses = [call(client).status_code for _ in range(3)]
        clock.advance(2)  # past the retry interval: it tries the storage again, still down
        statuses += [call(client).status_code for _ in range(2)]
    assert statuses == [200, 200, 200, 429, 429]
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1
    assert "unavailable" in errors[0].getMessage()
    assert KEY not in caplog.text


def test_unreachable_storage_fails_closed_with_503_when_set(clock: Clock) -> None:
    pytest.importorskip("redis")
    client = build(
        keys_with({"requestsPerMinute": 3}),
        RATELIMIT_STORAGE_URI=f"redis://127.0.0.1:{closed_port()}",
        RATELIMIT_STORAGE_OPTIONS={"socket_connect_timeout": 1},
        MCP_RATELIMIT_FAIL_CLOSED=True,
    ).test_client()
    refused = call(client)
    assert refused.status_code == 503
    assert refused.get_json()["error"] == "service_unavailable"
    # Failed-attempt accounting needs the storage too: no 500 there either.
    assert call(client, "guess").status_code == 503


# -- multi-worker detection ------------------------------------------------------------------


def test_worker_count_is_unknown_outside_a_server() -> None:
    assert server_worker_count() is None


def test_worker_count_is_read_from_the_gunicorn_worker_loading_the_app() -> None:
    from gunicorn.workers.base import Worker

    worker = object.__new__(Worker)
    worker.cfg = types.SimpleNamespace(workers=3)

    def load_wsgi(self: Any) -> int | None:  # stands in for Worker.load_wsgi
        return server_worker_count()

    assert load_wsgi(worker) == 3


@pytest.mark.parametrize("strategy", ["moving-window", "sliding-window-counter"])
def test_other_limiter_strategies_enforce_the_same_limits(clock: Clock, strategy: str) -> None:
    app = build(
        keys_with({"requestsPerMinute": 3}),
        RATELIMIT_STRATEGY=strategy,
        MCP_AUTH_FAILURE_LIMIT="2/minute",
    )
    client = app.test_client()
    assert [call(client).status_code for _ in range(4)] == [200, 200, 200, 429]
    assert call(client).headers["X-RateLimit-Limit"] == "3"
    guesses = [call(client, f"guess-{n}", "10.0.0.5").status_code for n in range(3)]
    assert guesses == [401, 401, 429]
    assert call(client, KEY, "10.0.0.5").status_code == 429


@pytest.mark.parametrize("strategy", ["moving-window", "sliding-window-counter"])
def test_other_strategies_count_a_repeated_wrong_key_once(clock: Clock, strategy: str) -> None:
    app = build(keys_with(), RATELIMIT_STRATEGY=strategy, MCP_AUTH_FAILURE_LIMIT="3/minute")
    client = app.test_client()
    assert {call(client, "typo").status_code for _ in range(10)} == {401}
    assert call(client, KEY).status_code == 200
    statuses = [call(client, v).status_code for v in ("b", "typo", "c", "d")]
    assert statuses == [401, 401, 401, 429]
    assert call(client, KEY).status_code == 429
    storage = app.extensions["mcp_auth"].state_for(app).rate_limits.strategy.storage
    assert "typo" not in json.dumps([*storage.storage, *storage.events])


def test_moving_window_counts_a_value_queued_during_the_lockout(clock: Clock) -> None:
    app = build(keys_with(), RATELIMIT_STRATEGY="moving-window", MCP_AUTH_FAILURE_LIMIT="2/minute")
    client = app.test_client()
    assert [call(client, v).status_code for v in ("a", "b")] == [401, 401]
    clock.advance(10)
    assert call(client, "queued").status_code == 429
    clock.advance(51)  # "a" and "b" have left the moving window
    statuses = [call(client, v).status_code for v in ("queued", "queued", "c", "d")]
    assert statuses == [401, 401, 401, 429]


def test_strategy_counter_marks_with_one_hit_windows_on_memory_storage(clock: Clock) -> None:
    """The generic path (any storage, any strategy), driven directly on MemoryStorage."""
    from limits.storage import MemoryStorage
    from limits.strategies import FixedWindowRateLimiter

    storage = MemoryStorage()
    counter = ratelimit_counters.StrategyCounter(FixedWindowRateLimiter(storage))
    limit = Limit.of(parse("3/minute"))
    mark = Limit.of(parse("1/minute"))
    gate = (limit, "mcp-auth/failures/10.0.0.1")

    def fail(ref: str) -> int:
        return counter.fail(gate, (mark, f"mcp-auth/failures/10.0.0.1/seen/{ref}")).remaining

    assert [fail("aaa") for _ in range(5)] == [2, 2, 2, 2, 2]
    assert [fail("bbb"), fail("ccc"), fail("aaa"), fail("ddd")] == [1, 0, -1, -1]
    assert storage.get(limit.key(gate[1])) == 3  # "ddd", refused, was not counted ...
    assert storage.get(mark.key(f"{gate[1]}/seen/ddd")) == 0  # ... nor marked
    clock.advance(61)
    assert [fail("aaa"), fail("ddd")] == [2, 1]


def test_key_prefix_separates_apps_sharing_a_storage(clock: Clock) -> None:
    app = build(keys_with({"requestsPerMinute": 5}), RATELIMIT_KEY_PREFIX="billing")
    call(app.test_client())
    stored = list(app.extensions["mcp_auth"].state_for(app).rate_limits.counter.counts())
    assert stored and all("/billing/mcp-auth/key/" in k for k in stored)


def test_status_route_reports_anonymous_windows_per_address(clock: Clock) -> None:
    client = build(keys_with(), MCP_ANONYMOUS_RATE_LIMIT="10/minute").test_client()
    call(client, None, "10.0.0.1")
    body = call(client, None, "10.0.0.1", path="/mcp/status").get_json()
    assert [(w["window"], w["remaining"]) for w in body["rate_limits"]] == [("minute", 8)]
    other = call(client, None, "10.0.0.2", path="/mcp/status").get_json()
    assert other["rate_limits"][0]["remaining"] == 9


def test_flask_limiters_enabled_switch_does_not_break_start_up(clock: Clock) -> None:
    client = build(keys_with({"requestsPerMinute": 1}), RATELIMIT_ENABLED=False).test_client()
    assert [call(client).status_code for _ in range(2)] == [200, 429]
