"""Rate limits on a real Redis: shared counters, no secrets in keys, outages, round trips."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import pytest
from flask import Flask
from support.servers import RedisServer

from flask_mcp_auth import MCPAuth
from flask_mcp_auth.ratelimit import limiter as ratelimit_module

pytest.importorskip("redis")

KEY = "chatgpt-connector-key"


TIMEOUTS = {"socket_connect_timeout": 2, "socket_timeout": 2}


def build(redis_url: str, rate_limit: dict[str, int] | None = None, **config: Any) -> Flask:
    app = Flask(__name__)
    app.config["TESTING"] = True
    rate_limit = rate_limit or {"requestsPerMinute": 4}
    app.config["MCP_API_KEYS"] = json.dumps(
        {KEY: {"name": "Connector", "role": "user", "rateLimit": rate_limit}}
    )
    app.config["RATELIMIT_STORAGE_URI"] = redis_url
    app.config["RATELIMIT_STORAGE_OPTIONS"] = dict(TIMEOUTS)
    app.config.update(config)
    MCPAuth(app)

    @app.get("/data")
    def data() -> dict[str, bool]:
        return {"ok": True}

    return app


def call(app: Flask, key: str | None = KEY, addr: str = "127.0.0.1") -> Any:
    headers = {"X-API-Key": key} if key is not None else {}
    return app.test_client().get("/data", headers=headers, environ_base={"REMOTE_ADDR": addr})


def test_two_apps_on_one_redis_share_a_key_limit(redis_server: RedisServer) -> None:
    first, second = build(redis_server.url), build(redis_server.url)
    statuses = [call(app).status_code for app in (first, second, first, second, first, second)]
    assert statuses == [200, 200, 200, 200, 429, 429]


def test_redis_keys_hold_fingerprints_never_the_key_id(redis_server: RedisServer) -> None:
    app = build(redis_server.url, MCP_ANONYMOUS_RATE_LIMIT="5/minute")
    call(app)
    call(app, None)
    call(app, "wrong-" + KEY)
    stored = [k.decode() for k in redis_server.client().keys("*")]
    # The key's window, the anonymous window, the failure counter and the wrong key's mark.
    assert len(stored) == 4
    assert not [k for k in stored if KEY in k]
    fingerprint = next(iter(app.extensions["mcp_auth"].state_for(app).store)).fingerprint
    assert any(fingerprint in k for k in stored)


def count_commands(app: Flask, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The commands ``app`` sends to Redis from now on, one entry per round trip."""
    auth = app.extensions["mcp_auth"]
    connection = auth.state_for(app).rate_limits.strategy.storage.get_connection()
    sent: list[str] = []
    real = connection.execute_command

    def counting(*args: Any, **options: Any) -> Any:
        sent.append(str(args[0]))
        return real(*args, **options)

    monkeypatch.setattr(connection, "execute_command", counting)
    return sent


def test_both_windows_and_the_lockout_gate_take_one_round_trip(
    redis_server: RedisServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = build(redis_server.url, {"requestsPerMinute": 100, "requestsPerHour": 1000})
    sent = count_commands(app, monkeypatch)
    call(app)  # may load the script once
    sent.clear()
    for _ in range(5):
        response = call(app)
        assert response.status_code == 200
        assert response.headers["X-RateLimit-Remaining"]
    assert sent == ["EVALSHA"] * 5
    # Each of those round trips counted both windows (the lockout gate is read in it too).
    redis = redis_server.client()
    assert sorted(redis.get(k) for k in redis.keys("*mcp-auth/key/*")) == [b"6", b"6"]


#: The pooled client (the default) and one connection per process (the recommended set-up).
CLIENTS = pytest.mark.parametrize(
    "client_options",
    [TIMEOUTS, {**TIMEOUTS, "single_connection_client": True}],
    ids=["pool", "one-connection"],
)


@CLIENTS
def test_redis_outage_falls_back_to_memory_then_shares_again(
    redis_server: RedisServer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    client_options: dict[str, Any],
) -> None:
    monkeypatch.setattr(ratelimit_module, "STORAGE_RETRY_INTERVAL", 0.0)
    first, second = (
        build(redis_server.url, RATELIMIT_STORAGE_OPTIONS=client_options) for _ in range(2)
    )
    assert call(first).status_code == 200

    redis_server.stop()
    with caplog.at_level(logging.ERROR, logger="flask_mcp_auth.ratelimit"):
        during = [call(app).status_code for app in (first, second) * 3]
    assert all(status < 500 for status in during)
    # Each process now counts on its own: 4 per minute each.
    assert during == [200] * 6
    assert len([r for r in caplog.records if r.levelname == "ERROR"]) == 2  # once per app

    redis_server.start()  # a fresh, empty Redis on the same port
    after = [call(app).status_code for app in (first, second, first, second, first)]
    assert after == [200, 200, 200, 200, 429]
    assert redis_server.client().keys("*")


@CLIENTS
def test_redis_outage_fails_closed_when_set(
    redis_server: RedisServer,
    monkeypatch: pytest.MonkeyPatch,
    client_options: dict[str, Any],
) -> None:
    monkeypatch.setattr(ratelimit_module, "STORAGE_RETRY_INTERVAL", 0.0)
    app = build(
        redis_server.url, MCP_RATELIMIT_FAIL_CLOSED=True, RATELIMIT_STORAGE_OPTIONS=client_options
    )
    assert call(app).status_code == 200
    redis_server.stop()
    refused = call(app)
    assert refused.status_code == 503
    assert refused.get_json()["error"] == "service_unavailable"
    redis_server.start()
    assert call(app).status_code == 200


def test_failed_attempt_lockout_is_shared_through_redis(redis_server: RedisServer) -> None:
    first, second = (
        build(redis_server.url, MCP_AUTH_FAILURE_LIMIT="3/minute"),
        build(redis_server.url, MCP_AUTH_FAILURE_LIMIT="3/minute"),
    )
    statuses = [call(app, f"guess-{n}").status_code for n, app in enumerate((first, second, first))]
    assert statuses == [401, 401, 401]
    assert call(second, "guess-3").status_code == 429
    assert call(first, KEY).status_code == 429
    assert call(second, KEY, "10.1.1.1").status_code == 200


# -- failed attempts: a repeated wrong key counts once -----------------------------------------


def failure_count(redis_server: RedisServer, addr: str = "127.0.0.1") -> int:
    counters = redis_server.client().keys(f"*mcp-auth/failures/{addr}/20/1/minute")
    return sum(int(redis_server.client().get(k)) for k in counters)


def test_a_failed_attempt_takes_one_round_trip_repeated_or_distinct(
    redis_server: RedisServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = build(redis_server.url)
    sent = count_commands(app, monkeypatch)
    call(app, "warm-up")  # may load the script once
    sent.clear()
    assert {call(app, "chatgpt-connector-kye").status_code for _ in range(5)} == {401}
    assert sent == ["EVALSHA"] * 5
    sent.clear()
    assert {call(app, f"guess-{n}").status_code for n in range(5)} == {401}
    assert sent == ["EVALSHA"] * 5
    assert failure_count(redis_server) == 7  # warm-up, the typo once, five guesses


def test_the_same_wrong_key_through_two_workers_counts_once(redis_server: RedisServer) -> None:
    """Two apps on one Redis stand for two gunicorn workers: one mark, one count."""
    for config in ({}, {"JWT_SECRET": "a-shared-secret-of-32-characters!"}):
        redis_server.client().flushall()
        first, second = build(redis_server.url, **config), build(redis_server.url, **config)
        statuses = {call(app, "chatgpt-connector-kye").status_code for app in (first, second) * 25}
        assert statuses == {401}
        assert failure_count(redis_server) == 1
        assert [call(first).status_code, call(second).status_code] == [200, 200]


def test_distinct_wrong_keys_through_two_workers_still_lock_out(redis_server: RedisServer) -> None:
    first, second = build(redis_server.url), build(redis_server.url)
    apps = (first, second) * 11
    statuses = [call(app, f"guess-{n}").status_code for n, app in enumerate(apps[:21])]
    assert statuses == [401] * 20 + [429]
    assert [call(app, KEY).status_code for app in (first, second)] == [429, 429]
    assert call(first, "guess-0").status_code == 429  # a repeat is refused too
    assert call(second, KEY, "10.1.1.1").status_code == 200


def test_no_redis_key_holds_a_presented_value(redis_server: RedisServer) -> None:
    app = build(redis_server.url)
    presented = ["chatgpt-connector-kye", "chatgpt-connector-key-2", "hunter2", "guess"]
    for value in presented * 3:
        call(app, value)
    stored = [k.decode() for k in redis_server.client().keys("*")]
    marks = [k for k in stored if "/failures/127.0.0.1/seen/" in k]
    assert len(marks) == len(presented)
    for value in presented:
        assert not [k for k in stored if value in k]
    assert not [k for k in stored if KEY[:-1] in k]
    # The marks are flags, not copies of anything.
    assert {redis_server.client().get(k) for k in marks} == {b"1"}


def test_a_mark_expires_with_the_failure_window(redis_server: RedisServer) -> None:
    app = build(redis_server.url, MCP_AUTH_FAILURE_LIMIT="3 per 2 seconds")
    redis = redis_server.client()
    assert call(app, "first").status_code == 401  # opens the two-second window
    time.sleep(1.0)
    assert [call(app, "typo").status_code for _ in range(3)] == [401] * 3
    (counter,) = redis.keys("*mcp-auth/failures/127.0.0.1/3/2/second")
    marks = redis.keys("*/seen/*")
    assert len(marks) == 2  # "first" and "typo"; "typo", set a second later, expires with it
    assert all(abs(redis.pttl(counter) - redis.pttl(mark)) <= 5 for mark in marks)  # ms
    time.sleep(redis.pttl(counter) / 1000 + 0.05)  # the window resets, the marks go with it
    assert not redis.keys("*mcp-auth/failures/127.0.0.1/*")
    assert [call(app, v).status_code for v in ("typo", "typo", "b", "c")] == [401] * 4
    assert call(app, "d").status_code == 429  # "typo" counted again
