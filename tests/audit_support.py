"""Helpers shared by the audit, DEBUG and redaction tests."""

from __future__ import annotations

import json
import logging
from typing import Any

from flask_mcp_auth.audit import AUDIT_LOGGER
from flask_mcp_auth.debug import NAMESPACES

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
