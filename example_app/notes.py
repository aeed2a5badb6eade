"""The notes the example tools read and write: one SQLite file, safe across gunicorn workers.

Each operation opens its own connection, so nothing is shared between
threads or inherited across a fork; SQLite's file locking serialises writers
from different worker processes (``timeout`` makes a writer wait, not fail).
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS notes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    text TEXT NOT NULL,
    author TEXT NOT NULL,
    created_at TEXT NOT NULL
)
"""
_LOCK_WAIT_SECONDS = 10.0


@dataclass(frozen=True)
class Note:
    id: int
    text: str
    author: str
    created_at: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class NoteStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._connect()) as connection, connection:
            connection.execute(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=_LOCK_WAIT_SECONDS)

    def add(self, text: str, author: str) -> Note:
        created_at = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        with closing(self._connect()) as connection, connection:
            cursor = connection.execute(
                "INSERT INTO notes (text, author, created_at) VALUES (?, ?, ?)",
                (text, author, created_at),
            )
            note_id = cursor.lastrowid
        assert note_id is not None
        return Note(note_id, text, author, created_at)

    def latest(self, limit: int) -> list[Note]:
        """The ``limit`` newest notes, oldest first."""
        with closing(self._connect()) as connection:
            rows = connection.execute(
                "SELECT id, text, author, created_at FROM notes ORDER BY id DESC LIMIT ?",
                (limit,),
            ).fetchall()
        return [Note(*row) for row in reversed(rows)]
