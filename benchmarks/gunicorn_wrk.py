"""Throughput: gunicorn with 2 sync workers per stack on loopback, loaded by ``wrk``.

Every stack is started before the first measurement and warmed for a second;
rounds are interleaved across stacks in rotating order and the best round per
stack counts.  A private ``redis-server`` on a free port serves the Redis rows,
whose round trips per request are counted with ``MONITOR``.  The floor row is bare
Flask plus one ``EVALSHA`` of a trivial script per request: what exact shared
counting costs at the least.  Each round also reads the workers' CPU time per
request (``worker_cpu.py``), which attributes the cost of a request inside the
workers rather than in a tight loop.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import stacks
import worker_cpu
from common import (
    BENCH_DIR,
    KEY_HEADERS,
    background_process,
    free_port,
    http_status,
    rotated,
    wait_until,
)

REDIS_STACKS = (
    "floor_redis",
    "mcp_full_redis",
    "floor_redis_one",
    "mcp_full_redis_one",
    "hand_redis",
)
GUNICORN_STACKS = ("bare", "mcp_full_memory", *REDIS_STACKS)
#: The Redis client options of the ``_one`` rows: one connection per worker, not a pool.
ONE_CONNECTION = json.dumps({"single_connection_client": True})
WORKERS = 2


@dataclass
class Throughput:
    #: stack name -> best requests per second
    rps: dict[str, float] = field(default_factory=dict)
    #: stack name -> why it was not measured
    skipped: dict[str, str] = field(default_factory=dict)
    #: stack name -> Redis round trips per request (stacks with Redis storage)
    round_trips: dict[str, float] = field(default_factory=dict)
    #: stack name -> (application, whole worker process) CPU seconds per request, best round
    cpu: dict[str, tuple[float, float]] = field(default_factory=dict)
    note: str = ""


def skipped_throughput(note: str) -> Throughput:
    """No gunicorn stack measured, each for the reason ``note``."""
    return Throughput(skipped=dict.fromkeys(GUNICORN_STACKS, note), note=note)


@contextlib.contextmanager
def redis_server(workdir: Path) -> Iterator[str]:
    port = free_port()
    command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    command += ["--appendonly", "no", "--dir", str(workdir)]
    with background_process(command, workdir / "redis.log"):
        import redis

        client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=1)

        def answers() -> bool:
            try:
                return bool(client.ping())
            except redis.RedisError:
                return False

        wait_until(answers, 10, "redis-server")
        client.close()
        yield f"redis://127.0.0.1:{port}"


@contextlib.contextmanager
def gunicorn_server(name: str, app_spec: str, workdir: Path) -> Iterator[int]:
    port = free_port()
    command = [sys.executable, "-m", "gunicorn", "--workers", str(WORKERS)]
    command += ["--bind", f"127.0.0.1:{port}"]
    command += ["--pythonpath", str(BENCH_DIR), "--log-level", "warning", app_spec]
    log_path = workdir / f"gunicorn-{name}.log"
    with background_process(command, log_path, cwd=workdir) as process:

        def serving() -> bool:
            if process.poll() is not None:
                tail = log_path.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"gunicorn for {name} exited:\n{tail}")
            return http_status(port, KEY_HEADERS) == 200

        wait_until(serving, 60, f"gunicorn serving {name}")
        yield port


def run_wrk(port: int, seconds: int, connections: int) -> float:
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s"]
    command += [
        "-H",
        f"{stacks.HEADER}: {stacks.API_KEY}",
        f"http://127.0.0.1:{port}{stacks.ROUTE}",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 30, check=True)
    if "Non-2xx" in done.stdout or "Socket errors" in done.stdout:
        raise RuntimeError(f"wrk saw failed requests; the measurement is invalid:\n{done.stdout}")
    match = re.search(r"Requests/sec:\s+([\d.]+)", done.stdout)
    if match is None:
        raise RuntimeError(f"could not read wrk's output:\n{done.stdout}")
    return float(match.group(1))


def missing_tools() -> list[str]:
    missing = [tool for tool in ("wrk",) if shutil.which(tool) is None]
    try:
        importlib.metadata.version("gunicorn")
    except importlib.metadata.PackageNotFoundError:
        missing.append("gunicorn")
    return missing


def measure_throughput(workdir: Path, seconds: int, rounds: int, connections: int) -> Throughput:
    missing = missing_tools()
    if missing:
        return skipped_throughput(f"skipped: {' and '.join(missing)} not installed")
    result = Throughput()
    specs: dict[str, str] = {"bare": 'stacks:wsgi_app("bare")'}
    redis_note = "" if shutil.which("redis-server") else "skipped: redis-server not installed"
    audit = workdir / "gunicorn-mcp-audit.log"
    specs["mcp_full_memory"] = f'stacks:wsgi_app("mcp_full", "{audit}")'
    httpauth_note = stacks.httpauth_missing()
    if httpauth_note:
        result.skipped["hand_redis"] = httpauth_note

    with contextlib.ExitStack() as cleanup:
        if redis_note:
            for name in REDIS_STACKS:
                result.skipped.setdefault(name, redis_note)
        else:
            redis_uri = cleanup.enter_context(redis_server(workdir))
            specs["floor_redis"] = f'stacks:wsgi_app("floor", "", "{redis_uri}")'
            audit = workdir / "gunicorn-mcp-redis-audit.log"
            specs["mcp_full_redis"] = f'stacks:wsgi_app("mcp_full", "{audit}", "{redis_uri}")'
            one = f"{redis_uri!r}, {ONE_CONNECTION!r}"  # gunicorn reads the arguments as literals
            specs["floor_redis_one"] = f'stacks:wsgi_app("floor", "", {one})'
            audit = workdir / "gunicorn-mcp-redis-one-audit.log"
            specs["mcp_full_redis_one"] = f'stacks:wsgi_app("mcp_full", "{audit}", {one})'
            if not httpauth_note:
                audit = workdir / "gunicorn-hand-audit.log"
                specs["hand_redis"] = f'stacks:wsgi_app("hand", "{audit}", "{redis_uri}")'
        ports = {
            name: cleanup.enter_context(gunicorn_server(name, spec, workdir))
            for name, spec in specs.items()
        }
        for port in ports.values():  # warm every worker before anything counts
            run_wrk(port, 1, connections)
        samples: dict[str, list[float]] = {name: [] for name in ports}
        cpu: dict[str, list[tuple[float, float]]] = {name: [] for name in ports}
        for round_number in range(rounds):
            for name in rotated(list(ports), round_number):
                before = worker_cpu.snapshot(ports[name], WORKERS)
                samples[name].append(run_wrk(ports[name], seconds, connections))
                app_cpu, process_cpu, _ = worker_cpu.snapshot(
                    ports[name], WORKERS
                ).per_request_since(before)
                cpu[name].append((app_cpu, process_cpu))
        result.rps = {name: max(values) for name, values in samples.items()}
        result.cpu = {name: min(values) for name, values in cpu.items()}
        if not redis_note:
            for name in REDIS_STACKS:
                if name in ports:
                    result.round_trips[name] = redis_round_trips_per_request(redis_uri, ports[name])
            for name in ("floor_redis", "floor_redis_one"):
                floor = result.round_trips.get(name)
                if floor is not None and round(floor) != 1:
                    raise RuntimeError(f"{name} made {floor:.2f} Redis round trips a request")
    return result


def redis_round_trips_per_request(redis_uri: str, port: int, requests: int = 100) -> float:
    """Commands one stack sends Redis per request (its storage round trips), seen through
    MONITOR; commands a Lua script runs inside Redis are not round trips and not counted."""
    import redis

    sentinel = "bench-round-trips-done"
    client = redis.Redis.from_url(redis_uri, socket_timeout=10)
    try:
        with client.monitor() as monitor:
            for _ in range(requests):
                if http_status(port, KEY_HEADERS) != 200:
                    raise RuntimeError("a request failed while counting Redis round trips")
            client.echo(sentinel)
            round_trips = 0
            for _ in range(requests * 100):  # bounded: far more than any stack sends
                event = monitor.next_command()
                if sentinel in event["command"]:
                    return round_trips / requests
                if event["client_type"] != "lua":
                    round_trips += 1
        raise RuntimeError("Redis MONITOR never showed the end of the measurement")
    finally:
        client.close()
