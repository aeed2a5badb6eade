"""Round trips per request on each Redis deployment, as Redis itself sees them (MONITOR).

Plain Redis, Sentinel and Cluster, the same three requests each: a key's request with
both windows and the failed-attempt gate, a refused credential, an anonymous request.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from support.servers import (
    RedisClusterDeployment,
    RedisMonitor,
    RedisSentinelDeployment,
    RedisServer,
    require_executable,
)

from flask_mcp_auth import MCPAuth

pytest.importorskip("redis")

KEY = "chatgpt-connector-key"
REQUESTS = 5


def build(storage_uri: str) -> Flask:
    app = Flask(__name__)
    app.config["TESTING"] = True
    rate_limit = {"requestsPerMinute": 100, "requestsPerHour": 1000}
    app.config["MCP_API_KEYS"] = json.dumps(
        {KEY: {"name": "Connector", "role": "user", "rateLimit": rate_limit}}
    )
    app.config["RATELIMIT_STORAGE_URI"] = storage_uri
    app.config["MCP_ANONYMOUS_RATE_LIMIT"] = "100/minute"
    MCPAuth(app)

    @app.get("/data")
    def data() -> dict[str, bool]:
        return {"ok": True}

    return app


def commands_per_request(app: Flask, ports: list[int], tmp_path: Path) -> dict[str, Any]:
    """For each request kind: the commands Redis saw per request, and on how many nodes."""
    client = app.test_client()
    kinds = {
        "key": lambda n: client.get("/data", headers={"X-API-Key": KEY}),
        "failed attempt": lambda n: client.get("/data", headers={"X-API-Key": f"guess-{n}"}),
        "anonymous": lambda n: client.get("/data"),
    }
    expected = {"key": 200, "failed attempt": 401, "anonymous": 200}
    for kind, send in kinds.items():  # connections opened, scripts loaded on every node
        assert send(-1).status_code == expected[kind]
    figures: dict[str, Any] = {}
    for kind, send in kinds.items():
        monitor = RedisMonitor(require_executable("redis-cli"), ports, tmp_path).start()
        try:
            statuses = {send(n).status_code for n in range(REQUESTS)}
        finally:
            seen = monitor.stop()
        assert statuses == {expected[kind]}
        commands = Counter(command[1] for port in ports for command in seen[port])
        nodes = sum(1 for port in ports if seen[port])
        figures[kind] = ({name: count / REQUESTS for name, count in commands.items()}, nodes)
    return figures


def test_plain_redis_one_script_per_request(redis_server: RedisServer, tmp_path: Path) -> None:
    figures = commands_per_request(build(redis_server.url), [redis_server.port], tmp_path)
    assert figures == {
        "key": ({"EVALSHA": 1}, 1),
        "failed attempt": ({"EVALSHA": 1}, 1),
        "anonymous": ({"EVALSHA": 1}, 1),
    }


def test_sentinel_one_script_per_request_on_the_primary(
    sentinel_deployment: RedisSentinelDeployment, tmp_path: Path
) -> None:
    app = build(sentinel_deployment.url)
    # (The replica's MONITOR would show the primary's replication stream, not requests.)
    figures = commands_per_request(app, [sentinel_deployment.primary_port], tmp_path)
    assert figures == {
        "key": ({"EVALSHA": 1}, 1),
        "failed attempt": ({"EVALSHA": 1}, 1),
        "anonymous": ({"EVALSHA": 1}, 1),
    }


def test_cluster_one_round_trip_per_request(
    redis_cluster: RedisClusterDeployment, tmp_path: Path
) -> None:
    figures = commands_per_request(build(redis_cluster.url), redis_cluster.ports, tmp_path)
    # A key's request: its windows' script on the key's node and the gate's GET on the
    # address's node, both written before either reply is read (one round trip; the
    # same node when the two slots happen to live together).  The others: one script.
    key_commands, key_nodes = figures.pop("key")
    assert key_commands == {"EVALSHA": 1, "GET": 1}
    assert key_nodes in (1, 2)
    assert figures == {"failed attempt": ({"EVALSHA": 1}, 1), "anonymous": ({"EVALSHA": 1}, 1)}
