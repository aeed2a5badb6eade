"""Where things are: every test that reads a file by path starts from here."""

from __future__ import annotations

from pathlib import Path

#: The folder holding ``tests/`` (and ``flask_mcp_auth/``, ``example_app/``, ``docs/``).
REPO_ROOT = Path(__file__).resolve().parent.parent.parent
TESTS_DIR = REPO_ROOT / "tests"
#: Small apps the tests serve with gunicorn (and import in-process).
APPS_DIR = TESTS_DIR / "apps"
DOCS_DIR = REPO_ROOT / "docs"
README = REPO_ROOT / "README.md"
