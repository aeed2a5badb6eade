"""A small Flask MCP service for the security tests, in-process and under gunicorn.

Its configuration comes from the environment (MCP_API_KEYS, JWT_SECRET, ...) or
from ``create_app(**config)``, so the same app shows how a real deployment
starts and how it refuses to.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, jsonify, request
from flask.typing import ResponseReturnValue

from flask_mcp_auth import MCPAuth, current_principal, require_permission, require_role


def create_app(**config: Any) -> Flask:
    app = Flask(__name__)
    app.config.update(config)
    auth = MCPAuth(app)

    @app.get("/health")
    @auth.exempt
    def health() -> ResponseReturnValue:
        # Readiness probe of tests/redis_fixtures.py: no key, counted against nothing.
        return jsonify(ok=True)

    @app.route("/data", methods=["GET", "POST"])
    def data() -> ResponseReturnValue:
        # Open to anonymous callers (MCP_DEFAULT_ROLE, guest by default).
        return jsonify(ok=True, role=current_principal.role)

    @app.route("/read", methods=["GET", "POST"])
    @require_permission("read")
    def read() -> ResponseReturnValue:
        return jsonify(ok=True, user=current_principal.user_id)

    @app.route("/admin", methods=["GET", "POST"])
    @require_role("admin")
    def admin() -> ResponseReturnValue:
        return jsonify(ok=True, user=current_principal.user_id)

    @app.post("/mcp")
    @require_permission("read")
    def mcp() -> ResponseReturnValue:
        # Stands in for a JSON-RPC dispatcher: the tests only reach it with a valid key.
        return jsonify(jsonrpc="2.0", id=None, result={"bytes": len(request.get_data())})

    return app
