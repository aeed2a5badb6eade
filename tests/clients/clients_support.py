"""Helpers for the Node MCP client tests (tests/clients/package.json, installed by `npm ci`).

The clients and the Node 22 that runs them (the npm package ``node``) live in
tests/clients/node_modules.  Without them, or with versions other than the pinned ones,
the tests skip with the command that installs them; under CI (CI=true) they fail.
Every client run is bounded in time and leaves no process behind: each child carries
a marker in its environment, and whatever still carries it afterwards is killed, with
its process group.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from support.example import TEST_KEYS
from support.servers import child_environment

CLIENTS_DIR = Path(__file__).resolve().parent
NODE_MODULES = CLIENTS_DIR / "node_modules"
PACKAGE_JSON = CLIENTS_DIR / "package.json"
INSTALL_COMMAND = "npm ci --prefix tests/clients"
#: The environment variable that marks every process a client test starts.
MARKER = "FLASK_MCP_AUTH_CLIENT_TEST"
RUN_TIMEOUT = 45.0  # seconds for one client run; a run takes 1-3 s

#: A key whose limit is reached within a few calls (one test uses it, once).
LIMITED_KEY = "test-limited-key"
LIMITED_PER_MINUTE = 5
CLIENT_KEYS: dict[str, Any] = {
    **TEST_KEYS,
    LIMITED_KEY: {
        "name": "Limited",
        "role": "user",
        "permissions": ["read"],
        "rateLimit": {"requestsPerMinute": LIMITED_PER_MINUTE},
    },
}


def pinned_versions() -> dict[str, str]:
    """package.json's dependencies: name -> exact version."""
    return dict(json.loads(PACKAGE_JSON.read_text())["dependencies"])


@dataclass(frozen=True)
class NodeClients:
    """Where the installed clients are; ``run`` starts one, bounded and cleaned up."""

    node: Path
    versions: dict[str, str]

    @property
    def sdk_script(self) -> Path:
        return CLIENTS_DIR / "sdk_client.mjs"

    @property
    def mcp_remote(self) -> Path:
        return NODE_MODULES / "mcp-remote" / "dist" / "proxy.js"

    @property
    def inspector_bin(self) -> Path:
        bin_entry = json.loads(
            (NODE_MODULES / "@modelcontextprotocol" / "inspector" / "package.json").read_text()
        )["bin"]["mcp-inspector"]
        return (NODE_MODULES / "@modelcontextprotocol" / "inspector" / bin_entry).resolve()

    def environment(self, home: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """A child environment: no auth settings, HOME in ``home``, the marker, ``extra``."""
        env = child_environment(extra)
        env.update(
            {
                "HOME": str(home),
                "MCP_REMOTE_CONFIG_DIR": str(home / ".mcp-auth"),
                MARKER: uuid.uuid4().hex,
                "NO_COLOR": "1",
            }
        )
        env.pop("CI", None)  # the Inspector changes its output under CI; the user's shell has none
        return env

    def run(
        self, args: Sequence[str], env: Mapping[str, str], timeout: float = RUN_TIMEOUT
    ) -> subprocess.CompletedProcess[str]:
        """``node args...`` with stdin closed (no TTY), killed with its group after ``timeout``."""
        process = subprocess.Popen(
            [str(self.node), *args],
            env=dict(env),
            cwd=str(CLIENTS_DIR),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(process.pid)
            stdout, stderr = process.communicate(timeout=10)
            pytest.fail(f"{args[0]} did not finish in {timeout} s:\n{stdout}\n{stderr}")
        finally:
            kill_marked(env[MARKER])
        return subprocess.CompletedProcess(args, process.returncode, stdout, stderr)


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def kill_marked(marker: str) -> None:
    """Kill every process (and its process group) whose environment carries ``marker``."""
    needle = f"{MARKER}={marker}".encode()
    for _ in range(3):
        found = False
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                environ = (entry / "environ").read_bytes()
            except OSError:
                continue
            if needle in environ.split(b"\0"):
                found = True
                pid = int(entry.name)
                try:
                    _kill_group(os.getpgid(pid))
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
        if not found:
            return
        time.sleep(0.1)


def missing_clients() -> list[str]:
    if not NODE_MODULES.is_dir():
        return ["the Node MCP clients are not installed (no tests/clients/node_modules)"]
    problems = []
    node = NODE_MODULES / ".bin" / "node"
    if not node.exists():
        problems.append("Node 22 (the npm package 'node') is not installed")
    for name, version in pinned_versions().items():
        manifest = NODE_MODULES / name / "package.json"
        if not manifest.exists():
            problems.append(f"{name} is not installed")
            continue
        installed = json.loads(manifest.read_text())["version"]
        if installed != version:
            problems.append(f"{name} {installed} is installed, package.json pins {version}")
    return problems
