"""The example's dotenv loading and its DEMO CONFIGURATION notice: printed only while the
published demo keys are in force, and once per server (gunicorn's master, or flask run)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.example import DEMO_DOTENV, example_gunicorn
from support.paths import REPO_ROOT
from support.servers import STARTUP_DEADLINE, child_environment, free_port, stop_process

from example_app import environment
from example_app.environment import announce_demo_configuration, load_environment

NOTICE = "DEMO CONFIGURATION"
OWN_KEYS = json.dumps({"my-own-key": {"name": "Mine", "role": "user", "permissions": ["read"]}})


@pytest.fixture(autouse=True)
def isolated_environ() -> Iterator[None]:
    """load_environment writes os.environ directly: put it back as it was."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


def announced(capsys: pytest.CaptureFixture[str]) -> int:
    announce_demo_configuration()
    return capsys.readouterr().err.count(NOTICE)


def test_the_demo_keys_are_announced_once(capsys: pytest.CaptureFixture[str]) -> None:
    os.environ["MCP_EXAMPLE_DOTENV"] = str(DEMO_DOTENV)
    load_environment()
    assert announced(capsys) == 1
    assert announced(capsys) == 0  # a worker inherits the marker and stays quiet


def test_loading_alone_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    os.environ["MCP_EXAMPLE_DOTENV"] = str(DEMO_DOTENV)
    load_environment()
    assert NOTICE not in capsys.readouterr().err


def test_exported_keys_are_not_announced(capsys: pytest.CaptureFixture[str]) -> None:
    os.environ.update({"MCP_EXAMPLE_DOTENV": str(DEMO_DOTENV), "MCP_API_KEYS": OWN_KEYS})
    load_environment()
    assert os.environ["MCP_API_KEYS"] == OWN_KEYS
    assert announced(capsys) == 0


def test_a_key_file_replaces_the_demo_keys(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key_file = tmp_path / "keys.json"
    key_file.write_text(OWN_KEYS)
    os.environ.update({"MCP_EXAMPLE_DOTENV": str(DEMO_DOTENV), "MCP_API_KEYS_FILE": str(key_file)})
    load_environment()
    assert "MCP_API_KEYS" not in os.environ  # the demo keys do not open the service too
    assert os.environ["MCP_DEFAULT_ROLE"] == "guest"  # the rest of the demo file applies
    assert announced(capsys) == 0


def test_an_edited_dotenv_file_is_not_announced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text(f"MCP_API_KEYS='{OWN_KEYS}'\n")
    os.environ["MCP_EXAMPLE_DOTENV"] = str(dotenv)
    load_environment()
    assert announced(capsys) == 0


def test_a_dotenv_copied_unchanged_still_has_the_demo_keys(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text(DEMO_DOTENV.read_text())
    os.environ["MCP_EXAMPLE_DOTENV"] = str(dotenv)
    load_environment()
    assert environment.demo_keys_in_force()
    assert announced(capsys) == 1


# -- real servers ---------------------------------------------------------------------


def demo_env(instance: Path, **extra: str) -> dict[str, str]:
    return {
        **child_environment(),
        "MCP_EXAMPLE_DOTENV": str(DEMO_DOTENV),
        "MCP_EXAMPLE_INSTANCE_PATH": str(instance),
        **extra,
    }


def test_gunicorn_announces_the_demo_keys_once_in_the_master(tmp_path: Path) -> None:
    server = example_gunicorn(tmp_path, demo_env(tmp_path / "instance", MCP_EXAMPLE_WORKERS="3"))
    server.start()
    server.stop()
    output = server.output()
    assert output.count(NOTICE) == 1, output
    # Before the first worker boots: the master printed it.
    assert output.index(NOTICE) < output.index("Booting worker with pid"), output


def test_gunicorn_with_exported_keys_prints_no_notice(tmp_path: Path) -> None:
    env = demo_env(tmp_path / "instance", MCP_API_KEYS=OWN_KEYS)
    server = example_gunicorn(tmp_path, env)
    server.start()
    server.stop()
    assert NOTICE not in server.output()


def test_flask_run_announces_the_demo_keys_once(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "flask.log"
    command = [sys.executable, "-m", "flask", "--app", "example_app.app", "run"]
    command += ["--port", str(port), "--reload"]  # the reloader builds the app in two processes
    with log.open("wb") as output:
        process = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            env=demo_env(tmp_path / "instance"),
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + STARTUP_DEADLINE
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/mcp/status", timeout=5):
                    break
            except (urllib.error.URLError, OSError):
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"flask run did not start:\n{log.read_text()}")
                time.sleep(0.1)
    finally:
        stop_process(process)
    assert log.read_text().count(NOTICE) == 1, log.read_text()
