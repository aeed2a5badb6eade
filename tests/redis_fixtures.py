"""A real redis-server on a free loopback port, and real gunicorn servers, for tests.

Without redis-server on PATH the tests that need it skip with the reason,
except under CI (CI=true), where they fail: CI must exercise them.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import pytest
from processes import stop_process

REPO = Path(__file__).resolve().parent.parent
APPS = Path(__file__).resolve().parent / "apps"
STARTUP_DEADLINE = 30.0  # seconds; the machine is shared and can be slow


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def require_executable(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        reason = f"{name} is not on PATH (install it, e.g. apt-get install -y redis-server)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{reason}; CI=true, so this test must run", pytrace=False)
        pytest.skip(reason)
    return path


class RedisServer:
    """One redis-server process that a test can stop and start again on the same port."""

    def __init__(self, executable: str) -> None:
        self.executable = executable
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def client(self):  # type: ignore[no-untyped-def]
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                self.executable,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + STARTUP_DEADLINE
        while True:
            try:
                if self.client().ping():
                    return
            except Exception as exc:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"redis-server did not start on port {self.port}") from exc
                time.sleep(0.02)

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process, timeout=10)
        self.process = None


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer(require_executable("redis-server"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


class Gunicorn:
    """gunicorn serving an app of tests/apps (ratelimit_app.py unless told) on loopback."""

    def __init__(
        self,
        workers: int,
        env: Mapping[str, str],
        log_path: Path,
        extra_args: Sequence[str] = (),
        app: str = "ratelimit_app:create_app()",
    ) -> None:
        self.port = free_port()
        self.log_path = log_path
        child_env = {k: v for k, v in os.environ.items() if not k.startswith("MCP_")}
        child_env.update(env)
        child_env["PYTHONPATH"] = os.pathsep.join([str(APPS), str(REPO)])
        self._log = log_path.open("wb")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--workers",
                str(workers),
                "--bind",
                f"127.0.0.1:{self.port}",
                "--graceful-timeout",
                "2",
                *extra_args,
                app,
            ],
            env=child_env,
            cwd=str(REPO),
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self._wait_ready()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + STARTUP_DEADLINE
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as reply:
                    if reply.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"gunicorn did not become ready:\n{self.output()}")

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        stop_process(self.process)
        if not self._log.closed:
            self._log.close()


@pytest.fixture
def start_gunicorn(tmp_path: Path) -> Iterator:  # type: ignore[type-arg]
    """start_gunicorn(workers, env[, extra_args, app]) gives a ready server; all stop at the end."""
    servers: list[Gunicorn] = []

    def start(
        workers: int,
        env: Mapping[str, str],
        extra_args: Sequence[str] = (),
        app: str = "ratelimit_app:create_app()",
    ) -> Gunicorn:
        log_path = tmp_path / f"gunicorn-{len(servers)}.log"
        server = Gunicorn(workers, env, log_path, extra_args, app)
        servers.append(server)
        return server

    try:
        yield start
    finally:
        for server in servers:
            server.stop()


def get(url: str, headers: Mapping[str, str] | None = None) -> tuple[int, dict[str, str]]:
    """(status, headers) of a GET; HTTP errors are results, not exceptions."""
    req = urllib.request.Request(url, headers=dict(headers or {}))
    try:
        with urllib.request.urlopen(req, timeout=30) as reply:
            return reply.status, dict(reply.headers)
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers)
