"""The start-up warning for memory:// rate-limit counters under several worker processes:
a log record on ``flask_mcp_auth.ratelimit`` (not ``warnings.warn``), saying what to do,
and only when some limit is configured at all.

In-process, the app is built from a stand-in for gunicorn's ``Worker.load_wsgi`` (a frame
whose ``self`` is a worker carrying ``cfg.workers``), which is what ``server_worker_count``
looks for; then under real gunicorn."""

from __future__ import annotations

import json
import logging
import types
import warnings
from typing import Any

import pytest
from flask import Flask
from support.flask_app import build_app
from support.paths import DOCS_DIR
from support.servers import get

pytest.importorskip("gunicorn")

LOGGER = "flask_mcp_auth.ratelimit"
LIMITED_KEY = {"limited-key": {"name": "Limited", "rateLimit": {"requestsPerMinute": 5}}}
PLAIN_KEY = {"plain-key": {"name": "Plain"}}
NO_LIMITS = {
    "MCP_DEFAULT_RATE_LIMIT": "",
    "MCP_ANONYMOUS_RATE_LIMIT": "",
    "MCP_AUTH_FAILURE_LIMIT": "off",
}


def build_in_worker(workers: int, keys: Any, **config: Any) -> Flask:
    """build_app(keys, **config) as a gunicorn worker with ``workers`` processes loads it."""
    from gunicorn.workers.base import Worker

    worker = object.__new__(Worker)
    worker.cfg = types.SimpleNamespace(workers=workers)

    def load_wsgi(self: Any) -> Flask:  # stands in for Worker.load_wsgi
        return build_app(keys, **config)

    return load_wsgi(worker)


def warning_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        record
        for record in caplog.records
        if record.name == LOGGER and "memory:// storage" in record.getMessage()
    ]


@pytest.mark.parametrize(
    ("keys", "config"),
    [
        (LIMITED_KEY, NO_LIMITS),
        (PLAIN_KEY, {**NO_LIMITS, "MCP_DEFAULT_RATE_LIMIT": "100/minute"}),
        (PLAIN_KEY, {**NO_LIMITS, "MCP_ANONYMOUS_RATE_LIMIT": "10/minute"}),
        (PLAIN_KEY, {**NO_LIMITS, "MCP_AUTH_FAILURE_LIMIT": "20 per minute"}),
        (PLAIN_KEY, {}),  # the default failed-attempt limit is a limit too
    ],
    ids=["key-rate-limit", "default-limit", "anonymous-limit", "failure-limit", "defaults"],
)
def test_a_configured_limit_under_several_workers_logs_the_warning(
    caplog: pytest.LogCaptureFixture, keys: Any, config: dict[str, str]
) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    with warnings.catch_warnings(record=True) as python_warnings:
        warnings.simplefilter("always")
        build_in_worker(3, keys, **config)
    assert [w for w in python_warnings if "memory://" in str(w.message)] == []
    (record,) = warning_records(caplog)
    assert record.levelno == logging.WARNING
    message = record.getMessage()
    assert "server with 3 worker processes; each worker counts separately" in message
    assert "up to 3x its limit" in message
    assert "RATELIMIT_STORAGE_URI=redis://" in message
    assert "one worker" in message


def test_no_limit_at_all_logs_nothing(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    build_in_worker(3, PLAIN_KEY, **NO_LIMITS)
    assert warning_records(caplog) == []


def test_one_worker_logs_nothing(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    build_in_worker(1, LIMITED_KEY)
    assert warning_records(caplog) == []


def test_without_a_server_nothing_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    build_app(LIMITED_KEY)
    assert warning_records(caplog) == []


# -- real gunicorn, no logging configured by the app ------------------------------------


def test_gunicorn_without_any_limit_prints_no_warning(start_gunicorn: Any) -> None:
    env = {"MCP_API_KEYS": json.dumps(PLAIN_KEY), "RATELIMIT_STORAGE_URI": "memory://", **NO_LIMITS}
    server = start_gunicorn(2, env)
    assert get(f"{server.url}/data", {"X-API-Key": "plain-key"})[0] == 200
    server.stop()
    assert "memory:// storage" not in server.output()


def test_gunicorn_prints_the_warning_without_a_python_source_line(start_gunicorn: Any) -> None:
    env = {"MCP_API_KEYS": json.dumps(LIMITED_KEY), "RATELIMIT_STORAGE_URI": "memory://"}
    server = start_gunicorn(2, env)
    server.stop()
    output = server.output()
    assert output.count("server with 2 worker processes; each worker counts separately") == 2
    assert "RuntimeWarning" not in output
    assert "warn_if_memory_under_workers" not in output


def test_the_documented_warning_is_the_one_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    build_in_worker(4, LIMITED_KEY)
    (record,) = warning_records(caplog)
    assert record.getMessage() in (DOCS_DIR / "rate-limiting.md").read_text()
    two = record.getMessage().replace("4 worker", "2 worker").replace("4x", "2x")
    assert two in (DOCS_DIR / "example.md").read_text()
