"""The benchmark script still runs and produces every row (no timing is asserted).

``benchmarks/bench.py --smoke`` makes a few requests per stack, loads 1,000
keys instead of 100,000 and skips gunicorn, so a change that breaks a stack
(or the script) fails here rather than on the day someone wants numbers.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest
from support.paths import REPO_ROOT
from support.servers import require_executable

from flask_mcp_auth.config import SETTINGS

SCRIPT = REPO_ROOT / "benchmarks" / "bench.py"

IN_PROCESS_ROWS = (
    "bare Flask",
    "Flask-HTTPAuth token auth",
    "flask-limiter, key_func on the header, minute + hour limits",
    "Flask-HTTPAuth + flask-limiter + one JSON audit line",
    "flask-mcp-auth, authentication only",
    "flask-mcp-auth full (limits + audit), 10 keys",
    "flask-mcp-auth full, the same request with an OAuth access token",
    "flask-mcp-auth full, 1,000 keys",
    "flask-mcp-auth, authentication only, 1,000 keys",
    "bare Flask again (control)",
)
GUNICORN_ROWS = (
    "bare Flask + one EVALSHA per request (the one-round-trip floor)",
    "flask-mcp-auth full, Redis storage",
    "the floor, one Redis connection per worker",
    "flask-mcp-auth full, Redis, one connection per worker",
    "Flask-HTTPAuth + flask-limiter + audit line, Redis storage",
)
HTTPAUTH_ROWS = IN_PROCESS_ROWS[1], IN_PROCESS_ROWS[3]
KEPT_MARKER = (
    "<!-- Everything below this line is kept when benchmarks/bench.py rewrites the page. -->"
)
HAND_WRITTEN = "Where the time goes, written by hand."
FULL_ROWS = IN_PROCESS_ROWS[5], IN_PROCESS_ROWS[6]


RESULTS_HEADER = "| stack | µs per request |"
CPU_HEADER = "| stack | application, µs |"


def table_rows(markdown: str, header: str = RESULTS_HEADER) -> dict[str, list[str]]:
    """{stack label: its cells} for every row of the table whose header starts with ``header``."""
    rows: dict[str, list[str]] = {}
    inside = False
    for line in markdown.splitlines():
        if line.startswith(header):
            inside = True
        elif inside and not line.startswith("|"):
            return rows
        elif inside and not line.startswith("|---"):
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            rows[cells[0]] = cells[1:]
    return rows


def run_bench(workdir: Path, *options: str) -> tuple[str, str]:
    """bench.py with ``options``: what it printed and the page it wrote."""
    output = workdir / "benchmarks.md"
    # A page from an earlier run, with hand-written notes below the marker.
    output.write_text(f"# Old results\n\n{KEPT_MARKER}\n\n## Analysis\n\n{HAND_WRITTEN}\n")
    command = [sys.executable, str(SCRIPT), *options, "--output", str(output)]
    command += ["--workdir", str(workdir)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout, output.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    return run_bench(tmp_path_factory.mktemp("bench"), "--smoke")


@pytest.fixture(scope="module")
def gunicorn_smoke_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """One short wrk round per gunicorn stack, a private redis-server for the Redis rows."""
    require_executable("wrk")
    require_executable("redis-server")
    return run_bench(tmp_path_factory.mktemp("bench-gunicorn"), "--smoke-gunicorn")


def test_every_row_is_printed_and_written(smoke_run: tuple[str, str]) -> None:
    printed, written = smoke_run
    for text in (printed, written):
        rows = table_rows(text)
        assert set(IN_PROCESS_ROWS) <= set(rows)
        assert set(GUNICORN_ROWS) <= set(rows)


def test_gunicorn_rows_have_throughput_and_worker_cpu(
    gunicorn_smoke_run: tuple[str, str],
) -> None:
    written = gunicorn_smoke_run[1]
    rows = table_rows(written)
    served = list(GUNICORN_ROWS[:4])  # the hand-assembled row needs Flask-HTTPAuth
    if importlib.util.find_spec("flask_httpauth") is not None:
        served.append(GUNICORN_ROWS[4])
    for label in ("bare Flask", "flask-mcp-auth full (limits + audit), 10 keys", *served):
        requests_per_second, ratio = rows[label][-2:]
        assert float(requests_per_second.replace(",", "")) > 0, label
        assert float(ratio) > 0, label
    # The CPU table: every gunicorn stack, the application's share and the whole worker's.
    cpu = table_rows(written, CPU_HEADER)
    assert set(cpu) == {"bare Flask", "flask-mcp-auth full, memory://", *served}
    for label, cells in cpu.items():
        application, _, worker, _ = cells
        assert 0 < float(application) < float(worker), label
    # The floor is one round trip a request; the extension's full stack too (MONITOR counts).
    for label in GUNICORN_ROWS[:4]:
        count = re.search(re.escape(label) + r": ([\d.]+)[;.]", written)
        assert count is not None and round(float(count.group(1))) == 1, label
    assert "gunicorn, full with Redis >= 0.90x the one-round-trip floor: " in written
    assert "gunicorn, the same >= 0.90x the floor with one connection per worker: " in written


def test_measured_rows_have_numbers(smoke_run: tuple[str, str]) -> None:
    rows = table_rows(smoke_run[1])
    measured = ["bare Flask", "bare Flask again (control)", "flask-mcp-auth, authentication only"]
    measured.append("flask-mcp-auth, authentication only, 1,000 keys")
    measured.append("flask-limiter, key_func on the header, minute + hour limits")
    measured.append("flask-mcp-auth full, the same request with an OAuth access token")
    if importlib.util.find_spec("flask_httpauth") is not None:
        measured += HTTPAUTH_ROWS
    else:
        assert all(rows[label][0] == "n/a" for label in HTTPAUTH_ROWS)
    names = {setting.name for setting in SETTINGS}
    if {"MCP_DEFAULT_RATE_LIMIT", "MCP_AUDIT_LOG"} <= names:
        measured += FULL_ROWS
    for label in measured:
        per_request, ratio = rows[label][0], rows[label][1]
        assert float(per_request) > 0, label
        assert float(ratio) > 0, label
    assert rows["bare Flask"][1] == "1.00"


def test_document_describes_machine_scaling_and_targets(smoke_run: tuple[str, str]) -> None:
    written = smoke_run[1]
    for heading in ("## Results", "### Scaling", "### Targets", "### Machine"):
        assert heading in written
    assert "- CPU: " in written and "- Python: " in written and "Flask-Limiter " in written
    assert "loading 1,000 keys" in written
    assert "MiB with 1,000 keys" in written
    assert "authentication only <= 1.15x bare: " in written


def test_regenerating_keeps_the_hand_written_notes(smoke_run: tuple[str, str]) -> None:
    written = smoke_run[1]
    assert "# Old results" not in written
    results, notes = written.split(KEPT_MARKER)
    assert "## Results" in results
    assert HAND_WRITTEN in notes
