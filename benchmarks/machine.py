"""The description of the machine and software a run was made on, for the page."""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import platform
import shutil
import subprocess
from pathlib import Path

PACKAGES = (
    "flask-mcp-auth",
    "Flask",
    "Werkzeug",
    "Flask-Limiter",
    "limits",
    "itsdangerous",
    "Flask-HTTPAuth",
    "redis",
    "hiredis",
    "gunicorn",
)


def package_versions() -> dict[str, str]:
    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def tool_version(command: list[str]) -> str:
    if shutil.which(command[0]) is None:
        return "not installed"
    done = subprocess.run(command, capture_output=True, text=True, timeout=10, check=False)
    text = (done.stdout or done.stderr).strip().splitlines()
    return text[0] if text else "unknown"


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def describe_machine(load_before: tuple[float, ...]) -> list[str]:
    versions = ", ".join(f"{name} {version}" for name, version in package_versions().items())
    return [
        f"- CPU: {cpu_model()}, {os.cpu_count()} logical cores",
        f"- OS: {platform.platform()}",
        f"- Python: {platform.python_implementation()} {platform.python_version()}",
        f"- Packages: {versions}",
        f"- Tools: {tool_version(['redis-server', '--version'])}; "
        f"{tool_version(['wrk', '--version'])}",
        "- Load average (1, 5, 15 min) before / after the run: "
        f"{'/'.join(f'{x:.2f}' for x in load_before)} / "
        f"{'/'.join(f'{x:.2f}' for x in os.getloadavg())}",
    ]
