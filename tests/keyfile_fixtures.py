"""Helpers for tests of MCP_API_KEYS_FILE and live reload (imported by those tests)."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


def write_atomically(path: Path, keys: Any) -> None:
    """Replace the key file the recommended way: write a temporary file, then rename."""
    text = keys if isinstance(keys, str) else json.dumps(keys, indent=2)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


def write_in_place(path: Path, keys: Any) -> None:
    """Rewrite the key file in place (same inode), as many editors do."""
    text = keys if isinstance(keys, str) else json.dumps(keys, indent=2)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)


@pytest.fixture
def restore_sighup() -> Iterator[None]:
    """Put back the process's SIGHUP handler after a test that lets MCPAuth take it."""
    previous = signal.getsignal(signal.SIGHUP)
    yield
    signal.signal(signal.SIGHUP, previous)


class FakeClock:
    """A monotonic clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
