"""Helpers shared by the benchmark modules.

The paths, the project's performance targets, the one request every stack
answers, and the start, wait and stop of the background processes (gunicorn,
redis-server) the throughput measurement needs.
"""

from __future__ import annotations

import contextlib
import http.client
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import stacks
from werkzeug.test import EnvironBuilder

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
#: The entry point; the memory probes run it again in fresh processes.
SCRIPT = BENCH_DIR / "bench.py"

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Any]

#: The headers of an authenticated request: the benchmark key in ``X-API-Key``.
KEY_HEADERS = {stacks.HEADER: stacks.API_KEY}

# -- the project's performance targets (ratios to bare Flask) -----------------------------
AUTH_ONLY_TARGET = 1.15
FULL_TARGET = 1.5
MANY_KEYS_TARGET = 1.05
#: A request with an OAuth access token, against the same request with the signed key.
OAUTH_TARGET = 1.10
GUNICORN_MEMORY_TARGET = 0.85
GUNICORN_REDIS_TARGET = 0.70
#: Full with Redis against bare Flask plus one EVALSHA per request (the floor row).
GUNICORN_FLOOR_TARGET = 0.90


def rotated(items: Sequence[Any], round_number: int) -> list[Any]:
    """The order of one round: shifted each round so that no item always runs first or last."""
    shift = round_number % len(items)
    return [*items[shift:], *items[:shift]]


# -- one request, in process -------------------------------------------------------------


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


# -- one request over loopback, and background processes ---------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http_status(port: int, headers: dict[str, str]) -> int | None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        connection.request("GET", stacks.ROUTE, headers=headers)
        return connection.getresponse().status
    except OSError:
        return None
    finally:
        connection.close()


def wait_until(ready: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if ready():
            return
        time.sleep(0.1)
    raise RuntimeError(f"timed out after {seconds:.0f} s waiting for {what}")


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, up to 15 s to exit, then SIGKILL."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@contextlib.contextmanager
def background_process(
    command: list[str], log_path: Path, cwd: Path | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """``command`` running with its output in ``log_path``; stopped and the log closed on exit."""
    log = open(log_path, "wb")  # noqa: SIM115 - closed in finally
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=cwd)
    try:
        yield process
    finally:
        stop(process)
        log.close()
