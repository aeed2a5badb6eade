"""Real servers for the security tests: gunicorn (and flask run) subprocesses on loopback.

Every process started here is killed by the caller's fixture or context
manager; every wait is bounded.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

TESTS_DIR = Path(__file__).resolve().parent
APP_SPEC = "security_app:create_app()"
START_TIMEOUT_SECONDS = 20.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def server_environment(settings: Mapping[str, str]) -> dict[str, str]:
    """The parent's environment without MCP settings, plus ``settings``."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("MCP_") and name not in ("JWT_SECRET", "DEBUG", "SECRET_KEY")
    }
    env.update(settings)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS_DIR), env.get("PYTHONPATH")]))
    return env


def gunicorn_command(port: int, workers: int = 1, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--graceful-timeout",
        "2",
        *extra,
        APP_SPEC,
    ]


def wait_until_listening(process: subprocess.Popen[bytes], port: int) -> bool:
    """True once ``port`` accepts connections; False if the process exits first."""
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"server on port {port} did not start in {START_TIMEOUT_SECONDS} s")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    output: IO[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        """Everything the server wrote to stdout and stderr so far."""
        self.output.flush()
        self.output.seek(0)
        return self.output.read().decode("utf-8", "replace")


@contextmanager
def running_gunicorn(
    settings: Mapping[str, str], workers: int = 1, *extra: str
) -> Iterator[Server]:
    """A gunicorn serving tests/security_app.py with ``settings`` as its environment.

    Output goes to a temporary file (a pipe nobody reads would fill and stall the server).
    """
    port = free_port()
    with tempfile.TemporaryFile() as output:
        process = subprocess.Popen(
            gunicorn_command(port, workers, *extra),
            env=server_environment(settings),
            cwd=TESTS_DIR,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        server = Server(process, port, output)
        try:
            if not wait_until_listening(process, port):
                raise RuntimeError(
                    f"gunicorn exited with {process.returncode}: {server.log()[-2000:]}"
                )
            yield server
        finally:
            stop(process)
