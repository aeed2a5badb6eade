"""memory:// with the fixed window counts in the extension's own memory counter: through
an app, under 8 request threads, and as the fallback while a shared storage is down."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from flask import Flask
from test_ratelimit import build, call, closed_port, keys_with

from flask_mcp_auth.ratelimit import RateLimits
from flask_mcp_auth.ratelimit.counters import StrategyCounter
from flask_mcp_auth.ratelimit.memory_counter import MemoryFixedWindowCounter


def rate_limits(app: Flask) -> RateLimits:
    return app.extensions["mcp_auth"].state_for(app).rate_limits


def test_memory_fixed_window_uses_the_memory_counter() -> None:
    app = build(keys_with({"requestsPerMinute": 2}))
    assert type(rate_limits(app).counter) is MemoryFixedWindowCounter
    client = app.test_client()
    assert [call(client).status_code for _ in range(3)] == [200, 200, 429]


@pytest.mark.parametrize("strategy", ["moving-window", "sliding-window-counter"])
def test_other_strategies_on_memory_stay_with_limits(strategy: str) -> None:
    app = build(keys_with({"requestsPerMinute": 2}), RATELIMIT_STRATEGY=strategy)
    assert type(rate_limits(app).counter) is StrategyCounter


def test_eight_request_threads_admit_exactly_the_limit() -> None:
    """As under gunicorn's gthread worker with 8 threads: one process, one count."""
    app = build(keys_with({"requestsPerMinute": 50}), MCP_AUTH_FAILURE_LIMIT="5/minute")

    def request(n: int) -> int:
        if n % 4:
            return int(call(app.test_client()).status_code)
        return int(call(app.test_client(), f"guess-{n}", "10.0.0.2").status_code)

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(request, range(240)))
    # 180 requests with the key: 50 admitted; 60 distinct wrong keys from another
    # address: 5 counted, then that address is locked out.
    assert statuses.count(200) == 50
    assert statuses.count(401) == 5
    assert statuses.count(429) == 240 - 55


def test_the_fallback_while_the_storage_is_down_is_the_memory_counter() -> None:
    pytest.importorskip("redis")
    app = build(
        keys_with({"requestsPerMinute": 2}),
        RATELIMIT_STORAGE_URI=f"redis://127.0.0.1:{closed_port()}",
        RATELIMIT_STORAGE_OPTIONS={"socket_connect_timeout": 1},
    )
    assert type(rate_limits(app)._fallback) is MemoryFixedWindowCounter
    client = app.test_client()
    assert [call(client).status_code for _ in range(3)] == [200, 200, 429]
