"""Rate limits under real gunicorn processes sharing one Redis."""

from __future__ import annotations

import json
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from support.servers import RedisMonitor, RedisServer, get, require_executable

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


ONE_CONNECTION = "ratelimit_app:create_app('{\"single_connection_client\": true}')"


@pytest.mark.parametrize("extra_args", [(), ("--preload",)], ids=["per-worker", "preload"])
def test_one_connection_per_worker_even_when_the_app_is_built_before_the_fork(
    redis_server: RedisServer, start_gunicorn: Any, tmp_path: Any, extra_args: tuple[str, ...]
) -> None:
    """single_connection_client (the set-up docs/rate-limiting.md recommends): each worker
    counts on a connection of its own, never on one its parent opened (with --preload the
    app, and redis-py's connection, exist before gunicorn forks)."""
    server = start_gunicorn(2, environment(1000, redis_server.url), extra_args, ONE_CONNECTION)
    monitor = RedisMonitor(require_executable("redis-cli"), [redis_server.port], tmp_path)
    monitor.start()
    answered: set[int] = set()
    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            for _ in range(50):  # rounds of 8 at once, until both workers have answered
                answered.update(pool.map(lambda _: worker_pid(server.url), range(8)))
                if len(answered) == 2:
                    break
    finally:
        commands = monitor.stop()[redis_server.port]
    assert len(answered) == 2
    # Had the workers shared their parent's socket, Redis would see one client counting.
    counting = {address for address, command, *_ in commands if command == "EVALSHA"}
    assert len(counting) == 2, commands


def worker_pid(url: str) -> int:
    """The process id of the worker that answered a counted request with the key."""
    request = urllib.request.Request(f"{url}/pid", headers={"X-API-Key": KEY})
    with urllib.request.urlopen(request, timeout=30) as reply:
        return int(json.load(reply)["pid"])


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
