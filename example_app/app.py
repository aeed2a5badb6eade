"""Example Flask MCP service protected by flask-mcp-auth (placeholder until the example lands)."""

from __future__ import annotations

import sys
from pathlib import Path

from dotenv import load_dotenv
from flask import Flask, jsonify

from flask_mcp_auth import MCPAuth, current_principal

HERE = Path(__file__).resolve().parent


def load_environment() -> None:
    """Load example_app/.env, or the demo .env.example when there is none."""
    env_file = HERE / ".env"
    if env_file.exists():
        load_dotenv(env_file)
        return
    load_dotenv(HERE / ".env.example")
    print(
        "*" * 72 + "\n* DEMO CONFIGURATION: example_app/.env.example is in use.\n"
        "* Its keys are public. Copy it to example_app/.env and change them.\n" + "*" * 72,
        file=sys.stderr,
    )


def create_app() -> Flask:
    load_environment()
    app = Flask(__name__)
    MCPAuth(app)

    @app.get("/")
    def index():  # type: ignore[no-untyped-def]
        return jsonify(service="flask-mcp-auth example", caller=current_principal.name)

    return app
