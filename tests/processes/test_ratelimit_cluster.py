"""Shared limits on a real three-primary Redis Cluster: hash-tagged scopes, keys spread
over the nodes, the lockout across two slots, exact counts under gunicorn."""

from __future__ import annotations

import json
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from flask import Flask
from support.servers import RedisClusterDeployment, get

from flask_mcp_auth import MCPAuth

pytest.importorskip("redis")

KEYS = [f"cluster-key-{n:02d}" for n in range(20)]


def key_entries(per_minute: int) -> str:
    rate_limit = {"requestsPerMinute": per_minute}
    return json.dumps({key: {"name": key, "role": "user", "rateLimit": rate_limit} for key in KEYS})


def build(storage_uri: str, per_minute: int = 5, **config: Any) -> Flask:
    app = Flask(__name__)
    app.config["TESTING"] = True
    app.config["MCP_API_KEYS"] = key_entries(per_minute)
    app.config["RATELIMIT_STORAGE_URI"] = storage_uri
    app.config.update(config)
    MCPAuth(app)

    @app.get("/data")
    def data() -> dict[str, bool]:
        return {"ok": True}

    return app


def call(app: Flask, key: str | None, addr: str = "127.0.0.1") -> Any:
    headers = {"X-API-Key": key} if key is not None else {}
    return app.test_client().get("/data", headers=headers, environ_base={"REMOTE_ADDR": addr})


def stored_keys(cluster: RedisClusterDeployment) -> dict[int, list[str]]:
    return {port: [k.decode() for k in cluster.client(port).keys("*")] for port in cluster.ports}


def test_keys_spread_over_the_nodes_each_scope_in_one_slot(
    redis_cluster: RedisClusterDeployment,
) -> None:
    app = build(redis_cluster.url, MCP_ANONYMOUS_RATE_LIMIT="5/minute")
    for key in KEYS:
        assert call(app, key).status_code == 200
    assert call(app, None).status_code == 200
    assert call(app, "wrong-key").status_code == 401
    stored = stored_keys(redis_cluster)
    windows = {port: [k for k in keys if "/mcp-auth/key/" in k] for port, keys in stored.items()}
    # 20 keys' windows land on more than one node: the fingerprint is the hash tag.
    assert sum(len(w) for w in windows.values()) == len(KEYS)
    assert len([port for port, w in windows.items() if w]) > 1
    everything = [k for keys in stored.values() for k in keys]
    assert all("/mcp-auth/key/{" in k for k in everything if "/mcp-auth/key/" in k)
    # The address's failure counter, its mark and its anonymous window share one tag.
    address_keys = [k for k in everything if "{127.0.0.1}" in k]
    assert len(address_keys) == 3
    assert len({port for port, keys in stored.items() for k in keys if k in address_keys}) == 1
    # No key id and no presented value in any stored key.
    assert not [k for k in everything if "cluster-key" in k or "wrong-key" in k]


def test_a_key_with_two_windows_counts_both_in_one_slot(
    redis_cluster: RedisClusterDeployment,
) -> None:
    app = Flask(__name__)
    rate_limit = {"requestsPerMinute": 3, "requestsPerHour": 4}
    app.config["MCP_API_KEYS"] = json.dumps(
        {KEYS[0]: {"name": "two", "role": "user", "rateLimit": rate_limit}}
    )
    app.config["RATELIMIT_STORAGE_URI"] = redis_cluster.url
    MCPAuth(app)
    statuses = [
        app.test_client().get("/", headers={"X-API-Key": KEYS[0]}).status_code for _ in range(5)
    ]
    assert statuses == [404, 404, 404, 429, 429]
    counts = {
        k.rsplit("/", 1)[1]: int(redis_cluster.client(port).get(k))
        for port, keys in stored_keys(redis_cluster).items()
        for k in keys
        if "/key/" in k
    }
    # The minute window refused the last two; the hour window kept its 3.
    assert counts == {"minute": 5, "hour": 3}
    nodes = {port for port, keys in stored_keys(redis_cluster).items() for k in keys}
    assert len(nodes) == 1  # one slot: one script counted both


def test_a_locked_out_address_is_refused_and_its_requests_are_not_counted(
    redis_cluster: RedisClusterDeployment,
) -> None:
    app = build(redis_cluster.url, MCP_AUTH_FAILURE_LIMIT="3/minute")
    assert call(app, KEYS[0]).status_code == 200
    assert [call(app, f"guess-{n}").status_code for n in range(4)] == [401, 401, 401, 429]
    refused = call(app, KEYS[0])
    assert refused.status_code == 429
    assert refused.get_json()["error"] == "too_many_failed_attempts"
    assert 0 < int(refused.headers["Retry-After"]) <= 60
    # The gate and the key's windows are in different slots: the refused request's hit
    # was given back, so the key still has 4 of its 5 left, from another address.
    statuses = [call(app, KEYS[0], "10.1.1.1").status_code for _ in range(5)]
    assert statuses == [200, 200, 200, 200, 429]


def hit(url: str, key: str) -> int:
    return get(f"{url}/data", {"X-API-Key": key})[0]


def test_four_workers_count_twenty_keys_exactly(
    redis_cluster: RedisClusterDeployment, start_gunicorn: Any
) -> None:
    pytest.importorskip("gunicorn")
    limit = 5
    env = {"MCP_API_KEYS": key_entries(limit), "RATELIMIT_STORAGE_URI": redis_cluster.url}
    server = start_gunicorn(4, env)
    requests = [key for key in KEYS for _ in range(3 * limit)]
    with ThreadPoolExecutor(max_workers=30) as pool:
        results = list(pool.map(lambda key: (key, hit(server.url, key)), requests))
    per_key = {key: Counter(status for k, status in results if k == key) for key in KEYS}
    assert per_key == {key: {200: limit, 429: 2 * limit} for key in KEYS}
    stored = stored_keys(redis_cluster)
    counts = [
        int(redis_cluster.client(port).get(k))
        for port, keys in stored.items()
        for k in keys
        if "/mcp-auth/key/" in k
    ]
    assert counts == [3 * limit] * len(KEYS)
    assert len([port for port, keys in stored.items() if keys]) > 1


def test_an_unreachable_cluster_stops_start_up_with_a_config_error() -> None:
    """The cluster client learns the slot map when it is built: no node, no start."""
    from support.servers import free_port

    from flask_mcp_auth import ConfigError

    with pytest.raises(ConfigError, match="unreachable at start-up") as error:
        build(f"redis+cluster://:hunter2@127.0.0.1:{free_port()}")
    assert "hunter2" not in str(error.value)
