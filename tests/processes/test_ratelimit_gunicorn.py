"""Rate limits under real gunicorn processes sharing one Redis."""

from __future__ import annotations

import json
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from support.servers import RedisServer, get

pytest.importorskip("gunicorn")
pytest.importorskip("redis")

KEY = "chatgpt-connector-key"


def environment(per_minute: int, storage_uri: str) -> dict[str, str]:
    rate_limit = {"requestsPerMinute": per_minute}
    keys = {KEY: {"name": "Connector", "role": "user", "rateLimit": rate_limit}}
    return {"MCP_API_KEYS": json.dumps(keys), "RATELIMIT_STORAGE_URI": storage_uri}


def hit(url: str) -> int:
    status, headers = get(f"{url}/data", {"X-API-Key": KEY})
    if status == 429:
        assert 0 < int(headers["Retry-After"]) <= 60
    return status


def test_four_workers_count_exactly_through_redis(
    redis_server: RedisServer, start_gunicorn: Any
) -> None:
    limit = 10
    server = start_gunicorn(4, environment(limit, redis_server.url))
    with ThreadPoolExecutor(max_workers=3 * limit) as pool:
        statuses = Counter(pool.map(lambda _: hit(server.url), range(3 * limit)))
    assert statuses == {200: limit, 429: 2 * limit}


def test_two_servers_on_one_redis_enforce_one_global_limit(
    redis_server: RedisServer, start_gunicorn: Any
) -> None:
    limit = 6
    env = environment(limit, redis_server.url)
    first, second = start_gunicorn(2, env), start_gunicorn(2, env)
    urls = [first.url, second.url] * limit
    with ThreadPoolExecutor(max_workers=len(urls)) as pool:
        statuses = list(pool.map(hit, urls))
    assert Counter(statuses) == {200: limit, 429: limit}
    # Each server on its own would still allow requests; the shared count refuses at both.
    assert [hit(first.url), hit(second.url)] == [429, 429]


@pytest.mark.parametrize("extra_args", [(), ("--preload",)], ids=["per-worker", "preload"])
def test_memory_storage_under_several_workers_warns(
    start_gunicorn: Any, extra_args: tuple[str, ...]
) -> None:
    server = start_gunicorn(2, environment(5, "memory://"), extra_args)
    hit(server.url)
    server.stop()
    assert "server with 2 worker processes; each worker counts separately" in server.output()


def test_memory_storage_under_one_worker_does_not_warn(start_gunicorn: Any) -> None:
    server = start_gunicorn(1, environment(5, "memory://"))
    hit(server.url)
    server.stop()
    assert "each worker counts separately" not in server.output()
