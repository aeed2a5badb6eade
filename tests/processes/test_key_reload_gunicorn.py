"""Live reload across processes: real gunicorn workers notice a rewritten key file.

Each test starts gunicorn (sync workers, tests/apps/reload_app.py) on a loopback
socket it binds itself (handed over as ``fd://``), and spreads concurrent requests over the
workers; every response says which worker produced it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from email.message import Message
from pathlib import Path

import pytest
from support.keyfiles import write_atomically
from support.servers import GunicornServer

WORKERS = 3
CONCURRENCY = 6
HOLD_SECONDS = "0.03"
#: The promised "about a second" (a one-second check interval), with margin for a busy machine.
REFUSAL_BOUND_SECONDS = 2.0
GIVE_UP_SECONDS = 20.0

REVOKED_ID = "revoke-me-3c9e1a7b"
KEPT_ID = "keep-me-5d2f8e0c"
ADDED_ID = "added-later-8a4b6c1d"
REVOKED = {"name": "Revoked Connector", "role": "user", "permissions": ["read"]}
KEPT = {"name": "Kept Connector", "role": "user", "permissions": ["read"]}
ADDED = {"name": "Added Connector", "role": "user", "permissions": ["read"]}


def _isolation_options() -> list[str]:
    """Keep parallel gunicorns apart: recent releases open a shared control socket."""
    from gunicorn.config import Config

    return ["--no-control-socket"] if "control_socket_disable" in Config().settings else []


@dataclass(frozen=True)
class Answer:
    worker: int
    #: The worker's time.monotonic() when it answered (after authenticating).
    answered: float
    status: int

    @classmethod
    def from_response(cls, headers: Message, status: int) -> Answer:
        return cls(int(headers["X-Worker-Pid"]), float(headers["X-Worker-Clock"]), status)


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def ask(self, key_id: str) -> Answer:
        request = urllib.request.Request(
            self.url + "/mcp/status", headers={"X-API-Key": key_id, "X-Test-Hold": HOLD_SECONDS}
        )
        try:
            with urllib.request.urlopen(request, timeout=15) as response:
                return Answer.from_response(response.headers, response.status)
        except urllib.error.HTTPError as refused:
            return Answer.from_response(refused.headers, refused.code)

    def ask_many(self, key_id: str, count: int = CONCURRENCY) -> list[Answer]:
        with ThreadPoolExecutor(CONCURRENCY) as pool:
            return list(pool.map(lambda _: self.ask(key_id), range(count)))

    def every_worker(self, key_id: str, until: Callable[[list[Answer]], bool]) -> list[Answer]:
        """Ask in concurrent rounds until ``until(answers so far)``; fail after GIVE_UP_SECONDS."""
        answers: list[Answer] = []
        deadline = time.monotonic() + GIVE_UP_SECONDS
        while not until(answers):
            assert time.monotonic() < deadline, f"gave up; answers: {answers[-12:]}"
            assert self.process.poll() is None, self.log.read_text()
            answers += self.ask_many(key_id)
        return answers


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "keys.json"
    write_atomically(path, {REVOKED_ID: REVOKED, KEPT_ID: KEPT})
    return path


@pytest.fixture
def start_gunicorn(tmp_path: Path, key_file: Path) -> Iterator[Callable[..., Server]]:
    servers: list[GunicornServer] = []

    def start(**environment: str) -> Server:
        gunicorn = GunicornServer(
            "reload_app:app",
            workers=WORKERS,
            env={
                "MCP_API_KEYS_FILE": str(key_file),
                # These tests present a revoked key on purpose, many times: no lockout (429).
                "MCP_AUTH_FAILURE_LIMIT": "off",
                **environment,
            },
            extra_args=["--worker-class", "sync", *_isolation_options()],
            graceful_timeout=3,
            hand_over_socket=True,
            ready_path="/mcp/status",
            log_path=tmp_path / f"gunicorn-{len(servers)}.log",
        )
        servers.append(gunicorn)
        gunicorn.start()
        assert gunicorn.process is not None
        server = Server(gunicorn.url, gunicorn.process, gunicorn.log_path)
        server.every_worker(KEPT_ID, until=lambda answers: _workers(answers) >= WORKERS)
        return server

    yield start
    for gunicorn in servers:
        if gunicorn.process is not None:
            gunicorn.process.terminate()
    for gunicorn in servers:
        gunicorn.stop()


def _workers(answers: list[Answer], status: int | None = None) -> int:
    return len({a.worker for a in answers if status in (None, a.status)})


def _pids(answers: list[Answer]) -> set[int]:
    return {a.worker for a in answers}


@pytest.mark.timeout(90)
def test_every_worker_refuses_a_revoked_key_within_about_a_second(start_gunicorn, key_file):
    server = start_gunicorn()
    before = server.every_worker(REVOKED_ID, until=lambda a: _workers(a, 200) >= WORKERS)
    assert {a.status for a in before} == {200}
    workers = _pids(before)

    write_atomically(key_file, {KEPT_ID: KEPT, ADDED_ID: ADDED})
    bound = time.monotonic() + REFUSAL_BOUND_SECONDS

    revoked = server.every_worker(
        REVOKED_ID, until=lambda a: workers <= _pids([x for x in a if x.answered >= bound])
    )
    late = [a for a in revoked if a.answered >= bound]
    assert {a.status for a in late} == {401}, late
    # Each worker refused it at some point, and none accepted it after refusing it.
    for worker in workers:
        answers = sorted((a for a in revoked if a.worker == worker), key=lambda a: a.answered)
        statuses = [a.status for a in answers]
        first_refusal = statuses.index(401)
        assert set(statuses[first_refusal:]) == {401}, (worker, statuses)

    added = server.every_worker(ADDED_ID, until=lambda a: workers <= _pids(a))
    assert {a.status for a in added} == {200}
    kept = server.every_worker(KEPT_ID, until=lambda a: workers <= _pids(a))
    assert {a.status for a in kept} == {200}


@pytest.mark.timeout(90)
def test_sighup_to_each_worker_reloads_it_without_restarting_it(start_gunicorn, key_file):
    server = start_gunicorn(MCP_API_KEYS_FILE_CHECK_INTERVAL="3600")
    workers = _pids(server.every_worker(REVOKED_ID, until=lambda a: _workers(a, 200) >= WORKERS))

    write_atomically(key_file, {KEPT_ID: KEPT})
    # An hour-long interval: without a signal no worker looks at the file yet.
    stale = server.every_worker(REVOKED_ID, until=lambda a: workers <= _pids(a))
    assert {a.status for a in stale} == {200}

    for worker in workers:
        os.kill(worker, signal.SIGHUP)
    refused = server.every_worker(REVOKED_ID, until=lambda a: workers <= _pids(a))
    assert {a.status for a in refused} == {401}
    assert _pids(refused) == workers  # the same processes: reloaded, not restarted
