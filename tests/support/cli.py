"""Helpers for the CLI tests: run `flask mcp-auth ...` against an app or a factory."""

from __future__ import annotations

from collections.abc import Callable

from click.testing import CliRunner, Result
from flask import Flask
from flask.cli import ScriptInfo

from flask_mcp_auth.cli import mcp_auth_cli


def run_cli(app: Flask, *args: str) -> Result:
    """`flask mcp-auth ARGS` through the app's own CLI (app.cli), as Flask's test runner does."""
    return app.test_cli_runner().invoke(args=["mcp-auth", *args])


def run_cli_with_factory(create_app: Callable[[], Flask], *args: str) -> Result:
    """`flask mcp-auth ARGS` when loading the app runs ``create_app`` (which may fail)."""
    return CliRunner().invoke(mcp_auth_cli, list(args), obj=ScriptInfo(create_app=create_app))
