"""Stopping the servers tests start (redis-server, gunicorn) without leaving strays."""

from __future__ import annotations

import subprocess


def stop_process(process: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    """SIGTERM, wait up to ``timeout`` seconds for a graceful exit, then SIGKILL."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)
