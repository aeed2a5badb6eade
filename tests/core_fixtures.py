"""Helpers for the core test suite (issue 2): an app with a few probing routes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import pytest
from flask import Flask, jsonify, request
from flask.typing import ResponseReturnValue

from flask_mcp_auth import MCPAuth, _time, current_principal

# The seed's Quick Setup step 1, exactly as a user pastes it into a shell.
SEED_QUICK_SETUP_JSON = """{
  "chatgpt-connector-key": {
    "name": "ChatGPT Connector",
    "userId": "connector-user",
    "role": "user",
    "permissions": ["*"]
  }
}"""
SEED_KEY = "chatgpt-connector-key"

# The seed's "API Key Configuration Options" example (its expiresAt is already past).
SEED_FULL_ENTRY_JSON = """{
  "chatgpt-connector-key": {
    "name": "ChatGPT Connector",
    "userId": "connector-user",
    "role": "user",
    "permissions": ["*"],
    "rateLimit": {
      "requestsPerMinute": 100,
      "requestsPerHour": 1000
    },
    "expiresAt": "2025-12-31T23:59:59Z"
  }
}"""


def build_app(
    keys: Any = SEED_QUICK_SETUP_JSON,
    *,
    options: dict[str, Any] | None = None,
    **config: Any,
) -> Flask:
    """A Flask app using the factory pattern (``MCPAuth()`` then ``init_app``).

    ``keys`` goes to ``app.config["MCP_API_KEYS"]`` (a dict is JSON-encoded; None leaves it
    unset), ``options`` to the ``MCPAuth`` constructor, keyword arguments to ``app.config``.

    Routes: ``/whoami`` (GET, POST) describes ``current_principal``; ``/open`` is
    ``@auth.exempt``; ``POST /mcp`` answers any JSON-RPC request with an empty result.
    """
    app = Flask("core_tests")
    app.config["TESTING"] = True
    if keys is not None:
        app.config["MCP_API_KEYS"] = keys if isinstance(keys, str) else json.dumps(keys)
    app.config.update(config)
    auth = MCPAuth(**(options or {}))
    auth.init_app(app)

    @app.route("/whoami", methods=["GET", "POST"])
    def whoami() -> ResponseReturnValue:
        return jsonify(describe_principal())

    @app.get("/open")
    @auth.exempt
    def open_view() -> ResponseReturnValue:
        return jsonify(open=True, role=current_principal.role)

    @app.post("/mcp")
    def mcp() -> ResponseReturnValue:
        message = request.get_json(silent=True) or {}
        return jsonify(jsonrpc="2.0", id=message.get("id"), result={})

    return app


def describe_principal() -> dict[str, Any]:
    expires_at = current_principal.expires_at
    return {
        "is_authenticated": current_principal.is_authenticated,
        "name": current_principal.name,
        "user_id": current_principal.user_id,
        "role": current_principal.role,
        "permissions": sorted(current_principal.permissions),
        "expires_at": expires_at.isoformat() if expires_at else None,
        "credential_source": current_principal.credential_source,
        "key_fingerprint": current_principal.key_fingerprint,
    }


@contextmanager
def frozen_clock(monkeypatch: pytest.MonkeyPatch, moment: datetime) -> Iterator[None]:
    """Make the key store believe it is ``moment`` (expiry checks and start-up warnings)."""
    with monkeypatch.context() as patch:
        patch.setattr(_time, "now", lambda: moment)
        yield
