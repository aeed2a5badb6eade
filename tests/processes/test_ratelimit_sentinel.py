"""Shared limits through Redis Sentinel under gunicorn: exact counts, two hosts, and the
primary killed mid-load (the in-memory fallback or 503s, then the promoted replica)."""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from support.servers import RedisSentinelDeployment, get

pytest.importorskip("gunicorn")
pytest.importorskip("redis")

KEY = "chatgpt-connector-key"
LOAD_KEY = "load-key"  # a limit the load never reaches
LIMITED_KEY = "limited-key"  # used up before the failover: what it gets meanwhile is over-admission
LIMITED = 5


def environment(storage_uri: str, per_minute: int = 10, **extra: str) -> dict[str, str]:
    def entry(name: str, rate_limit: dict[str, int]) -> dict[str, Any]:
        return {"name": name, "role": "user", "rateLimit": rate_limit}

    keys = {
        KEY: entry("Connector", {"requestsPerMinute": per_minute}),
        LOAD_KEY: entry("Load", {"requestsPerHour": 1_000_000}),
        LIMITED_KEY: entry("Limited", {"requestsPerHour": LIMITED}),
    }
    return {
        "MCP_API_KEYS": json.dumps(keys),
        "RATELIMIT_STORAGE_URI": storage_uri,
        **extra,
    }


def hit(url: str, key: str = KEY) -> int:
    return get(f"{url}/data", {"X-API-Key": key})[0]


def counter(deployment: RedisSentinelDeployment, port: int, amount: int) -> int:
    """A key's hour-window count on the server at ``port`` (its limit names it)."""
    client = deployment.client(port)
    keys = client.keys(f"*mcp-auth/key/*/{amount}/1/hour")
    return sum(int(client.get(k) or 0) for k in keys)


def test_four_workers_count_exactly_through_sentinel(
    sentinel_deployment: RedisSentinelDeployment, start_gunicorn: Any
) -> None:
    limit = 10
    server = start_gunicorn(4, environment(sentinel_deployment.url, limit))
    with ThreadPoolExecutor(max_workers=3 * limit) as pool:
        statuses = Counter(pool.map(lambda _: hit(server.url), range(3 * limit)))
    assert statuses == {200: limit, 429: 2 * limit}
    # Counted on the primary, replicated to the replica.
    primary = sentinel_deployment.client(sentinel_deployment.primary_port)
    (window,) = primary.keys("*mcp-auth/key/*/10/1/minute")
    assert int(primary.get(window)) == 3 * limit


def test_two_servers_on_one_sentinel_enforce_one_global_limit(
    sentinel_deployment: RedisSentinelDeployment, start_gunicorn: Any
) -> None:
    """Two gunicorn instances, stand-ins for two hosts, count one budget."""
    limit = 6
    env = environment(sentinel_deployment.url, limit)
    first, second = start_gunicorn(2, env), start_gunicorn(2, env)
    urls = [first.url, second.url] * limit
    with ThreadPoolExecutor(max_workers=len(urls)) as pool:
        statuses = list(pool.map(hit, urls))
    assert Counter(statuses) == {200: limit, 429: limit}
    assert [hit(first.url), hit(second.url)] == [429, 429]


class Load:
    """Threads sending requests in a loop, each result kept as (time, status)."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.results: dict[str, list[tuple[float, int]]] = {}
        self.threads: list[threading.Thread] = []

    def add(self, name: str, url: str, key: str, threads: int) -> None:
        results = self.results.setdefault(name, [])

        def loop() -> None:
            deadline = time.monotonic() + 60  # bounded whatever the test does
            while not self.stop.is_set() and time.monotonic() < deadline:
                status = hit(url, key)
                results.append((time.monotonic(), status))
                time.sleep(0.01)

        self.threads += [threading.Thread(target=loop, daemon=True) for _ in range(threads)]

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=40)


def test_primary_killed_mid_load_fallback_or_503_then_the_promoted_replica(
    sentinel_deployment: RedisSentinelDeployment, start_gunicorn: Any
) -> None:
    deployment = sentinel_deployment
    fail_open = start_gunicorn(4, environment(deployment.url))
    fail_closed = start_gunicorn(2, environment(deployment.url, MCP_RATELIMIT_FAIL_CLOSED="true"))
    # LIMITED_KEY's hour is used up in Redis before the failover.
    assert Counter(hit(fail_open.url, LIMITED_KEY) for _ in range(2 * LIMITED)) == {
        200: LIMITED,
        429: LIMITED,
    }

    load = Load()
    load.add("open", fail_open.url, LOAD_KEY, threads=6)
    load.add("closed", fail_closed.url, LOAD_KEY, threads=2)
    load.add("limited", fail_open.url, LIMITED_KEY, threads=1)
    with load:
        time.sleep(1.0)
        killed_at = time.monotonic()
        deployment.kill_primary()
        deployment.wait_for_failover(timeout=30)
        promoted_at = time.monotonic()
        # Until every worker is back on Redis (they retry once a second) and a bit more.
        time.sleep(4.0)
    ended_at = time.monotonic()

    open_statuses = Counter(status for _, status in load.results["open"])
    closed = load.results["closed"]
    limited = load.results["limited"]
    refused = [t for t, status in closed if status == 503]
    over_admitted = sum(1 for t, status in limited if status == 200)
    print(
        f"\nfailover: sentinels promoted the replica {promoted_at - killed_at:.1f} s after "
        f"the kill; fail-open statuses {dict(open_statuses)}; fail-closed 503s "
        f"{len(refused)} of {len(closed)}, from {min(refused) - killed_at:.1f} s to "
        f"{max(refused) - killed_at:.1f} s after the kill; {LIMITED_KEY} admitted "
        f"{over_admitted} times beyond its limit"
    )

    # Fail open: not one 5xx, the in-memory fallback covered the gap.
    assert open_statuses and all(status == 200 for status in open_statuses)
    # Fail closed: 503s during the gap only, 200s before and after it.
    assert refused and all(killed_at <= t <= ended_at for t in refused)
    assert all(status == 200 for t, status in closed if t > max(refused))
    assert {status for _, status in closed} == {200, 503}
    # Over-admission: at most each fail-open worker's own memory count meanwhile.
    assert over_admitted <= 4 * LIMITED

    # One error line per outage per worker that saw it, and each came back.
    fail_open.stop()
    fail_closed.stop()
    for server, workers in ((fail_open, 4), (fail_closed, 2)):
        output = server.output()
        errors = output.count("rate-limit storage unavailable")
        back = re.findall(r"reachable again after ([0-9.]+) s", output)
        assert 1 <= errors <= workers, output
        assert len(back) == errors, output
        print(f"worker outages ({'closed' if server is fail_closed else 'open'}): {back} s")

    # The workers count in the promoted replica: it holds LOAD_KEY's count and refuses
    # LIMITED_KEY again (its count survived: replication).
    promoted = deployment.replica_port
    assert counter(deployment, promoted, 1_000_000) > 0
    assert counter(deployment, promoted, LIMITED) >= LIMITED


def test_after_a_failover_the_workers_count_in_the_new_primary(
    sentinel_deployment: RedisSentinelDeployment, start_gunicorn: Any
) -> None:
    """No restart: the master_for client asks the sentinels again, the scripts are loaded
    on the new primary (NOSCRIPT answered with SCRIPT LOAD), and counting is exact."""
    deployment = sentinel_deployment
    server = start_gunicorn(4, environment(deployment.url))
    assert {hit(server.url, LOAD_KEY) for _ in range(8)} == {200}
    promoted = deployment.client(deployment.replica_port)
    before = counter(deployment, deployment.replica_port, 1_000_000)
    assert before == 8  # replicated
    deployment.kill_primary()
    deployment.wait_for_failover(timeout=30)
    time.sleep(1.2)  # every worker's retry interval has passed
    for _ in range(20):  # each worker's first request may still have counted in memory
        hit(server.url, LOAD_KEY)
    start = counter(deployment, deployment.replica_port, 1_000_000)
    with ThreadPoolExecutor(max_workers=10) as pool:
        assert set(pool.map(lambda _: hit(server.url, LOAD_KEY), range(40))) == {200}
    assert counter(deployment, deployment.replica_port, 1_000_000) == start + 40
    stats = promoted.info("commandstats")
    assert stats["cmdstat_evalsha"]["calls"] >= 40
    assert stats.get("cmdstat_script|load", {}).get("calls", 0) >= 1
