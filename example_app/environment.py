"""Where the example's settings come from: the process environment, then a dotenv file.

``example_app/.env`` (or the file named by ``MCP_EXAMPLE_DOTENV``) is loaded
with python-dotenv; variables already set in the environment win.  Without
one, the public demo file ``example_app/.env.example`` is loaded and a loud
notice says so.  gunicorn.conf.py loads it once in the master process, so the
workers inherit the variables and the notice is printed once.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from dotenv import load_dotenv

HERE = Path(__file__).resolve().parent
DEFAULT_DOTENV = HERE / ".env"
DEMO_DOTENV = HERE / ".env.example"

#: Path of a dotenv file to load instead of example_app/.env.
DOTENV_VARIABLE = "MCP_EXAMPLE_DOTENV"
#: Set once a dotenv file has been loaded, so child processes do not load it again.
_LOADED_VARIABLE = "MCP_EXAMPLE_DOTENV_LOADED"

DEMO_NOTICE = """\
************************************************************************
* DEMO CONFIGURATION: example_app/.env.example is in use.
* Its API keys are published in the repository: anyone can use them.
* Copy it to example_app/.env and replace the keys before real use.
************************************************************************"""


def load_environment() -> Path:
    """Load the dotenv file once per process tree and return its path."""
    already = os.environ.get(_LOADED_VARIABLE)
    if already:
        return Path(already)
    chosen = os.environ.get(DOTENV_VARIABLE)
    if chosen:
        path = Path(chosen)
        if not path.is_file():
            raise SystemExit(f"{DOTENV_VARIABLE}={chosen}: no such file")
    else:
        path = DEFAULT_DOTENV if DEFAULT_DOTENV.is_file() else DEMO_DOTENV
    load_dotenv(path, override=False)
    if path.resolve() == DEMO_DOTENV:
        print(DEMO_NOTICE, file=sys.stderr, flush=True)
    os.environ[_LOADED_VARIABLE] = str(path)
    return path
