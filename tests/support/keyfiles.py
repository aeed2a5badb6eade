"""Rewriting an MCP_API_KEYS_FILE the ways operators and editors do."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


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
