"""Shared fixtures."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask

from flask_mcp_auth import MCPAuth

# Real redis-server and gunicorn fixtures (tests/redis_fixtures.py); hypothesis
# profiles (HYPOTHESIS_PROFILE=ci|long, tests/hypothesis_profiles.py).
pytest_plugins = ["redis_fixtures", "hypothesis_profiles"]

# The Quick Setup document from the user's guide, verbatim.
SEED_KEYS = {
    "chatgpt-connector-key": {
        "name": "ChatGPT Connector",
        "userId": "connector-user",
        "role": "user",
        "permissions": ["*"],
    }
}


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees settings from the developer's shell."""
    import os

    for name in list(os.environ):
        if name.startswith("MCP_") or name in ("JWT_SECRET", "DEBUG"):
            monkeypatch.delenv(name)


@pytest.fixture
def make_app() -> Callable[..., Flask]:
    """Build a Flask app with MCPAuth; keyword arguments go to app.config."""

    def factory(keys: Any = SEED_KEYS, **config: Any) -> Flask:
        app = Flask(__name__)
        app.config["TESTING"] = True
        if keys is not None:
            app.config["MCP_API_KEYS"] = keys if isinstance(keys, str) else json.dumps(keys)
        app.config.update(config)
        MCPAuth(app)

        @app.get("/data")
        def data() -> dict[str, Any]:
            return {"ok": True}

        return app

    return factory
