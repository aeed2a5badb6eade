"""Where the example's settings come from: the process environment, then a dotenv file.

``example_app/.env`` (or the file named by ``MCP_EXAMPLE_DOTENV``) is loaded
with python-dotenv; variables already set in the environment win.  Without
one, the public demo file ``example_app/.env.example`` is loaded.
gunicorn.conf.py loads it once in the master process, so the workers inherit
the variables.

While the demo file's API keys are the keys in force, a loud notice says so,
once per server: gunicorn.conf.py prints it in the master, ``flask run`` when
it builds the app.  Keys of the user's own (an exported ``MCP_API_KEYS`` or
``MCP_API_KEYS_FILE``, or an edited ``.env``) print nothing.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from dotenv import dotenv_values, load_dotenv

HERE = Path(__file__).resolve().parent
DEFAULT_DOTENV = HERE / ".env"
DEMO_DOTENV = HERE / ".env.example"

#: Path of a dotenv file to load instead of example_app/.env.
DOTENV_VARIABLE = "MCP_EXAMPLE_DOTENV"
#: Set once a dotenv file has been loaded, so child processes do not load it again.
_LOADED_VARIABLE = "MCP_EXAMPLE_DOTENV_LOADED"
#: Set once the demo notice has been printed, so child processes (workers) stay quiet.
_ANNOUNCED_VARIABLE = "MCP_EXAMPLE_DEMO_NOTICE_SHOWN"

KEYS_VARIABLE = "MCP_API_KEYS"
KEYS_FILE_VARIABLE = "MCP_API_KEYS_FILE"

DEMO_NOTICE = """\
************************************************************************
* DEMO CONFIGURATION: the API keys of example_app/.env.example are in use.
* They are published in the repository: anyone can use them.
* Copy it to example_app/.env and replace the keys before real use.
************************************************************************"""


def load_environment() -> Path:
    """Load the dotenv file once per process tree and return its path.

    From the demo file, ``MCP_API_KEYS`` is left out when ``MCP_API_KEYS_FILE``
    is set: the user's key file is then the only source of keys, and the
    published demo keys do not open the service alongside it.
    """
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
    if path.resolve() == DEMO_DOTENV and os.environ.get(KEYS_FILE_VARIABLE):
        for name, value in dotenv_values(path).items():
            if name != KEYS_VARIABLE and value is not None:
                os.environ.setdefault(name, value)
    else:
        load_dotenv(path, override=False)
    os.environ[_LOADED_VARIABLE] = str(path)
    return path


def demo_keys_in_force() -> bool:
    """True when the keys the service will load are exactly the demo file's keys."""
    if os.environ.get(KEYS_FILE_VARIABLE):
        return False
    demo_keys = dotenv_values(DEMO_DOTENV).get(KEYS_VARIABLE)
    return demo_keys is not None and os.environ.get(KEYS_VARIABLE) == demo_keys


def announce_demo_configuration() -> bool:
    """Print the demo notice if the demo keys are in force, once per process tree.

    Returns whether it printed.  Call it after :func:`load_environment`.
    """
    if os.environ.get(_ANNOUNCED_VARIABLE) or not demo_keys_in_force():
        return False
    print(DEMO_NOTICE, file=sys.stderr, flush=True)
    os.environ[_ANNOUNCED_VARIABLE] = "1"
    return True
