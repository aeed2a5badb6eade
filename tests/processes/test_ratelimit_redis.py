"""Rate limits on a real Redis: shared counters, no secrets in keys, outages, round trips."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from flask import Flask
from support.servers import RedisServer

from flask_mcp_auth import MCPAuth
from flask_mcp_auth.ratelimit import limiter as ratelimit_module

pytest.importorskip("redis")

KEY = "chatgpt-connector-key"


def build(redis_url: str, rate_limit: dict[str, int] | None = None, **config: Any) -> Flask:
    app = Flask(__name__)
    app.config["TESTING"] = True
    rate_limit = rate_limit or {"requestsPerMinute": 4}
    app.config["MCP_API_KEYS"] = json.dumps(
        {KEY: {"name": "Connector", "role": "user", "rateLimit": rate_limit}}
    )
    app.config["RATELIMIT_STORAGE_URI"] = redis_url
    app.config["RATELIMIT_STORAGE_OPTIONS"] = {"socket_connect_timeout": 2, "socket_timeout": 2}
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
    assert len(stored) == 3  # the key's window, the anonymous window, the failure counter
    assert not [k for k in stored if KEY in k]
    fingerprint = next(iter(app.extensions["mcp_auth"].state_for(app).store)).fingerprint
    assert any(fingerprint in k for k in stored)


def test_both_windows_and_the_lockout_gate_take_one_round_trip(
    redis_server: RedisServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = build(redis_server.url, {"requestsPerMinute": 100, "requestsPerHour": 1000})
    auth = app.extensions["mcp_auth"]
    connection = auth.state_for(app).rate_limits.strategy.storage.get_connection()
    sent: list[str] = []
    real = connection.execute_command

    def counting(*args: Any, **options: Any) -> Any:
        sent.append(str(args[0]))
        return real(*args, **options)

    monkeypatch.setattr(connection, "execute_command", counting)
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


def test_redis_outage_falls_back_to_memory_then_shares_again(
    redis_server: RedisServer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(ratelimit_module, "STORAGE_RETRY_INTERVAL", 0.0)
    first, second = build(redis_server.url), build(redis_server.url)
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


def test_redis_outage_fails_closed_when_set(
    redis_server: RedisServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ratelimit_module, "STORAGE_RETRY_INTERVAL", 0.0)
    app = build(redis_server.url, MCP_RATELIMIT_FAIL_CLOSED=True)
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
    statuses = [call(app, "guess").status_code for app in (first, second, first)]
    assert statuses == [401, 401, 401]
    assert call(second, "guess").status_code == 429
    assert call(first, KEY).status_code == 429
    assert call(second, KEY, "10.1.1.1").status_code == 200
