"""The example's tools, and what each one requires of the caller's API key."""

from __future__ import annotations

from typing import Any

from flask_mcp_auth import APIKey, MCPAuth, current_principal

from .mcp_protocol import MCPServer, ToolError
from .notes import NoteStore

MAX_NOTE_LENGTH = 2000
MAX_NOTES_LISTED = 100


def register_tools(server: MCPServer, notes: NoteStore, auth: MCPAuth) -> None:
    @server.tool("Who the server thinks you are: the name, role and permissions of your key.")
    def whoami() -> dict[str, Any]:
        return current_principal.to_dict()

    @server.tool(
        "Echo a text back. Needs the 'read' permission.",
        {
            "type": "object",
            "properties": {"text": {"type": "string", "description": "The text to echo."}},
            "required": ["text"],
            "additionalProperties": False,
        },
        permissions=["read"],
    )
    def echo(text: str) -> str:
        return text

    @server.tool(
        "List the newest notes, oldest first. Needs the 'read' permission.",
        {
            "type": "object",
            "properties": {
                "limit": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": MAX_NOTES_LISTED,
                    "description": f"How many notes (default 20, at most {MAX_NOTES_LISTED}).",
                }
            },
            "additionalProperties": False,
        },
        permissions=["read"],
    )
    def list_notes(limit: int = 20) -> dict[str, Any]:
        return {"notes": [note.to_dict() for note in notes.latest(limit)]}

    @server.tool(
        "Save a note. Needs the 'write' permission.",
        {
            "type": "object",
            "properties": {
                "text": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": MAX_NOTE_LENGTH,
                    "description": "The note.",
                }
            },
            "required": ["text"],
            "additionalProperties": False,
        },
        permissions=["write"],
    )
    def add_note(text: str) -> dict[str, Any]:
        if not text.strip():
            raise ToolError("A note needs some text.")
        author = current_principal.name or current_principal.user_id or "unnamed key"
        return notes.add(text, author).to_dict()

    @server.tool(
        "List the configured API keys by name and fingerprint (never the key itself). "
        "Needs the 'admin' role.",
        role="admin",
    )
    def list_keys() -> dict[str, Any]:
        # Read the store at call time: it may be reloaded while the app runs.
        return {"keys": [_describe_key(key) for key in auth.store]}


def _describe_key(key: APIKey) -> dict[str, Any]:
    return {**key.public_view(), "expired": key.is_expired()}
