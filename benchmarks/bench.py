"""What flask-mcp-auth costs per request, against the stacks users assemble by hand.

Run with ``tox -e bench`` (or ``python benchmarks/bench.py`` in an environment
with Flask-HTTPAuth and gunicorn installed).  Prints one table and writes it,
with a description of the machine, to ``docs/benchmarks.md``.

How the numbers are made (see docs/benchmarks.md for the reasoning):

* In process: each stack's WSGI callable is called directly with a prepared
  environ and its body consumed.  Every stack runs ``--iterations`` requests
  per round, round after round, the order rotating each round so that drift of
  the machine's speed touches every stack alike.  Garbage collection is off
  inside the timed loops.  Per-request cost is the minimum over the rounds,
  reported as a ratio to bare Flask of the same run; a second bare-Flask
  measurement is a control that shows how noisy the run was.
* Scaling: the full configuration with 10 and with ``--keys`` keys, the time to
  load that many keys, and the resident memory of a fresh process holding them.
* Throughput: gunicorn with 2 sync workers per stack on loopback, loaded by
  ``wrk``; rounds interleaved across stacks, best round per stack.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import gc
import importlib.metadata
import io
import json
import os
import platform
import pstats
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from werkzeug.test import EnvironBuilder

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
sys.path.insert(0, str(BENCH_DIR))

import stacks  # noqa: E402  (the directory is not a package; gunicorn imports it the same way)

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Any]

# -- targets of issue 8 (ratios) ------------------------------------------------------
AUTH_ONLY_TARGET = 1.15
FULL_TARGET = 1.5
MANY_KEYS_TARGET = 1.05
GUNICORN_MEMORY_TARGET = 0.85
GUNICORN_REDIS_TARGET = 0.70


# -- in-process measurement -------------------------------------------------------------


def _discard_start_response(
    status: str, headers: list[tuple[str, str]], exc_info: Any = None
) -> Any:
    return None


def make_environ(headers: dict[str, str]) -> dict[str, Any]:
    builder = EnvironBuilder(path=stacks.ROUTE, method="GET", headers=headers)
    try:
        return builder.get_environ()
    finally:
        builder.close()


def call(app: WSGIApp, environ: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    """One request outside any timing: status, headers and body."""
    captured: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        captured["status"] = int(status.split()[0])
        captured["headers"] = dict(headers)

    body = app(dict(environ), start_response)
    try:
        data = b"".join(body)
    finally:
        if hasattr(body, "close"):
            body.close()
    return captured["status"], captured["headers"], data


#: The clock of the timed loops: "cpu" (the process's CPU time, user + system, all threads)
#: by default, so time spent descheduled on a shared machine does not count; "wall" for
#: elapsed time. All threads: limits' memory storage expires counters in a timer thread.
CLOCKS: dict[str, Callable[[], float]] = {"cpu": time.process_time, "wall": time.perf_counter}
clock = CLOCKS["cpu"]


def time_requests(app: WSGIApp, environ: dict[str, Any], iterations: int) -> float:
    """Seconds per request over ``iterations`` calls, garbage collection off."""
    start_response = _discard_start_response
    copy_environ = environ.copy
    gc.collect()
    gc.disable()
    try:
        started = clock()
        for _ in range(iterations):
            body = app(copy_environ(), start_response)
            for _chunk in body:
                pass
            body.close()
        elapsed = clock() - started
    finally:
        gc.enable()
    return elapsed / iterations


@dataclass
class Stack:
    """One row of the in-process measurement."""

    name: str
    label: str
    build: Callable[[], Any]
    #: The issue's reference ratio for this row, where it gives one.
    reference: str = ""
    #: Checks run once before timing; they raise if the stack does not do its job.
    checks: tuple[Callable[[Any, dict[str, Any]], None], ...] = ()
    unavailable: str = ""
    app: Any = None
    environ: dict[str, Any] = field(default_factory=dict)
    samples: list[float] = field(default_factory=list)

    @property
    def best(self) -> float:
        return min(self.samples)


def expect_ok(app: Any, environ: dict[str, Any]) -> None:
    status, _headers, body = call(app, environ)
    if status != 200 or json.loads(body) != {"ok": True}:
        raise AssertionError(f"expected 200 {{'ok': true}}, got {status} {body[:200]!r}")


def expect_refusal(app: Any, environ: dict[str, Any]) -> None:
    """Without a key and with a wrong key the stack answers 401: it really authenticates."""
    for headers in ({}, {stacks.HEADER: stacks.API_KEY[:-4] + "AAAA"}):
        status, _headers, _body = call(app, make_environ(headers))
        if status != 401:
            raise AssertionError(f"expected 401 with headers {sorted(headers)}, got {status}")


def expect_rate_limit_headers(app: Any, environ: dict[str, Any]) -> None:
    _status, headers, _body = call(app, environ)
    if "X-RateLimit-Limit" not in headers:
        raise AssertionError("the key's rate limit is not applied (no X-RateLimit-Limit header)")


def expect_audit_line(path: Path) -> Callable[[Any, dict[str, Any]], None]:
    def check(app: Any, environ: dict[str, Any]) -> None:
        before = path.stat().st_size if path.exists() else 0
        call(app, environ)
        if not path.exists() or path.stat().st_size <= before:
            raise AssertionError(f"no audit line was written to {path}")

    return check


def httpauth_missing() -> str:
    try:
        import flask_httpauth  # noqa: F401
    except ImportError:
        return "Flask-HTTPAuth is not installed (pip install flask-httpauth, or run tox -e bench)"
    return ""


def in_process_stacks(workdir: Path, many_keys: int) -> list[Stack]:
    no_httpauth = httpauth_missing()
    hand_audit = workdir / "hand-audit.log"
    full_audit = workdir / "mcp-audit.log"
    many_audit = workdir / "mcp-audit-many.log"
    authenticating = (expect_ok, expect_refusal)
    full_checks = (expect_ok, expect_refusal, expect_rate_limit_headers)
    return [
        Stack("bare", "bare Flask", stacks.bare, "1.00", (expect_ok,)),
        Stack(
            "httpauth",
            "Flask-HTTPAuth token auth",
            stacks.httpauth,
            "1.07",
            authenticating,
            no_httpauth,
        ),
        Stack(
            "limiter",
            "flask-limiter, key_func on the header, minute + hour limits",
            stacks.limiter,
            "3.2",
            (expect_ok,),
        ),
        Stack(
            "hand",
            "Flask-HTTPAuth + flask-limiter + one JSON audit line",
            lambda: stacks.hand_assembled(str(hand_audit)),
            "3.9",
            (*authenticating, expect_audit_line(hand_audit)),
            no_httpauth,
        ),
        Stack(
            "mcp_auth",
            "flask-mcp-auth, authentication only",
            stacks.mcp_auth_only,
            f"target <= {AUTH_ONLY_TARGET}",
            authenticating,
        ),
        Stack(
            "mcp_full",
            "flask-mcp-auth full (limits + audit), 10 keys",
            lambda: stacks.mcp_full(str(full_audit)),
            f"target <= {FULL_TARGET}",
            (*full_checks, expect_audit_line(full_audit)),
        ),
        Stack(
            "mcp_full_many",
            f"flask-mcp-auth full, {many_keys:,} keys",
            lambda: stacks.mcp_full(
                str(many_audit), keys=stacks.key_store(many_keys, rate_limited=True)
            ),
            f"target <= {MANY_KEYS_TARGET} x 10 keys",
            (*full_checks, expect_audit_line(many_audit)),
        ),
        Stack(
            "mcp_auth_many",
            f"flask-mcp-auth, authentication only, {many_keys:,} keys",
            lambda: stacks.mcp_auth_only(keys=stacks.key_store(many_keys, rate_limited=False)),
            "per-key lookups alone",
            authenticating,
        ),
        Stack("bare_control", "bare Flask again (control)", stacks.bare, "1.00", (expect_ok,)),
    ]


def prepare(stack: Stack) -> None:
    if stack.unavailable:
        return
    stack.app = stack.build()
    stack.environ = make_environ({stacks.HEADER: stacks.API_KEY})
    for check in stack.checks:
        check(stack.app, stack.environ)


def measure_in_process(runnable: list[Stack], iterations: int, repeats: int) -> None:
    warm_up = max(10, iterations // 10)
    for stack in runnable:
        time_requests(stack.app, stack.environ, warm_up)
    for round_number in range(repeats):
        # Rotate the order each round so that no stack always runs first or last.
        shift = round_number % len(runnable)
        for stack in runnable[shift:] + runnable[:shift]:
            stack.samples.append(time_requests(stack.app, stack.environ, iterations))


# -- scaling: load time and resident memory, in a fresh process -------------------------


def resident_kib() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("VmRSS not found in /proc/self/status")


def key_file(key_count: int, workdir: Path) -> Path:
    """A key store of ``key_count`` keys as a JSON file, written once per run."""
    path = workdir / f"keys-{key_count}.json"
    if not path.exists():
        path.write_text(stacks.key_store(key_count, rate_limited=True))
    return path


def probe_memory(key_count: int, workdir: Path) -> dict[str, Any]:
    """Build the full configuration with ``key_count`` keys in this process, answer one
    request, report load time and RSS.

    The keys come from a file the parent wrote, as a worker would get them: through
    MCP_API_KEYS_FILE.
    """
    path = key_file(key_count, workdir)
    started = time.process_time()
    app = stacks.mcp_full(str(workdir / f"probe-{key_count}.log"), keys_file=str(path))
    load_seconds = time.process_time() - started
    expect_ok(app, make_environ({stacks.HEADER: stacks.API_KEY}))
    gc.collect()
    return {"keys": key_count, "load_seconds": load_seconds, "rss_kib": resident_kib()}


def run_probe(key_count: int, workdir: Path) -> dict[str, Any]:
    key_file(key_count, workdir)
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--probe-memory",
        str(key_count),
        "--workdir",
        str(workdir),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"memory probe failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


@dataclass
class Scaling:
    many_keys: int
    load_seconds: float
    rss_few_kib: int
    rss_many_kib: int


def measure_scaling(many_keys: int, workdir: Path, probes: int) -> Scaling:
    few = [run_probe(10, workdir) for _ in range(probes)]
    many = [run_probe(many_keys, workdir) for _ in range(probes)]
    return Scaling(
        many_keys=many_keys,
        load_seconds=min(p["load_seconds"] for p in many),
        rss_few_kib=min(p["rss_kib"] for p in few),
        rss_many_kib=min(p["rss_kib"] for p in many),
    )


# -- throughput under gunicorn ------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(ready: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if ready():
            return
        time.sleep(0.1)
    raise RuntimeError(f"timed out after {seconds:.0f} s waiting for {what}")


def http_status(port: int, headers: dict[str, str]) -> int | None:
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        connection.request("GET", stacks.ROUTE, headers=headers)
        return connection.getresponse().status
    except OSError:
        return None
    finally:
        connection.close()


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@contextlib.contextmanager
def redis_server(workdir: Path) -> Iterator[str]:
    port = free_port()
    command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    command += ["--appendonly", "no", "--dir", str(workdir)]
    log = open(workdir / "redis.log", "wb")  # noqa: SIM115 - closed in finally
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
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
    finally:
        stop(process)
        log.close()


@contextlib.contextmanager
def gunicorn_server(name: str, app_spec: str, workdir: Path) -> Iterator[int]:
    port = free_port()
    command = [sys.executable, "-m", "gunicorn", "--workers", "2", "--bind", f"127.0.0.1:{port}"]
    command += ["--pythonpath", str(BENCH_DIR), "--log-level", "warning", app_spec]
    log = open(workdir / f"gunicorn-{name}.log", "wb")  # noqa: SIM115 - closed in finally
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=workdir)
    try:

        def serving() -> bool:
            if process.poll() is not None:
                tail = (workdir / f"gunicorn-{name}.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"gunicorn for {name} exited:\n{tail}")
            return http_status(port, {stacks.HEADER: stacks.API_KEY}) == 200

        wait_until(serving, 60, f"gunicorn serving {name}")
        yield port
    finally:
        stop(process)
        log.close()


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


@dataclass
class Throughput:
    #: stack name -> best requests per second
    rps: dict[str, float] = field(default_factory=dict)
    #: stack name -> why it was not measured
    skipped: dict[str, str] = field(default_factory=dict)
    #: stack name -> Redis round trips per request (stacks with Redis storage)
    round_trips: dict[str, float] = field(default_factory=dict)
    note: str = ""


GUNICORN_STACKS = ("bare", "mcp_full_memory", "mcp_full_redis", "hand_redis")


def measure_throughput(workdir: Path, seconds: int, rounds: int, connections: int) -> Throughput:
    result = Throughput()
    missing = [tool for tool in ("wrk",) if shutil.which(tool) is None]
    try:
        importlib.metadata.version("gunicorn")
    except importlib.metadata.PackageNotFoundError:
        missing.append("gunicorn")
    if missing:
        result.note = f"skipped: {' and '.join(missing)} not installed"
        result.skipped = dict.fromkeys(GUNICORN_STACKS, result.note)
        return result

    specs: dict[str, str] = {"bare": 'stacks:wsgi_app("bare")'}
    redis_note = "" if shutil.which("redis-server") else "skipped: redis-server not installed"
    audit = workdir / "gunicorn-mcp-audit.log"
    specs["mcp_full_memory"] = f'stacks:wsgi_app("mcp_full", "{audit}")'
    httpauth_note = httpauth_missing()
    if httpauth_note:
        result.skipped["hand_redis"] = httpauth_note

    with contextlib.ExitStack() as cleanup:
        if redis_note:
            for name in ("mcp_full_redis", "hand_redis"):
                result.skipped.setdefault(name, redis_note)
        else:
            redis_uri = cleanup.enter_context(redis_server(workdir))
            audit = workdir / "gunicorn-mcp-redis-audit.log"
            specs["mcp_full_redis"] = f'stacks:wsgi_app("mcp_full", "{audit}", "{redis_uri}")'
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
        order = list(ports)
        for round_number in range(rounds):
            shift = round_number % len(order)
            for name in order[shift:] + order[:shift]:
                samples[name].append(run_wrk(ports[name], seconds, connections))
        result.rps = {name: max(values) for name, values in samples.items()}
        if not redis_note:
            for name in ("mcp_full_redis", "hand_redis"):
                if name in ports:
                    result.round_trips[name] = redis_round_trips_per_request(redis_uri, ports[name])
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
                if http_status(port, {stacks.HEADER: stacks.API_KEY}) != 200:
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


# -- profiling ------------------------------------------------------------------------------


def prepared_stack(stack_name: str, workdir: Path) -> Stack:
    by_name = {s.name: s for s in in_process_stacks(workdir, 1000)}
    if stack_name not in by_name:
        raise SystemExit(f"unknown stack {stack_name!r}; one of {', '.join(by_name)}")
    stack = by_name[stack_name]
    if stack.unavailable:
        raise SystemExit(f"{stack_name}: {stack.unavailable}")
    prepare(stack)
    time_requests(stack.app, stack.environ, 200)
    return stack


def profile(stack_name: str, iterations: int, workdir: Path, limit: int) -> str:
    stack = prepared_stack(stack_name, workdir)
    profiler = cProfile.Profile()
    profiler.enable()
    time_requests(stack.app, stack.environ, iterations)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(limit)
    return out.getvalue()


def breakdown(stack_name: str, iterations: int, workdir: Path) -> str:
    """Median wall time of each request hook of one stack, in real requests.

    cProfile's overhead distorts small functions; a perf_counter_ns pair
    around each hook (about 0.1 us) does not.
    """
    stack = prepared_stack(stack_name, workdir)
    app = stack.app
    timings: dict[str, list[int]] = {}

    def timed(name: str, hook: Callable[..., Any]) -> Callable[..., Any]:
        samples = timings.setdefault(name, [])

        def run(*args: Any) -> Any:
            started = time.perf_counter_ns()
            try:
                return hook(*args)
            finally:
                samples.append(time.perf_counter_ns() - started)

        return run

    for kind, registry in (
        ("before", app.before_request_funcs),
        ("after", app.after_request_funcs),
    ):
        for blueprint, hooks in registry.items():
            registry[blueprint] = [
                timed(f"{kind}_request {getattr(h, '__qualname__', None) or repr(h)[:60]}", h)
                for h in hooks
            ]
    whole: list[int] = []
    gc.disable()
    try:
        for _ in range(iterations):
            started = time.perf_counter_ns()
            call(app, stack.environ)
            whole.append(time.perf_counter_ns() - started)
    finally:
        gc.enable()
    lines = [f"{stack.label}: median wall time over {iterations:,} requests"]
    for name, samples in timings.items():
        lines.append(f"  {statistics.median(samples) / 1000:7.2f} us  {name}")
    lines.append(f"  {statistics.median(whole) / 1000:7.2f} us  the whole request (hooks included)")
    return "\n".join(lines)


# -- the report -------------------------------------------------------------------------------


def package_versions() -> dict[str, str]:
    versions = {}
    for package in (
        "flask-mcp-auth",
        "Flask",
        "Werkzeug",
        "Flask-Limiter",
        "limits",
        "itsdangerous",
        "Flask-HTTPAuth",
        "redis",
        "gunicorn",
    ):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def tool_version(command: list[str]) -> str:
    if shutil.which(command[0]) is None:
        return "not installed"
    done = subprocess.run(command, capture_output=True, text=True, timeout=10, check=False)
    text = (done.stdout or done.stderr).strip().splitlines()
    return text[0] if text else "unknown"


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def describe_machine(load_before: tuple[float, ...]) -> list[str]:
    versions = ", ".join(f"{name} {version}" for name, version in package_versions().items())
    return [
        f"- CPU: {cpu_model()}, {os.cpu_count()} logical cores",
        f"- OS: {platform.platform()}",
        f"- Python: {platform.python_implementation()} {platform.python_version()}",
        f"- Packages: {versions}",
        f"- Tools: {tool_version(['redis-server', '--version'])}; "
        f"{tool_version(['wrk', '--version'])}",
        "- Load average (1, 5, 15 min) before / after the run: "
        f"{'/'.join(f'{x:.2f}' for x in load_before)} / "
        f"{'/'.join(f'{x:.2f}' for x in os.getloadavg())}",
    ]


def ratio_text(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def verdict(value: float | None, target: float, at_most: bool) -> str:
    if value is None:
        return "not measured"
    met = value <= target if at_most else value >= target
    return "met" if met else "**missed**"


@dataclass
class Results:
    args: argparse.Namespace
    stacks: list[Stack]
    scaling: Scaling | None
    throughput: Throughput
    started: datetime
    load_before: tuple[float, ...]


def in_process_ratio(results: Results, name: str) -> float | None:
    by_name = {s.name: s for s in results.stacks}
    stack, bare = by_name[name], by_name["bare"]
    if stack.unavailable or not stack.samples:
        return None
    return stack.best / bare.best


def gunicorn_ratio(results: Results, name: str) -> float | None:
    rps = results.throughput.rps
    if name not in rps or "bare" not in rps:
        return None
    return rps[name] / rps["bare"]


def table(results: Results) -> list[str]:
    """The one table: in-process rows, then the gunicorn-only rows, then why any cell is n/a."""
    rows = [
        "| stack | µs per request | x bare, in process | spread | issue's figure | "
        "req/s, gunicorn | x bare, gunicorn |",
        "|---|---:|---:|---:|---|---:|---:|",
    ]
    notes: list[str] = []
    throughput = results.throughput
    for stack in results.stacks:
        if stack.unavailable:
            cells = ["n/a", "n/a", ""]
            notes.append(f"{stack.label}: {stack.unavailable}")
        else:
            spread = statistics.median(stack.samples) / stack.best - 1
            ratio = ratio_text(in_process_ratio(results, stack.name))
            cells = [f"{stack.best * 1e6:.1f}", ratio, f"{spread:.0%}"]
        cells.append(stack.reference)
        gunicorn_name = GUNICORN_TWIN.get(stack.name)
        cells += gunicorn_cells(results, gunicorn_name) if gunicorn_name else ["", ""]
        rows.append(f"| {stack.label} | {' | '.join(cells)} |")
    for name, (label, reference) in GUNICORN_ONLY.items():
        rows.append(
            f"| {label} | | | | {reference} | {' | '.join(gunicorn_cells(results, name))} |"
        )
    for name in (*GUNICORN_TWIN.values(), *GUNICORN_ONLY):
        if name not in throughput.rps and name in throughput.skipped:
            notes.append(f"gunicorn {name}: {throughput.skipped[name]}")
    if throughput.round_trips:
        counts = "; ".join(
            f"{GUNICORN_ONLY[name][0]}: {count:.2f}"
            for name, count in throughput.round_trips.items()
        )
        rows += ["", f"Redis round trips per request (MONITOR): {counts}."]
    if notes:
        rows += ["", "n/a:", *(f"- {note}" for note in dict.fromkeys(notes))]
    return rows


#: In-process rows that have a gunicorn measurement in the same table row.
GUNICORN_TWIN = {"bare": "bare", "mcp_full": "mcp_full_memory"}
#: Rows measured only under gunicorn: name -> (label, issue's figure).
GUNICORN_ONLY = {
    "mcp_full_redis": ("flask-mcp-auth full, Redis storage", f"target >= {GUNICORN_REDIS_TARGET}"),
    "hand_redis": ("Flask-HTTPAuth + flask-limiter + audit line, Redis storage", "0.30"),
}


def gunicorn_cells(results: Results, name: str) -> list[str]:
    rps = results.throughput.rps.get(name)
    if rps is None:
        return ["n/a", "n/a"]
    return [f"{rps:,.0f}", ratio_text(gunicorn_ratio(results, name))]


KEY_SOURCE = "a key file (`MCP_API_KEYS_FILE`)"


def scaling_lines(results: Results) -> list[str]:
    scaling = results.scaling
    if scaling is None:
        return ["- Scaling not measured."]
    by_name = {s.name: s for s in results.stacks}
    few, many = by_name["mcp_full"], by_name["mcp_full_many"]
    lines = [
        f"- Request cost, full configuration, {scaling.many_keys:,} keys vs 10 keys: "
        f"{many.best / few.best:.3f}x"
    ]
    auth_few, auth_many = by_name["mcp_auth"], by_name["mcp_auth_many"]
    if auth_few.samples and auth_many.samples:
        lines.append(
            f"- Request cost, authentication only (the per-key lookups without the noise of "
            f"the memory storage's timer thread), {scaling.many_keys:,} keys vs 10 keys: "
            f"{auth_many.best / auth_few.best:.3f}x"
        )
    delta_mib = (scaling.rss_many_kib - scaling.rss_few_kib) / 1024
    lines += [
        f"- Start-up (full configuration): loading {scaling.many_keys:,} keys "
        f"from {KEY_SOURCE} takes {scaling.load_seconds:.2f} s of CPU time "
        "(best of the probes).",
        f"- Resident memory of a fresh process serving the full configuration "
        f"(what each gunicorn worker holds): {scaling.rss_few_kib / 1024:.1f} MiB with 10 keys, "
        f"{scaling.rss_many_kib / 1024:.1f} MiB with {scaling.many_keys:,} keys "
        f"(+{delta_mib:.1f} MiB, {delta_mib * 1024 * 1024 / scaling.many_keys:.0f} bytes a key).",
    ]
    return lines


def target_lines(results: Results) -> list[str]:
    by_name = {s.name: s for s in results.stacks}
    few, many = by_name["mcp_full"], by_name["mcp_full_many"]
    keys_ratio = many.best / few.best if few.samples and many.samples else None
    many_keys = results.args.keys
    checks = [
        (
            "authentication only <= 1.15x bare",
            in_process_ratio(results, "mcp_auth"),
            AUTH_ONLY_TARGET,
            True,
        ),
        ("full <= 1.5x bare, in process", in_process_ratio(results, "mcp_full"), FULL_TARGET, True),
        (
            f"{many_keys:,} keys <= 1.05x the cost of 10",
            keys_ratio,
            MANY_KEYS_TARGET,
            True,
        ),
        (
            "gunicorn, full with memory:// >= 0.85x bare",
            gunicorn_ratio(results, "mcp_full_memory"),
            GUNICORN_MEMORY_TARGET,
            False,
        ),
        (
            "gunicorn, full with Redis >= 0.70x bare",
            gunicorn_ratio(results, "mcp_full_redis"),
            GUNICORN_REDIS_TARGET,
            False,
        ),
    ]
    return [
        f"- {what}: {ratio_text(value)} — {verdict(value, target, at_most)}"
        for what, value, target, at_most in checks
    ]


def noise_line(results: Results) -> str:
    control = in_process_ratio(results, "bare_control")
    if control is None:
        return ""
    if abs(control - 1) > 0.03:
        return (
            f"**Noisy run:** the two bare-Flask measurements differ by {abs(control - 1):.0%}; "
            "treat differences of that size as noise."
        )
    return f"The control (bare Flask measured twice) agrees within {abs(control - 1):.1%}."


#: Everything after this line of the Markdown page is written by hand and kept when the
#: page is regenerated (the analysis of a run, which the script cannot write).
KEPT_MARKER = (
    "<!-- Everything below this line is kept when benchmarks/bench.py rewrites the page. -->"
)


def with_kept_notes(document: str, output: Path) -> str:
    kept = "\n"
    if output.exists():
        previous = output.read_text(encoding="utf-8")
        if KEPT_MARKER in previous:
            kept = previous.split(KEPT_MARKER, 1)[1]
    return f"{document}\n{KEPT_MARKER}{kept}"


def render(results: Results) -> tuple[str, str]:
    """The table for the terminal, and the whole Markdown document."""
    args = results.args
    table_lines = table(results)
    method = (
        f"In process: {args.iterations:,} direct WSGI calls per stack per round, {args.repeats} "
        "rounds, order rotated each round, garbage collection off in the timed loops, "
        f"{'process CPU time' if args.clock == 'cpu' else 'wall-clock time'}; per-request "
        "cost is the best round, spread is median over best."
    )
    if results.throughput.rps:
        method += (
            f" Gunicorn: 2 sync workers per stack, `wrk -t1 -c{args.connections}` on loopback for "
            f"{args.duration:g} s, {args.wrk_rounds} interleaved rounds, best round per stack."
        )
    else:
        method += f" Gunicorn: {results.throughput.note or 'not run'}."
    terminal = "\n".join(
        [
            *table_lines,
            "",
            noise_line(results),
            "",
            *scaling_lines(results),
            "",
            *target_lines(results),
        ]
    )
    document = "\n".join(
        [
            "# Benchmarks",
            "",
            "What flask-mcp-auth costs per request, compared with bare Flask and with the stack "
            "users assemble by hand (Flask-HTTPAuth + flask-limiter + a hand-written audit line). "
            "Regenerate this page with:",
            "",
            "```bash",
            "tox -e bench                         # full run (about 3 minutes), rewrites this page",
            "tox -e bench -- --no-gunicorn        # in-process and scaling only",
            "tox -e bench -- --only mcp_auth      # quick A/B of some stacks against bare Flask",
            "tox -e bench -- --profile mcp_full   # cProfile of one stack's requests",
            "tox -e bench -- --smoke --output /tmp/b.md  # seconds; what the test suite runs",
            "```",
            "",
            "`python benchmarks/bench.py --help` lists every option. The numbers are ratios to "
            "bare Flask measured in the same run, because the machine's absolute speed drifts. "
            "The run needs Flask-HTTPAuth (installed by the tox environment), gunicorn, `wrk` and "
            "`redis-server`; without one of them the rows that need it say n/a and why. "
            "`MCP_*`, `JWT_SECRET` and `DEBUG` from the calling shell are ignored.",
            "",
            f"## Results ({results.started:%Y-%m-%d %H:%M} UTC)",
            "",
            method,
            "",
            *table_lines,
            "",
            noise_line(results),
            "",
            "### Scaling",
            "",
            *scaling_lines(results),
            "",
            "### Targets (issue 8)",
            "",
            *target_lines(results),
            "",
            "### Machine",
            "",
            *describe_machine(results.load_before),
            "",
            "## What each stack is",
            "",
            'All stacks serve `GET /data` returning `{"ok": true}`; the key is sent in '
            "`X-API-Key`. Rate limits are a minute and an hour window set high enough never to "
            "trigger (fixed window). Every stack is checked before it is timed: 200 with the key, "
            "401 without it or with a wrong one, rate-limit headers and an audit line where the "
            "stack promises them. The definitions are in `benchmarks/stacks.py`. Timing uses the "
            "process's CPU time by default (`--clock wall` for elapsed time): on a shared "
            "machine it leaves out the time the benchmark waits for a core, and it includes "
            "the timer thread in which `limits`' memory storage expires counters.",
            "",
            "- **bare Flask**: the route alone; measured twice, the second time as a control.",
            '- **Flask-HTTPAuth token auth**: `HTTPTokenAuth(header="X-API-Key")`, '
            "`verify_token` a dictionary lookup, `@auth.login_required` on the route.",
            "- **flask-limiter**: `Limiter(key_func=<the X-API-Key header>, "
            'default_limits=[minute, hour], storage_uri="memory://")`.',
            "- **hand-assembled**: the two above plus an `after_request` hook writing one JSON "
            "line (time, user, method, path, status, address) through a `logging.FileHandler`.",
            "- **flask-mcp-auth, authentication only**: a signed key (`mcp_<keyId>_<signature>`, "
            "`JWT_SECRET`), 10 keys without `rateLimit`, no default limit, audit off, "
            '`MCP_DEFAULT_ROLE=""` so that a request without a key gets 401 like '
            "Flask-HTTPAuth's.",
            "- **flask-mcp-auth full**: the same with `rateLimit` (per minute and per hour) on "
            "every key, `RATELIMIT_STORAGE_URI` `memory://` (or Redis under gunicorn), "
            "`MCP_AUDIT_LOG` a file, the failed-attempt lockout at its default. The audit "
            "destination is process-wide, so in process both full rows write to the same file.",
            "- **Scaling**: the full configuration with `--keys` keys (the presented key is one "
            "of them); load time and resident memory come from fresh processes that build the "
            f"app with keys from {KEY_SOURCE} (written beforehand by the parent process) and "
            "answer one request.",
            "- **Gunicorn**: each stack in its own `gunicorn --workers 2` on 127.0.0.1, all "
            "started before the first measurement, warmed for a second each, then measured "
            "round by round in rotating order; a private `redis-server` on a free port serves "
            "the Redis rows. Requests per second are wrk's; any non-2xx answer invalidates the "
            "run. Redis round trips per request are counted with `MONITOR` over 100 requests "
            "(commands a Lua script runs inside Redis are not round trips).",
            "",
        ]
    )
    return terminal, document


# -- command line -----------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=5000, help="requests per stack per round")
    parser.add_argument(
        "--clock",
        choices=sorted(CLOCKS),
        default="cpu",
        help="cpu: process CPU time, robust on a shared machine (default); wall: elapsed time",
    )
    parser.add_argument("--repeats", type=int, default=7, help="rounds; the best one counts")
    parser.add_argument("--keys", type=int, default=100_000, help="key count for the scaling rows")
    parser.add_argument("--probes", type=int, default=3, help="fresh processes per key count")
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--wrk-rounds", type=int, default=4, help="wrk runs per stack")
    parser.add_argument("--connections", type=int, default=8, help="wrk connections")
    parser.add_argument("--no-gunicorn", action="store_true", help="skip the throughput part")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="a few iterations, 1,000 keys, no gunicorn: checks that every row is produced",
    )
    parser.add_argument(
        "--output", type=Path, default=REPO_ROOT / "docs" / "benchmarks.md", help="Markdown file"
    )
    parser.add_argument("--workdir", type=Path, help="where logs go (default: a temporary dir)")
    parser.add_argument("--profile", metavar="STACK", help="profile one in-process stack and exit")
    parser.add_argument(
        "--breakdown", metavar="STACK", help="time each request hook of one stack and exit"
    )
    parser.add_argument(
        "--only",
        metavar="STACKS",
        help="comma-separated in-process stacks (e.g. mcp_auth,bare_control) to compare with "
        "bare Flask; prints ratios and exits without writing the document",
    )
    parser.add_argument("--probe-memory", type=int, metavar="KEYS", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.smoke:
        args.iterations, args.repeats, args.keys, args.probes = 30, 2, 1000, 1
        args.no_gunicorn = True
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # The stacks are configured explicitly; settings or DEBUG=auth:* from the
    # caller's shell would change what is measured (and reach the subprocesses).
    for name in list(os.environ):
        if name.startswith("MCP_") or name in ("DEBUG", "JWT_SECRET"):
            del os.environ[name]
    global clock
    clock = CLOCKS[args.clock]
    with contextlib.ExitStack() as cleanup:
        if args.workdir is None:
            args.workdir = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="bench-")))
        args.workdir.mkdir(parents=True, exist_ok=True)
        if args.probe_memory is not None:
            print(json.dumps(probe_memory(args.probe_memory, args.workdir)))
            return 0
        if args.profile:
            print(profile(args.profile, args.iterations, args.workdir, 40))
            return 0
        if args.breakdown:
            print(breakdown(args.breakdown, args.iterations, args.workdir))
            return 0
        if args.only:
            return compare(args)
        return run(args)
    return 0


def compare(args: argparse.Namespace) -> int:
    """Quick A/B: a few stacks against bare Flask, interleaved as in the full run."""
    wanted = {"bare", *args.only.split(",")}
    chosen = [s for s in in_process_stacks(args.workdir, args.keys) if s.name in wanted]
    unknown = wanted - {s.name for s in chosen}
    if unknown:
        raise SystemExit(f"unknown stack(s): {', '.join(sorted(unknown))}")
    for stack in chosen:
        if stack.unavailable:
            raise SystemExit(f"{stack.name}: {stack.unavailable}")
        prepare(stack)
    measure_in_process(chosen, args.iterations, args.repeats)
    bare = chosen[0].best
    for stack in chosen:
        spread = statistics.median(stack.samples) / stack.best - 1
        print(
            f"{stack.name:14} {stack.best * 1e6:7.1f} us  {stack.best / bare:5.3f}x bare  "
            f"spread {spread:.0%}"
        )
    return 0


def run(args: argparse.Namespace) -> int:
    started = datetime.now(UTC)
    load_before = os.getloadavg()
    all_stacks = in_process_stacks(args.workdir, args.keys)
    for stack in all_stacks:
        prepare(stack)
    runnable = [s for s in all_stacks if not s.unavailable]
    print(
        f"in process: {len(runnable)} stacks x {args.repeats} rounds x {args.iterations} requests",
        file=sys.stderr,
    )
    measure_in_process(runnable, args.iterations, args.repeats)
    print("scaling: memory probes", file=sys.stderr)
    scaling = measure_scaling(args.keys, args.workdir, args.probes)
    if args.no_gunicorn:
        throughput = Throughput(
            note="skipped (--no-gunicorn)" if not args.smoke else "skipped (--smoke)"
        )
        throughput.skipped = dict.fromkeys(GUNICORN_STACKS, throughput.note)
    else:
        print("throughput: gunicorn + wrk", file=sys.stderr)
        throughput = measure_throughput(
            args.workdir, args.duration, args.wrk_rounds, args.connections
        )
    results = Results(args, all_stacks, scaling, throughput, started, load_before)
    terminal, document = render(results)
    print(terminal)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(with_kept_notes(document, args.output), encoding="utf-8")
    print(f"\nwritten to {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
