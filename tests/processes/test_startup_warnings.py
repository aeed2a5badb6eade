"""Start-up warnings in real processes that configured no logging: ``python -c``,
``flask run`` and gunicorn print them on stderr; with ``logging.basicConfig`` they go
only where the application said."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from support.paths import REPO_ROOT
from support.servers import GunicornServer, child_environment, free_port, stop_process

EMPTY_STORE_LINE = (
    "flask_mcp_auth WARNING: MCP_API_KEYS is unset or empty: no API keys are configured"
)
EXPIRED_KEY_ID = "old-key-3c9d51e0"
EXPIRED_KEYS = json.dumps(
    {EXPIRED_KEY_ID: {"name": "Old Connector", "expiresAt": "2020-01-01T00:00:00Z"}}
)
EXPIRED_PREFIX = "flask_mcp_auth WARNING: API key Old Connector ["
EXPIRED_SUFFIX = "] expired at 2020-01-01T00:00:00+00:00"

#: Two apps, one without keys and one with an expired key; no logging configured.
TWO_APPS = """
import os
from flask import Flask
from flask_mcp_auth import MCPAuth

{configure}
MCPAuth(Flask("empty"))
expired = Flask("expired")
expired.config["MCP_API_KEYS"] = os.environ["EXPIRED_KEYS"]
MCPAuth(expired)
print("apps built")
"""

#: What flask run and gunicorn serve: keys from the environment (none, here).
SERVED_APP = """
from flask import Flask
from flask_mcp_auth import MCPAuth

def create_app():
    app = Flask(__name__)
    auth = MCPAuth(app)

    @app.get("/health")
    @auth.exempt
    def health():
        return "ok"

    return app
"""


def run_python(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        env=child_environment({"EXPIRED_KEYS": EXPIRED_KEYS}),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )


def assert_both_warnings_once(text: str) -> None:
    lines = text.splitlines()
    assert lines.count(EMPTY_STORE_LINE) == 1, text
    expired = [line for line in lines if line.startswith(EXPIRED_PREFIX)]
    assert len(expired) == 1 and expired[0].endswith(EXPIRED_SUFFIX), text
    assert EXPIRED_KEY_ID not in text


def test_without_logging_configured_the_warnings_reach_stderr(tmp_path: Path) -> None:
    result = run_python(TWO_APPS.format(configure=""), tmp_path)
    assert result.stdout == "apps built\n"
    assert_both_warnings_once(result.stderr)
    assert len(result.stderr.splitlines()) == 2  # nothing else: no DEBUG, no INFO


def test_with_basic_config_to_a_file_the_warnings_go_only_there(tmp_path: Path) -> None:
    log_file = tmp_path / "app.log"
    configure = (
        "import logging\n"
        f"logging.basicConfig(stream=open({str(log_file)!r}, 'a'), "
        "format='%(levelname)s %(name)s %(message)s')"
    )
    result = run_python(TWO_APPS.format(configure=configure), tmp_path)
    assert result.stderr == ""
    text = log_file.read_text()
    assert "WARNING flask_mcp_auth.keys MCP_API_KEYS is unset or empty" in text
    assert "WARNING flask_mcp_auth.keys API key Old Connector [" in text
    assert "flask_mcp_auth WARNING:" not in text  # the application's format, not ours


def test_with_basic_config_on_stderr_each_warning_is_printed_once(tmp_path: Path) -> None:
    configure = "import logging\nlogging.basicConfig(format='app: %(message)s')"
    result = run_python(TWO_APPS.format(configure=configure), tmp_path)
    lines = result.stderr.splitlines()
    assert lines.count("app: MCP_API_KEYS is unset or empty: no API keys are configured") == 1
    assert not [line for line in lines if line.startswith("flask_mcp_auth ")]


def read_stderr_until(process: subprocess.Popen[bytes], wanted: str, deadline: float) -> str:
    """What the process wrote to stderr until a line holds ``wanted``, it ended, or time ran out."""
    assert process.stderr is not None
    fd = process.stderr.fileno()
    received = b""
    end = time.monotonic() + deadline
    while wanted.encode() not in received and (remaining := end - time.monotonic()) > 0:
        readable, _, _ = select.select([fd], [], [], remaining)
        if not readable:
            break
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        received += chunk
    return received.decode(errors="replace")


def test_flask_run_prints_the_empty_store_warning(tmp_path: Path) -> None:
    (tmp_path / "served_app.py").write_text(textwrap.dedent(SERVED_APP))
    command = [sys.executable, "-m", "flask", "--app", "served_app:create_app()", "run"]
    process = subprocess.Popen(
        [*command, "--port", str(free_port())],
        cwd=tmp_path,
        env=child_environment({"PYTHONPATH": str(REPO_ROOT)}),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        # Flask loads the app, so the warning comes, before the server says it is running.
        err = read_stderr_until(process, "Running on", deadline=30)
    finally:
        stop_process(process)
    assert "Running on" in err, err
    assert err.splitlines().count(EMPTY_STORE_LINE) == 1, err


def test_gunicorn_prints_the_start_up_warnings(
    tmp_path: Path, start_gunicorn: Callable[..., GunicornServer]
) -> None:
    pytest.importorskip("gunicorn")
    (tmp_path / "served_app.py").write_text(textwrap.dedent(SERVED_APP))
    server = start_gunicorn(
        1, {}, app="served_app:create_app()", pythonpath=(tmp_path, REPO_ROOT), cwd=tmp_path
    )
    expired = start_gunicorn(
        1,
        {"MCP_API_KEYS": EXPIRED_KEYS},
        app="served_app:create_app()",
        pythonpath=(tmp_path, REPO_ROOT),
        cwd=tmp_path,
    )
    server.stop()
    expired.stop()
    assert_both_warnings_once(server.output() + expired.output())
