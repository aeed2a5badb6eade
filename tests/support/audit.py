"""Helpers shared by the audit, DEBUG, redaction and secret-leak tests.

Their fixtures (``clean_logging``, ``audit_records``, ``all_records``, ``audit_app``)
are in tests/conftest.py.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from flask import Flask, abort

from flask_mcp_auth import MCPAuth
from flask_mcp_auth.audit import AUDIT_LOGGER
from flask_mcp_auth.debug import NAMESPACES
from flask_mcp_auth.errors import InsufficientPermissions, RateLimitExceeded, TooManyFailedAttempts

KEYS: dict[str, Any] = {
    "live-key": {
        "name": "ChatGPT Connector",
        "userId": "connector-user",
        "role": "user",
        "permissions": ["read"],
    },
    "old-key": {"name": "Old Connector", "userId": "old-user", "expiresAt": "2020-01-01T00:00:00Z"},
}

#: Every logger the package and the servers write to.
#: Every field of an audit event, in the order a line writes them (oauth_client_id, written
#: only for requests with an access token, comes last).
AUDIT_FIELDS = (
    "ts",
    "event",
    "reason",
    "name",
    "key_fingerprint",
    "user_id",
    "role",
    "method",
    "path",
    "status",
    "remote_addr",
    "credential_source",
    "request_id",
    "duration_ms",
)
ALL_LOGGERS = ("flask_mcp_auth", AUDIT_LOGGER, *NAMESPACES.values(), "werkzeug", "")


class RecordingHandler(logging.Handler):
    """Keeps every record, formatted (with any traceback) as a handler would write it."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.records: list[logging.LogRecord] = []
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        self.lines.append(self.format(record))

    def events(self) -> list[dict[str, Any]]:
        """The audit events recorded, parsed back from their JSON lines."""
        return [json.loads(r.getMessage()) for r in self.records if r.name == AUDIT_LOGGER]

    def text(self) -> str:
        return "\n".join(self.lines)


def add_test_views(app: Flask) -> None:
    """Views that end in each status the audit log cares about."""

    @app.get("/data")
    def data() -> dict[str, Any]:
        return {"ok": True}

    @app.post("/created")
    def created() -> tuple[dict[str, Any], int]:
        return {"created": True}, 201

    @app.get("/forbidden")
    def forbidden() -> None:
        raise InsufficientPermissions()

    @app.get("/plain-403")
    def plain_forbidden() -> None:
        abort(403)

    @app.get("/limited")
    def limited() -> None:
        raise RateLimitExceeded()

    @app.get("/too-many-failures")
    def too_many_failures() -> None:
        raise TooManyFailedAttempts()

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("view failed")


def build_audit_app(keys: Any = KEYS, **config: Any) -> Flask:
    """An app with MCPAuth and the test views; keyword arguments go to app.config."""
    app = Flask("audit_tests")
    app.config["TESTING"] = True
    app.config["MCP_API_KEYS"] = json.dumps(keys)
    app.config.update(config)
    MCPAuth(app)
    add_test_views(app)
    return app
