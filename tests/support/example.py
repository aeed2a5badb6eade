"""Helpers for the example-service tests: keys per permission level, the example app,
and the official ``mcp`` client in-process or over a socket.

gunicorn serving the example is ``servers.GunicornServer`` with ``GUNICORN_CONF``."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
from asgiref.wsgi import WsgiToAsgi
from flask import Flask
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from example_app.app import create_app

from .paths import REPO_ROOT
from .seed import SEED_KEY, SEED_KEYS
from .servers import GunicornServer

GUNICORN_CONF = REPO_ROOT / "example_app" / "gunicorn.conf.py"
DEMO_DOTENV = REPO_ROOT / "example_app" / ".env.example"
IN_PROCESS_URL = "http://testserver/mcp"

# Tool names, as example_app/tools.py registers them.
EVERY_TOOL = {"whoami", "echo", "list_notes", "add_note", "list_keys"}


@dataclass(frozen=True)
class Level:
    """One permission level: its key, and what it may and may not call."""

    key: str
    definition: dict[str, Any]
    visible: frozenset[str]
    #: forbidden tool -> a phrase the refusal must contain
    forbidden: dict[str, str] = field(default_factory=dict)


LEVELS: dict[str, Level] = {
    "no-permissions": Level(
        "test-nobody-key",
        {"name": "Nobody", "role": "guest", "permissions": []},
        frozenset({"whoami"}),
        {
            "echo": "permission 'read'",
            "list_notes": "permission 'read'",
            "add_note": "permission 'write'",
            "list_keys": "role 'admin'",
        },
    ),
    "read": Level(
        "test-reader-key",
        {"name": "Reader", "userId": "reader", "role": "user", "permissions": ["read"]},
        frozenset({"whoami", "echo", "list_notes"}),
        {"add_note": "permission 'write'", "list_keys": "role 'admin'"},
    ),
    "read-write": Level(
        "test-writer-key",
        {"name": "Writer", "userId": "writer", "role": "user", "permissions": ["read", "write"]},
        frozenset({"whoami", "echo", "list_notes", "add_note"}),
        {"list_keys": "role 'admin'"},
    ),
    "seed (*, role user)": Level(
        SEED_KEY,
        dict(SEED_KEYS[SEED_KEY]),
        frozenset({"whoami", "echo", "list_notes", "add_note"}),
        {"list_keys": "role 'admin'"},
    ),
    "admin role, read only": Level(
        "test-admin-key",
        {"name": "Admin", "userId": "admin", "role": "admin", "permissions": ["read"]},
        frozenset({"whoami", "echo", "list_notes", "list_keys"}),
        {"add_note": "permission 'write'"},
    ),
}

EXPIRED_KEY = "test-expired-key"
TEST_KEYS: dict[str, dict[str, Any]] = {
    **{level.key: level.definition for level in LEVELS.values()},
    EXPIRED_KEY: {
        "name": "Expired",
        "role": "user",
        "permissions": ["*"],
        "expiresAt": "2020-01-01T00:00:00Z",
    },
}


def make_example_app(
    instance_path: Path, keys: Mapping[str, Any] = TEST_KEYS, **config: Any
) -> Flask:
    """The example service with ``keys``, its notes under ``instance_path``; no dotenv file."""
    return create_app(
        {"TESTING": True, "MCP_API_KEYS": json.dumps(keys), **config},
        instance_path=instance_path,
    )


@asynccontextmanager
async def connect(
    url: str,
    headers: Mapping[str, str] | None = None,
    *,
    app: Flask | None = None,
) -> AsyncIterator[Client]:
    """The official client, connected to ``url`` (through ``app`` in-process when given)."""
    transport = httpx2.ASGITransport(app=WsgiToAsgi(app)) if app is not None else None
    async with (
        httpx2.AsyncClient(
            transport=transport, headers=dict(headers or {}), timeout=httpx2.Timeout(30)
        ) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        yield client


def mcp_errors(group: BaseExceptionGroup[Any]) -> list[MCPError]:
    """Every MCPError in a (nested) ExceptionGroup, as a failed connect raises them."""
    found: list[MCPError] = []
    for error in group.exceptions:
        if isinstance(error, BaseExceptionGroup):
            found.extend(mcp_errors(error))
        elif isinstance(error, MCPError):
            found.append(error)
    return found


async def connect_failure(
    url: str, headers: Mapping[str, str] | None = None, *, app: Flask | None = None
) -> MCPError:
    """Connect and expect the connection to be refused; return the client's MCPError."""
    errors: list[MCPError] = []
    try:
        async with connect(url, headers, app=app):
            pass
    except* MCPError as group:
        errors = mcp_errors(group)
    assert len(errors) == 1, f"expected one MCPError from the refused connect, got {errors}"
    return errors[0]


def tool_text(result: Any) -> str:
    return "".join(part.text for part in result.content if part.type == "text")


def example_gunicorn(log_dir: Path, env: Mapping[str, str]) -> GunicornServer:
    """``gunicorn -c example_app/gunicorn.conf.py`` on a free loopback port (not started).

    The port reaches the config file through ``MCP_EXAMPLE_BIND``, as a user would set it.
    """
    return GunicornServer(
        None,
        config=GUNICORN_CONF,
        bind_env="MCP_EXAMPLE_BIND",
        ready_path="/mcp/status",
        env=env,
        log_path=log_dir / "gunicorn.log",
    )


def gunicorn_settings(
    env: Mapping[str, str], names: tuple[str, ...] = ("workers", "threads", "worker_class")
) -> dict[str, object]:
    """The settings example_app/gunicorn.conf.py gives gunicorn under ``env`` (read by
    running the config file as gunicorn does, in a child process)."""
    probe = (
        "import json, runpy, sys; s = runpy.run_path(sys.argv[1]); "
        "print(json.dumps({k: s.get(k) for k in sys.argv[2:]}))"
    )
    run = subprocess.run(
        [sys.executable, "-c", probe, str(GUNICORN_CONF), *names],
        cwd=REPO_ROOT,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    settings: dict[str, object] = json.loads(run.stdout.strip().splitlines()[-1])
    return settings
