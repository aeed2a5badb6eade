"""Audit lines are written in batches: by a deadline, when a batch fills, before fork().

What a whole process does at its end (interpreter exit, SIGTERM, a gunicorn worker's exit)
is in tests/processes/test_audit_flush_processes.py.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from support.audit import build_audit_app

from flask_mcp_auth import audit_output
from flask_mcp_auth.audit import flush
from flask_mcp_auth.errors import ConfigError

pytestmark = pytest.mark.usefixtures("clean_logging")

HEADERS = {"X-API-Key": "live-key"}


def request_ids(path: Path) -> list[str]:
    if not path.exists():
        return []
    return [json.loads(line)["request_id"] for line in path.read_text().splitlines()]


def get(client: Any, request_id: str, path: str = "/data") -> None:
    client.get(path, headers={**HEADERS, "X-Request-ID": request_id})


def wait_for_lines(path: Path, count: int, timeout: float = 10.0) -> list[str]:
    """The file's request ids once it holds ``count`` lines (polled; the machine is shared)."""
    deadline = time.monotonic() + timeout
    while len(request_ids(path)) < count and time.monotonic() < deadline:
        time.sleep(0.02)
    return request_ids(path)


def test_an_idle_process_writes_a_line_by_itself(tmp_path: Path) -> None:
    """No further request, no exit: the flusher writes the batch after its deadline."""
    log_file = tmp_path / "audit.log"
    client = build_audit_app(MCP_AUDIT_LOG=str(log_file)).test_client()
    get(client, "lonely")
    assert wait_for_lines(log_file, 1) == ["lonely"]


def test_with_0_each_line_is_on_disk_when_its_response_is(tmp_path: Path) -> None:
    log_file = tmp_path / "audit.log"
    client = build_audit_app(MCP_AUDIT_LOG=str(log_file), MCP_AUDIT_FLUSH_MS=0).test_client()
    for number in range(3):
        get(client, f"r{number}")
        assert request_ids(log_file) == [f"r{n}" for n in range(number + 1)]


def test_0_also_applies_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    client = build_audit_app(MCP_AUDIT_LOG="stderr", MCP_AUDIT_FLUSH_MS="0").test_client()
    get(client, "at-once")
    assert json.loads(capsys.readouterr().err.strip())["request_id"] == "at-once"


def test_a_full_batch_is_written_without_waiting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the deadline out of the way, only a full batch reaches the file."""
    monkeypatch.setattr(audit_output._flusher, "wake", lambda: None)
    log_file = tmp_path / "audit.log"
    client = build_audit_app(MCP_AUDIT_LOG=str(log_file)).test_client()
    long_path = "/" + "p" * 2000  # a 404 with a key: audited, about 2.3 KB a line
    sent = 0
    while not log_file.exists() or log_file.stat().st_size == 0:
        get(client, f"r{sent}", long_path)
        sent += 1
        assert sent < 100, "no batch was written"
    written = request_ids(log_file)
    assert written == [f"r{n}" for n in range(sent)]  # the whole batch, in order, at once
    assert log_file.stat().st_size >= audit_output.BATCH_LIMIT
    get(client, "after")
    assert request_ids(log_file) == written  # the next batch waits ...
    flush()
    assert request_ids(log_file) == [*written, "after"]  # ... and is lost by none


def test_lines_through_an_application_filter_keep_their_order(tmp_path: Path) -> None:
    """A filter on the logger sends lines through logging; they join the same batch."""
    log_file = tmp_path / "audit.log"
    client = build_audit_app(MCP_AUDIT_LOG=str(log_file)).test_client()
    get(client, "direct")
    audit_output.audit_log.addFilter(lambda record: True)
    try:
        get(client, "through-logging")
    finally:
        audit_output.audit_log.filters.clear()
    get(client, "direct-again")
    flush()
    assert request_ids(log_file) == ["direct", "through-logging", "direct-again"]


def test_a_forked_child_never_writes_the_parents_lines(tmp_path: Path) -> None:
    log_file = tmp_path / "audit.log"
    client = build_audit_app(MCP_AUDIT_LOG=str(log_file)).test_client()
    get(client, "parent-1")
    get(client, "parent-2")
    pid = os.fork()
    if pid == 0:  # a worker: its own line, its own flush, no atexit
        try:
            get(client, "child")
            flush()
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    get(client, "parent-3")
    flush()
    ids = request_ids(log_file)
    assert sorted(ids) == ["child", "parent-1", "parent-2", "parent-3"]  # each once
    assert ids.index("parent-2") < ids.index("child")  # written before the fork


def test_a_failing_batch_reports_every_line_it_lost(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    if not Path("/dev/full").exists():
        pytest.skip("needs /dev/full to simulate a full disk")
    monkeypatch.setattr(audit_output, "report_write_failure", audit_output._FailureReporter())
    monkeypatch.setattr(audit_output._flusher, "wake", lambda: None)
    client = build_audit_app(MCP_AUDIT_LOG="/dev/full").test_client()
    for number in range(3):
        get(client, f"r{number}")
    flush()
    [report] = [r.getMessage() for r in caplog.records if "could not write" in r.getMessage()]
    assert "3 audit line(s) lost" in report


@pytest.mark.parametrize("value", ["-1", "101", "1.5", "soon", True, 2.5, -3])
def test_the_setting_is_checked_at_start_up(value: Any) -> None:
    with pytest.raises(ConfigError, match=r"^MCP_AUDIT_FLUSH_MS: expected a whole number"):
        build_audit_app(MCP_AUDIT_FLUSH_MS=value)


@pytest.mark.parametrize(
    ("value", "seconds"), [("0", 0.0), (" 20 ", 0.02), (100, 0.1), (50.0, 0.05)]
)
def test_the_setting_in_milliseconds(value: Any, seconds: float) -> None:
    build_audit_app(MCP_AUDIT_LOG="stdout", MCP_AUDIT_FLUSH_MS=value)
    assert audit_output._direct_handler is not None
    assert audit_output._direct_handler.flush_interval == seconds
