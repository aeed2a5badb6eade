"""Fixtures for the whole suite.

Helpers live in the ``tests/support`` package; this file only turns them into
fixtures.  The one autouse fixture here, ``_clean_environment``, is meant for every
test.  ``clean_logging`` is applied by the modules that configure logging, with
``pytestmark = pytest.mark.usefixtures("clean_logging")``.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from flask import Flask
from support import hypothesis_profiles
from support.audit import ALL_LOGGERS, RecordingHandler, build_audit_app
from support.browser import JAVASCRIPT_OFF, headless_chromium, missing_browser_parts
from support.flask_app import build_app
from support.servers import (
    GunicornServer,
    RedisClusterDeployment,
    RedisSentinelDeployment,
    RedisServer,
    require_executable,
)

from flask_mcp_auth.audit import AUDIT_LOGGER, configure_audit_output
from flask_mcp_auth.debug import configure_debug

if TYPE_CHECKING:
    from selenium.webdriver.chrome.webdriver import WebDriver


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    hypothesis_profiles.mark_long_timeouts(items)


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees settings from the developer's shell.

    ``MCP_TEST_*`` stays: it configures the test harness (e.g. ``MCP_TEST_CHROMIUM``), never
    the package.
    """
    for name in list(os.environ):
        harness = name.startswith("MCP_TEST_")
        if (name.startswith("MCP_") and not harness) or name in ("JWT_SECRET", "DEBUG"):
            monkeypatch.delenv(name)


# -- apps in-process ----------------------------------------------------------------


@pytest.fixture
def make_app() -> Callable[..., Flask]:
    """``support.flask_app.build_app`` as a fixture: ``make_app(keys, **app_config)``."""
    return build_app


@pytest.fixture
def audit_app() -> Callable[..., Flask]:
    """``support.audit.build_audit_app``: MCPAuth and a view per audited outcome."""
    return build_audit_app


# -- logging ------------------------------------------------------------------------


@pytest.fixture
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


# -- signals ------------------------------------------------------------------------


@pytest.fixture
def restore_sighup() -> Iterator[None]:
    """Put back the process's SIGHUP handler after a test that lets MCPAuth take it."""
    previous = signal.getsignal(signal.SIGHUP)
    yield
    signal.signal(signal.SIGHUP, previous)


# -- real servers -------------------------------------------------------------------


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A private redis-server on a free loopback port (skips without redis-server)."""
    server = RedisServer(require_executable("redis-server"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def start_gunicorn(tmp_path: Path) -> Iterator[Callable[..., GunicornServer]]:
    """start_gunicorn(workers, env[, extra_args, app]) gives a ready server; all stop at the end.

    ``app`` is a spec in tests/apps (``ratelimit_app:create_app()`` unless told).
    """
    servers: list[GunicornServer] = []

    def start(
        workers: int,
        env: Mapping[str, str],
        extra_args: Sequence[str] = (),
        app: str = "ratelimit_app:create_app()",
        **options: Any,
    ) -> GunicornServer:
        server = GunicornServer(
            app,
            workers=workers,
            env=env,
            extra_args=extra_args,
            graceful_timeout=2,
            log_path=tmp_path / f"gunicorn-{len(servers)}.log",
            **options,
        )
        servers.append(server)
        return server.start()

    try:
        yield start
    finally:
        for server in servers:
            server.stop()


@pytest.fixture
def sentinel_deployment(tmp_path: Path) -> Iterator[RedisSentinelDeployment]:
    """A primary, a replica and three sentinels on loopback, stopped after the test."""
    deployment = RedisSentinelDeployment(require_executable("redis-server"), tmp_path)
    try:
        yield deployment.start()
    finally:
        deployment.stop()


@pytest.fixture(scope="module")
def cluster_deployment(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RedisClusterDeployment]:
    """A three-primary Redis Cluster on loopback, one per test module."""
    cluster = RedisClusterDeployment(
        require_executable("redis-server"),
        require_executable("redis-cli"),
        tmp_path_factory.mktemp("cluster"),
    )
    try:
        yield cluster.start()
    finally:
        cluster.stop()


@pytest.fixture
def redis_cluster(cluster_deployment: RedisClusterDeployment) -> RedisClusterDeployment:
    """The module's cluster, emptied for each test."""
    for port in cluster_deployment.ports:
        cluster_deployment.client(port).flushall()
    return cluster_deployment


# -- a real browser -----------------------------------------------------------------


def _require_browser() -> None:
    problems = missing_browser_parts()
    if problems:
        reason = "; ".join(problems)
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{reason} (CI=true, so this test must run)", pytrace=False)
        pytest.skip(reason)


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    """A headless chromium ``WebDriver`` (``support.browser.headless_chromium``), quit after.

    Skips with what is missing and how to install it; under CI=true a missing browser fails.
    """
    _require_browser()
    with headless_chromium() as driver:
        yield driver


@pytest.fixture
def browser_without_javascript() -> Iterator[WebDriver]:
    """The same headless chromium with JavaScript turned off on every page (skips alike)."""
    _require_browser()
    with headless_chromium(prefs=JAVASCRIPT_OFF) as driver:
        yield driver
