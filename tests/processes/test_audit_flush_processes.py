"""Nothing batched is lost when a real process stops cleanly.

The deadline flusher is off in these processes (tests/apps/audit_app.py), so every line
on disk got there through the stop under test: interpreter exit, SIGTERM of a plain
Python server, gunicorn stopping its workers, and a worker replaced after max_requests.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from support.paths import APPS_DIR, REPO_ROOT
from support.servers import GunicornServer, child_environment, free_port, get, wait_for

APP = "audit_app:create_app()"
HEADERS = {"X-API-Key": "flush-key"}


def request_ids(path: Path) -> list[str]:
    if not path.exists():
        return []
    return [json.loads(line)["request_id"] for line in path.read_text().splitlines()]


def environment(log_file: Path) -> dict[str, str]:
    env = child_environment({"MCP_AUDIT_LOG": str(log_file), "AUDIT_TEST_NO_DEADLINE": "1"})
    env["PYTHONPATH"] = f"{APPS_DIR}:{REPO_ROOT}"
    return env


def send(url: str, count: int, prefix: str = "r") -> list[str]:
    ids = [f"{prefix}{number}" for number in range(count)]
    for request_id in ids:
        status, _ = get(f"{url}/data", {**HEADERS, "X-Request-ID": request_id})
        assert status == 200
    return ids


def test_nothing_is_lost_at_interpreter_exit(tmp_path: Path) -> None:
    log_file = tmp_path / "audit.log"
    script = (
        "from audit_app import create_app\n"
        "client = create_app().test_client()\n"
        "for n in range(25):\n"
        "    client.get('/data', headers={'X-API-Key': 'flush-key', 'X-Request-ID': f'r{n}'})\n"
    )
    subprocess.run([sys.executable, "-c", script], env=environment(log_file), check=True)
    assert request_ids(log_file) == [f"r{n}" for n in range(25)]


def test_nothing_is_lost_when_sigterm_stops_a_plain_python_server(tmp_path: Path) -> None:
    log_file = tmp_path / "audit.log"
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, str(APPS_DIR / "audit_app.py"), str(port)],
        env=environment(log_file),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert server.stdout is not None and server.stdout.readline() == b"serving\n"
        url = f"http://127.0.0.1:{port}"
        sent = send(url, 20)
        assert request_ids(log_file) == []  # still batched: only the stop writes them
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=30) == -signal.SIGTERM  # still the default action
    finally:
        server.kill()
        server.wait()
    assert request_ids(log_file) == sent


def test_nothing_is_lost_when_gunicorn_stops_its_workers(
    start_gunicorn: Callable[..., GunicornServer], tmp_path: Path
) -> None:
    log_file = tmp_path / "audit.log"
    server = start_gunicorn(
        2, {"MCP_AUDIT_LOG": str(log_file), "AUDIT_TEST_NO_DEADLINE": "1"}, app=APP
    )
    sent = send(server.url, 30)
    server.stop()  # SIGTERM to the arbiter, which stops each worker gracefully
    assert server.process is not None and server.process.returncode == 0
    assert sorted(request_ids(log_file)) == sorted(sent)


def test_a_worker_replaced_after_max_requests_writes_its_lines(
    start_gunicorn: Callable[..., GunicornServer], tmp_path: Path
) -> None:
    log_file = tmp_path / "audit.log"
    server = start_gunicorn(
        1,
        {"MCP_AUDIT_LOG": str(log_file), "AUDIT_TEST_NO_DEADLINE": "1"},
        ["--max-requests", "4"],
        app=APP,
    )
    sent = send(server.url, 8)  # the readiness check counted too: at least one restart
    on_disk = wait_for(lambda: request_ids(log_file), "the first worker's lines")
    assert on_disk == sent[: len(on_disk)]  # in order, from the first request on
    server.stop()
    assert request_ids(log_file) == sent
