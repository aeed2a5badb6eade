"""Key loading time: building the full configuration from a key file of many keys."""

from __future__ import annotations

import time
from pathlib import Path

import stacks
from flask import Flask

#: Where the scaling probes' keys come from, as the page describes it.
KEY_SOURCE = "a key file (`MCP_API_KEYS_FILE`)"


def key_file(key_count: int, workdir: Path) -> Path:
    """A key store of ``key_count`` keys as a JSON file, written once per run."""
    path = workdir / f"keys-{key_count}.json"
    if not path.exists():
        path.write_text(stacks.key_store(key_count, rate_limited=True))
    return path


def load_full_app(key_count: int, workdir: Path) -> tuple[Flask, float]:
    """The full configuration with ``key_count`` keys, and the CPU seconds it took to build.

    The keys come from a file the parent wrote, as a worker would get them: through
    MCP_API_KEYS_FILE.
    """
    path = key_file(key_count, workdir)
    started = time.process_time()
    app = stacks.mcp_full(str(workdir / f"probe-{key_count}.log"), keys_file=str(path))
    return app, time.process_time() - started
