"""The app gunicorn serves in tests/test_key_reload_gunicorn.py.

Keys come from MCP_API_KEYS_FILE (set in the environment by the test).  Every
response names the worker that produced it and when (time.monotonic(), one
clock for every process on Linux), and a request may ask the worker to hold it
for a moment, so that concurrent requests spread over all workers.
"""

from __future__ import annotations

import os
import time

from flask import Flask, Response, request

from flask_mcp_auth import MCPAuth

MAX_HOLD_SECONDS = 0.2


def create_app() -> Flask:
    app = Flask(__name__)

    # Registered before MCPAuth's hook, so refused requests are held too.
    @app.before_request
    def hold() -> None:
        seconds = float(request.headers.get("X-Test-Hold", "0"))
        time.sleep(min(max(seconds, 0.0), MAX_HOLD_SECONDS))

    MCPAuth(app)

    @app.after_request
    def name_the_worker(response: Response) -> Response:
        response.headers["X-Worker-Pid"] = str(os.getpid())
        response.headers["X-Worker-Clock"] = repr(time.monotonic())
        return response

    return app


app = create_app()
