"""The benchmark script still runs and produces every row (no timing is asserted).

``benchmarks/bench.py --smoke`` makes a few requests per stack, loads 1,000
keys instead of 100,000 and skips gunicorn, so a change that breaks a stack
(or the script) fails here rather than on the day someone wants numbers.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest
from support.paths import REPO_ROOT

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
    "flask-mcp-auth full, Redis storage",
    "Flask-HTTPAuth + flask-limiter + audit line, Redis storage",
)
HTTPAUTH_ROWS = IN_PROCESS_ROWS[1], IN_PROCESS_ROWS[3]
KEPT_MARKER = (
    "<!-- Everything below this line is kept when benchmarks/bench.py rewrites the page. -->"
)
HAND_WRITTEN = "Where the time goes, written by hand."
FULL_ROWS = IN_PROCESS_ROWS[5], IN_PROCESS_ROWS[6]


def table_rows(markdown: str) -> dict[str, list[str]]:
    """{stack label: its cells} for every row of the results table."""
    rows = {}
    for line in markdown.splitlines():
        if line.startswith("| ") and not line.startswith("| stack "):
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            rows[cells[0]] = cells[1:]
    return rows


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    workdir = tmp_path_factory.mktemp("bench")
    output = workdir / "benchmarks.md"
    # A page from an earlier run, with hand-written notes below the marker.
    output.write_text(f"# Old results\n\n{KEPT_MARKER}\n\n## Analysis\n\n{HAND_WRITTEN}\n")
    done = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--smoke",
            "--output",
            str(output),
            "--workdir",
            str(workdir),
        ],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout, output.read_text(encoding="utf-8")


def test_every_row_is_printed_and_written(smoke_run: tuple[str, str]) -> None:
    printed, written = smoke_run
    for text in (printed, written):
        rows = table_rows(text)
        assert set(rows) == {*IN_PROCESS_ROWS, *GUNICORN_ROWS}


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
