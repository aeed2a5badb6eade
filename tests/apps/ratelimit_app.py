"""A tiny service for the multi-process rate-limit tests; configured by the environment.

MCP_API_KEYS, RATELIMIT_STORAGE_URI and the other settings come from the
environment, as in a deployment.  ``/health`` is exempt and not rate limited
by any key, so readiness checks do not use up a key's budget.
"""

from __future__ import annotations

import json
import os

from flask import Flask

from flask_mcp_auth import MCPAuth


def create_app(storage_options: str = "") -> Flask:
    """``storage_options``: JSON for RATELIMIT_STORAGE_OPTIONS (the Redis client's options)."""
    app = Flask(__name__)
    if storage_options:
        app.config["RATELIMIT_STORAGE_OPTIONS"] = json.loads(storage_options)
    auth = MCPAuth(app)

    @app.get("/health")
    @auth.exempt
    def health() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/data")
    def data() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/pid")
    def pid() -> dict[str, int]:
        return {"pid": os.getpid()}  # which worker answered (a counted request, like /data)

    return app
