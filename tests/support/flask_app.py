"""The one app builder of the in-process tests: MCPAuth on a Flask app with probing routes."""

from __future__ import annotations

import json
from typing import Any

from flask import Flask, jsonify, request
from flask.typing import ResponseReturnValue

from flask_mcp_auth import MCPAuth, current_principal

from .seed import SEED_QUICK_SETUP_JSON


def build_app(
    keys: Any = SEED_QUICK_SETUP_JSON,
    *,
    options: dict[str, Any] | None = None,
    **config: Any,
) -> Flask:
    """A Flask app using the factory pattern (``MCPAuth()`` then ``init_app``).

    ``keys`` goes to ``app.config["MCP_API_KEYS"]`` (a dict is JSON-encoded, a string is
    used as it is, None leaves it unset; the default is the seed's Quick Setup text),
    ``options`` to the ``MCPAuth`` constructor, keyword arguments to ``app.config``.

    Routes: ``/data`` (GET) answers ``{"ok": true}``; ``/whoami`` (GET, POST) describes
    ``current_principal``; ``/open`` is ``@auth.exempt``; ``POST /mcp`` answers any
    JSON-RPC request with an empty result.
    """
    app = Flask("mcp_auth_tests")
    app.config["TESTING"] = True
    if keys is not None:
        app.config["MCP_API_KEYS"] = keys if isinstance(keys, str) else json.dumps(keys)
    app.config.update(config)
    auth = MCPAuth(**(options or {}))
    auth.init_app(app)

    @app.get("/data")
    def data() -> dict[str, Any]:
        return {"ok": True}

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
