"""Fixtures for the Node MCP clients: the installed clients and the example service.

Without the clients (or with other versions than package.json pins) the tests skip with
the command that installs them; under CI (CI=true) they fail.  Helpers are in
clients_support.py.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator

import pytest
from clients_support import (
    CLIENT_KEYS,
    INSTALL_COMMAND,
    NODE_MODULES,
    NodeClients,
    missing_clients,
    pinned_versions,
)
from support.example import DEMO_DOTENV, example_gunicorn
from support.servers import GunicornServer


@pytest.fixture(scope="session")
def node_clients() -> NodeClients:
    """The pinned Node clients; skips (fails under CI=true) when they are not installed."""
    problems = missing_clients()
    if problems:
        reason = f"{'; '.join(problems)}: run `{INSTALL_COMMAND}`"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{reason} (CI=true, so these tests must run)", pytrace=False)
        pytest.skip(reason)
    node = (NODE_MODULES / ".bin" / "node").resolve()
    version = subprocess.run(
        [str(node), "--version"], capture_output=True, text=True, timeout=30, check=True
    ).stdout.strip()
    assert version.startswith("v22."), f"{node} is {version}, not Node 22"
    return NodeClients(node=node, versions=pinned_versions())


@pytest.fixture(scope="session")
def client_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GunicornServer]:
    """The example service under gunicorn (its own config file) with the test keys."""
    folder = tmp_path_factory.mktemp("clients-server")
    env = {
        "MCP_API_KEYS": json.dumps(CLIENT_KEYS),
        "MCP_EXAMPLE_DOTENV": str(DEMO_DOTENV),
        "MCP_EXAMPLE_INSTANCE_PATH": str(folder / "instance"),
    }
    server = example_gunicorn(folder, env)
    try:
        server.start()
        yield server
    finally:
        server.stop()
