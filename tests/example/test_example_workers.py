"""How many processes ``gunicorn -c example_app/gunicorn.conf.py`` runs, and that a key's
rate limit is counted exactly either way: one worker with threads on memory://, several
workers once RATELIMIT_STORAGE_URI names a shared storage (Redis)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from support.example import DEMO_DOTENV, example_gunicorn, gunicorn_settings
from support.servers import GunicornServer, RedisServer, child_environment

pytest.importorskip("gunicorn")

LIMIT = 5
REQUESTS = 4 * LIMIT
KEY = "limited-example-key"
KEYS = {
    KEY: {
        "name": "Limited",
        "role": "user",
        "permissions": ["read"],
        "rateLimit": {"requestsPerMinute": LIMIT},
    }
}
PING = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "ping"}).encode()
#: What gunicorn logs once per worker process it starts.
BOOTING = "Booting worker with pid"
#: The start of the extension's memory-under-workers warning.
MEMORY_WARNING = "rate limits use memory:// storage under a server with"


def environment(instance: Path, **extra: str) -> dict[str, str]:
    """The user's own keys exported over the demo file; nothing about workers."""
    return {
        **child_environment(),
        "MCP_EXAMPLE_DOTENV": str(DEMO_DOTENV),
        "MCP_EXAMPLE_INSTANCE_PATH": str(instance),
        "MCP_API_KEYS": json.dumps(KEYS),
        **extra,
    }


def ping(url: str) -> int:
    request = urllib.request.Request(
        url, data=PING, headers={"X-API-Key": KEY, "Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            return int(reply.status)
    except urllib.error.HTTPError as error:
        return error.code


def burst(server: GunicornServer) -> Counter[int]:
    """REQUESTS pings at once, so that every worker (and thread) gets some."""
    with ThreadPoolExecutor(max_workers=REQUESTS) as pool:
        return Counter(pool.map(lambda _: ping(server.mcp_url), range(REQUESTS)))


def serve(tmp_path: Path, env: dict[str, str]) -> GunicornServer:
    return example_gunicorn(tmp_path, env).start()


def test_the_default_config_runs_one_worker_and_counts_exactly(tmp_path: Path) -> None:
    server = serve(tmp_path, environment(tmp_path / "instance"))
    try:
        statuses = burst(server)
    finally:
        server.stop()
    output = server.output()
    assert statuses == {200: LIMIT, 429: REQUESTS - LIMIT}, output
    assert output.count(BOOTING) == 1, output
    assert "Using worker: gthread" in output
    assert MEMORY_WARNING not in output


def test_with_redis_the_default_config_runs_several_workers_and_counts_exactly(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    env = environment(tmp_path / "instance", RATELIMIT_STORAGE_URI=redis_server.url)
    server = serve(tmp_path, env)
    try:
        statuses = burst(server)
    finally:
        server.stop()
    output = server.output()
    assert statuses == {200: LIMIT, 429: REQUESTS - LIMIT}, output
    assert output.count(BOOTING) == 2, output
    assert MEMORY_WARNING not in output


def test_explicit_workers_on_memory_storage_win_and_warn(tmp_path: Path) -> None:
    env = environment(tmp_path / "instance", MCP_EXAMPLE_WORKERS="2")
    server = serve(tmp_path, env)
    server.stop()
    output = server.output()
    assert output.count(BOOTING) == 2, output
    assert f"{MEMORY_WARNING} 2 worker processes" in output
    assert "RATELIMIT_STORAGE_URI=redis://" in output


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        ({}, {"workers": 1, "threads": 8, "worker_class": "gthread"}),
        ({"RATELIMIT_STORAGE_URI": ""}, {"workers": 1, "threads": 8, "worker_class": "gthread"}),
        (
            {"RATELIMIT_STORAGE_URI": "memory://"},
            {"workers": 1, "threads": 8, "worker_class": "gthread"},
        ),
        (
            {"RATELIMIT_STORAGE_URI": "redis://127.0.0.1:6379"},
            {"workers": 2, "threads": 8, "worker_class": "gthread"},
        ),
        (
            {"RATELIMIT_STORAGE_URI": "redis://127.0.0.1:6379", "MCP_EXAMPLE_WORKERS": "4"},
            {"workers": 4, "threads": 8, "worker_class": "gthread"},
        ),
        ({"MCP_EXAMPLE_WORKERS": "3"}, {"workers": 3, "threads": 8, "worker_class": "gthread"}),
        ({"MCP_EXAMPLE_THREADS": "2"}, {"workers": 1, "threads": 2, "worker_class": "gthread"}),
    ],
    ids=["unset", "empty", "memory", "redis", "redis-and-workers", "workers", "threads"],
)
def test_workers_follow_the_rate_limit_storage(
    variables: dict[str, str], expected: dict[str, object]
) -> None:
    env = {**child_environment(variables), "MCP_EXAMPLE_DOTENV": str(DEMO_DOTENV)}
    assert gunicorn_settings(env) == expected


def test_a_redis_storage_named_in_the_dotenv_file_counts(tmp_path: Path) -> None:
    # gunicorn.conf.py loads the dotenv file before it chooses the worker count.
    dotenv = tmp_path / ".env"
    dotenv.write_text(DEMO_DOTENV.read_text() + "\nRATELIMIT_STORAGE_URI=redis://127.0.0.1:6379\n")
    env = {**child_environment(), "MCP_EXAMPLE_DOTENV": str(dotenv)}
    assert gunicorn_settings(env)["workers"] == 2
