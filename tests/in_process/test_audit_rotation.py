"""The audit file follows log rotation, checked at most once per interval, losing no line."""

from __future__ import annotations

import json
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from flask_mcp_auth import MCPAuth
from flask_mcp_auth import audit_output as audit_module
from flask_mcp_auth.audit_output import (
    ROTATION_CHECK_INTERVAL,
    _OwnedHandler,
    configure_audit_output,
    flush,
)

KEYS = {"rotation-key": {"name": "Rotation", "role": "user", "permissions": ["*"]}}


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Callable[[float], None]:
    """Move the audit module's monotonic clock forward by some seconds."""
    offset = [0.0]
    fake = types.SimpleNamespace(
        **{name: getattr(time, name) for name in dir(time) if not name.startswith("_")}
    )
    fake.monotonic = lambda: time.monotonic() + offset[0]
    monkeypatch.setattr(audit_module, "time", fake)

    def advance(seconds: float) -> None:
        offset[0] += seconds

    return advance


@pytest.fixture
def client(tmp_path: Path) -> Any:
    app = Flask(__name__)
    app.config.update(MCP_API_KEYS=json.dumps(KEYS), MCP_AUDIT_LOG=str(tmp_path / "audit.log"))
    MCPAuth(app)

    @app.get("/data")
    def data() -> dict[str, bool]:
        return {"ok": True}

    yield app.test_client()
    configure_audit_output("off")  # close the file before tmp_path goes


def only_the_audit_file_handler(monkeypatch: pytest.MonkeyPatch) -> None:
    """Undo what pytest does when a test starts: attach its capture handler to every
    logger that does not propagate. With it there, lines go through logging instead
    of the file handler's own writes, the path under test."""
    audit_log = audit_module.audit_log
    owned = [h for h in audit_log.handlers if isinstance(h, _OwnedHandler)]
    monkeypatch.setattr(audit_log, "handlers", owned)


def request_ids(path: Path) -> list[str]:
    if not path.exists():
        return []
    return [json.loads(line)["request_id"] for line in path.read_text().splitlines()]


def get(client: Any, request_id: str) -> None:
    headers = {"X-API-Key": "rotation-key", "X-Request-ID": request_id}
    assert client.get("/data", headers=headers).status_code == 200
    flush()  # each line in its own batch: the rotation check runs per write


def test_lines_follow_a_rotated_file_after_the_check_interval(
    client: Any, tmp_path: Path, clock: Callable[[float], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    only_the_audit_file_handler(monkeypatch)
    current, rotated = tmp_path / "audit.log", tmp_path / "audit.log.1"
    get(client, "before")
    current.rename(rotated)  # what logrotate does
    get(client, "during")  # within the interval: still the open (renamed) file
    clock(ROTATION_CHECK_INTERVAL + 0.01)
    get(client, "after")
    assert request_ids(rotated) == ["before", "during"]
    assert request_ids(current) == ["after"]


def test_a_deleted_file_is_recreated_after_the_check_interval(
    client: Any, tmp_path: Path, clock: Callable[[float], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    only_the_audit_file_handler(monkeypatch)
    current = tmp_path / "audit.log"
    get(client, "first")
    current.unlink()
    clock(ROTATION_CHECK_INTERVAL + 0.01)
    get(client, "second")
    assert request_ids(current) == ["second"]
