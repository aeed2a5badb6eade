"""The example MCP service: a Flask app, the MCPAuth extension, and an MCP endpoint.

    gunicorn -c example_app/gunicorn.conf.py              # http://127.0.0.1:3210/mcp
    flask --app example_app.app run --port 3210           # the same, for development

Every request passes the extension first (the key is read, checked and
throttled); the MCP endpoint then insists on a key, and each tool checks the
permissions and role it needs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask

from flask_mcp_auth import MCPAuth, MissingAPIKey, __version__, current_principal

from .environment import announce_demo_configuration, load_environment
from .mcp_protocol import MCPServer
from .notes import NoteStore
from .tools import register_tools

#: Folder for the notes database; default: Flask's instance folder (./instance).
INSTANCE_PATH_VARIABLE = "MCP_EXAMPLE_INSTANCE_PATH"
NOTES_FILE = "notes.sqlite3"
#: One JSON-RPC message is small; refuse larger bodies (413) before reading them.
MAX_MESSAGE_BYTES = 1024 * 1024

INSTRUCTIONS = (
    "A notes service. Use list_notes to read notes and add_note to save one; "
    "whoami shows what your API key may do."
)


def create_app(
    config: Mapping[str, Any] | None = None, *, instance_path: str | os.PathLike[str] | None = None
) -> Flask:
    """Build the service.

    Without ``config`` the settings come from the environment and the dotenv
    file (see :mod:`example_app.environment`), with the demo notice when the
    demo keys are in force; with it (tests), ``config`` is applied to
    ``app.config`` and no dotenv file is read.  The notes live in
    ``instance_path``, else ``$MCP_EXAMPLE_INSTANCE_PATH``, else Flask's
    instance folder.
    """
    if config is None:
        load_environment()
        # Under gunicorn.conf.py the master has already announced it; the workers stay quiet.
        announce_demo_configuration()
    folder = instance_path or os.environ.get(INSTANCE_PATH_VARIABLE) or None
    app = Flask(__name__, instance_path=str(Path(folder).resolve()) if folder else None)
    app.config["MAX_CONTENT_LENGTH"] = MAX_MESSAGE_BYTES
    app.config.update(config or {})
    auth = MCPAuth(app)

    notes = NoteStore(Path(app.instance_path) / NOTES_FILE)
    server = MCPServer("flask-mcp-auth-example", __version__, instructions=INSTRUCTIONS)
    register_tools(server, notes, auth)
    server.register_endpoint(app, "/mcp", guard=require_key)
    return app


def require_key() -> None:
    """The MCP endpoint always needs a key; MCP_DEFAULT_ROLE only opens other routes."""
    if not current_principal.is_authenticated:
        raise MissingAPIKey()
