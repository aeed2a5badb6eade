"""The app tests/processes/test_audit_flush_processes.py serves: gunicorn, or plain python.

The audit destination comes from the environment (MCP_AUDIT_LOG). With
AUDIT_TEST_NO_DEADLINE=1 the flusher thread is never woken, so a batch reaches the file
only through the path under test (interpreter exit, SIGTERM, a worker's exit); with the
deadline on, a stop within 100 ms of the last request could not be told apart from it.

``python audit_app.py PORT`` serves it with Werkzeug's server, which installs no signal
handler: SIGTERM keeps its default action.
"""

from __future__ import annotations

import json
import os
import sys

from flask import Flask

from flask_mcp_auth import MCPAuth, audit_output

KEYS = {"flush-key": {"name": "Flush", "role": "user", "permissions": ["read"]}}


def create_app() -> Flask:
    app = Flask(__name__)
    app.config["MCP_API_KEYS"] = json.dumps(KEYS)
    MCPAuth(app)

    @app.get("/health")
    def health() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/data")
    def data() -> dict[str, int]:
        return {"pid": os.getpid()}

    if os.environ.get("AUDIT_TEST_NO_DEADLINE") == "1":
        audit_output._flusher.wake = lambda: None  # type: ignore[method-assign]
    return app


if __name__ == "__main__":
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", int(sys.argv[1]), create_app())
    print("serving", flush=True)
    server.serve_forever()
