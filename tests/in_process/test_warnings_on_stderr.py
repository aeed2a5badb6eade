"""Warnings reach stderr while the application configured no logging, and only then.

The package logger has a stderr fallback instead of a NullHandler (flask_mcp_auth/logs.py).
pytest puts its capture handlers on the root logger for every test phase, which counts
as "logging configured"; ``no_logging_configured()`` takes them off inside the test body,
where the phase's handlers are already installed.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from support.audit import RecordingHandler
from support.keyfiles import write_atomically

from flask_mcp_auth import audit_output
from flask_mcp_auth.logs import StderrFallbackHandler

pytestmark = pytest.mark.usefixtures("clean_logging", "restore_sighup")

KEY_ID = "file-key-5b8e2c71d0"
KEY = {"name": "File Connector", "userId": "file", "role": "user", "permissions": ["read"]}
EXPIRED = {"old-key-3c9d": {"name": "Old Connector", "expiresAt": "2020-01-01T00:00:00Z"}}
EMPTY_STORE_LINE = (
    "flask_mcp_auth WARNING: MCP_API_KEYS is unset or empty: no API keys are configured"
)


@contextlib.contextmanager
def no_logging_configured() -> Iterator[None]:
    """The root logger without handlers, as in a process that never configured logging."""
    root = logging.getLogger()
    saved = root.handlers[:]
    for handler in saved:
        root.removeHandler(handler)
    try:
        yield
    finally:
        for handler in saved:
            root.addHandler(handler)


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "keys.json"
    write_atomically(path, {KEY_ID: KEY})
    return path


def package_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if "flask_mcp_auth" in line or " auth:" in line]


def test_the_package_logger_has_the_fallback_and_no_null_handler() -> None:
    handlers = logging.getLogger("flask_mcp_auth").handlers
    assert [type(h) for h in handlers if isinstance(h, StderrFallbackHandler)] == [
        StderrFallbackHandler
    ]
    assert not [h for h in handlers if isinstance(h, logging.NullHandler)]


def test_start_up_warnings_reach_stderr_without_logging_configured(make_app, capsys):
    with no_logging_configured():
        make_app(keys=None)
        make_app(keys=EXPIRED)
    lines = package_lines(capsys.readouterr().err)
    assert lines[0] == EMPTY_STORE_LINE
    assert lines[1].startswith("flask_mcp_auth WARNING: API key Old Connector [")
    assert lines[1].endswith("] expired at 2020-01-01T00:00:00+00:00")
    assert len(lines) == 2  # once each, nothing below WARNING


def test_a_rejected_key_file_edit_is_reported_on_stderr(
    make_app: Callable[..., Flask], key_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    app = make_app(keys=None, MCP_API_KEYS_FILE=str(key_file), MCP_API_KEYS_FILE_CHECK_INTERVAL=0)
    capsys.readouterr()
    with no_logging_configured():
        write_atomically(key_file, {KEY_ID: {**KEY, "role": "root"}})
        for _ in range(2):
            response = app.test_client().get("/data", headers={"X-API-Key": KEY_ID})
            assert response.status_code == 200  # the last good store is still in force
    [line] = package_lines(capsys.readouterr().err)
    assert line.startswith(f"flask_mcp_auth ERROR: MCP_API_KEYS_FILE ({key_file}): ")
    assert 'entry "File Connector", field "role"' in line
    assert "keeping the last good key store in force: 1 key(s)" in line
    assert KEY_ID not in line


def test_nothing_below_warning_reaches_stderr(make_app, key_file, capsys):
    app = make_app(keys=None, MCP_API_KEYS_FILE=str(key_file), MCP_API_KEYS_FILE_CHECK_INTERVAL=0)
    with no_logging_configured():
        write_atomically(key_file, {KEY_ID: KEY, "another-key-77a1": {**KEY, "name": "Another"}})
        assert app.test_client().get("/data", headers={"X-API-Key": KEY_ID}).status_code == 200
        logging.getLogger("flask_mcp_auth.request").info("info-marker")
    assert package_lines(capsys.readouterr().err) == []  # "reloaded" is INFO


@pytest.mark.parametrize("logger_name", ["flask_mcp_auth", "flask_mcp_auth.keys", ""])
def test_an_application_handler_takes_the_warnings_off_stderr(make_app, capsys, logger_name):
    handler = RecordingHandler()
    handler.setLevel(logging.ERROR)  # its level is the application's choice: still its own
    with no_logging_configured():
        logging.getLogger(logger_name).addHandler(handler)
        try:
            make_app(keys=None)
            logging.getLogger("flask_mcp_auth.keys").error("error-marker")
        finally:
            logging.getLogger(logger_name).removeHandler(handler)
    assert package_lines(capsys.readouterr().err) == []
    assert handler.lines == ["flask_mcp_auth.keys ERROR error-marker"]


def test_pytest_caplog_takes_the_warnings_off_stderr(make_app, caplog, capsys):
    caplog.set_level(logging.WARNING, logger="flask_mcp_auth")
    make_app(keys=None)
    assert "MCP_API_KEYS is unset or empty" in caplog.text
    assert package_lines(capsys.readouterr().err) == []


def test_a_package_logger_that_stops_propagating_warns_on_stderr(make_app, capsys):
    """The application's root handler cannot see the records: nothing else would write them."""
    logger = logging.getLogger("flask_mcp_auth")
    logger.propagate = False
    try:
        make_app(keys=None)
    finally:
        logger.propagate = True
    assert package_lines(capsys.readouterr().err) == [EMPTY_STORE_LINE]


def test_with_debug_on_a_warning_is_printed_once(make_app, monkeypatch, capsys):
    monkeypatch.setenv("DEBUG", "auth:keys")
    with no_logging_configured():
        make_app(keys=EXPIRED)
    lines = [line for line in package_lines(capsys.readouterr().err) if "expired" in line]
    assert len(lines) == 1
    assert " auth:keys WARNING API key Old Connector [" in lines[0]  # the DEBUG format


def test_the_fallback_writes_to_the_current_sys_stderr(make_app, monkeypatch, capsys):
    import io

    with no_logging_configured():
        later = io.StringIO()
        monkeypatch.setattr("sys.stderr", later)
        make_app(keys=None)
    assert later.getvalue() == EMPTY_STORE_LINE + "\n"


def test_an_audit_write_failure_is_one_line_on_stderr(
    audit_app: Callable[..., Flask],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(audit_output, "report_write_failure", audit_output._FailureReporter())
    with no_logging_configured():
        app: Any = audit_app(MCP_AUDIT_LOG=str(tmp_path / "missing" / "audit.log"))
        assert app.test_client().get("/data", headers={"X-API-Key": "live-key"}).status_code == 200
    [line] = [line for line in capsys.readouterr().err.splitlines() if "audit log" in line]
    assert line.startswith("flask_mcp_auth ERROR: could not write the audit log (")
    assert line.endswith("Requests are still being served.")
