"""Fixtures for the audit, DEBUG and redaction tests (use with pytest_plugins)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from audit_support import ALL_LOGGERS, KEYS, RecordingHandler
from flask import Flask, abort

from flask_mcp_auth import MCPAuth
from flask_mcp_auth.audit import AUDIT_LOGGER, configure_audit_output
from flask_mcp_auth.debug import configure_debug
from flask_mcp_auth.errors import InsufficientPermissions, RateLimitExceeded, TooManyFailedAttempts


@pytest.fixture(autouse=True)
def clean_logging() -> Iterator[None]:
    """Undo what init_app did to the process-wide loggers, whatever the test did."""
    yield
    configure_audit_output("off")
    configure_debug(None)
    for name in ALL_LOGGERS:
        logger = logging.getLogger(name)
        for handler in [h for h in logger.handlers if isinstance(h, RecordingHandler)]:
            logger.removeHandler(handler)


@pytest.fixture
def audit_records() -> RecordingHandler:
    """A handler the application put on the audit logger (so no stderr handler is added)."""
    handler = RecordingHandler()
    logging.getLogger(AUDIT_LOGGER).addHandler(handler)
    return handler


@pytest.fixture
def all_records() -> RecordingHandler:
    """One handler on every logger the package, Werkzeug and the root write to."""
    handler = RecordingHandler()
    for name in ALL_LOGGERS:
        logging.getLogger(name).addHandler(handler)
    return handler


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


@pytest.fixture
def audit_app() -> Callable[..., Flask]:
    """Build an app with MCPAuth and the test views; keyword arguments go to app.config."""

    def factory(keys: Any = KEYS, **config: Any) -> Flask:
        app = Flask(__name__)
        app.config["TESTING"] = True
        app.config["MCP_API_KEYS"] = json.dumps(keys)
        app.config.update(config)
        MCPAuth(app)
        add_test_views(app)
        return app

    return factory
