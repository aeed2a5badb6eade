"""gunicorn settings for the example service: ``gunicorn -c example_app/gunicorn.conf.py``.

Environment (also read from example_app/.env, see example_app/environment.py):

* MCP_EXAMPLE_BIND: address to listen on (default 127.0.0.1:3210).
* MCP_EXAMPLE_WORKERS: worker processes. Default: 1 while the rate-limit counters are
  kept in memory (RATELIMIT_STORAGE_URI unset, empty or memory://), because each process
  counts on its own; 2 once RATELIMIT_STORAGE_URI names a shared storage such as Redis.
  A value set here wins; several workers on memory:// make flask-mcp-auth warn.
* MCP_EXAMPLE_THREADS: threads per worker (default 8): one worker still serves
  several requests at a time.
"""

import os
import sys
from pathlib import Path

REPO_ROOT = str(Path(__file__).resolve().parent.parent)
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)  # so example_app imports from any working directory

from example_app.environment import announce_demo_configuration, load_environment  # noqa: E402

# First, here in the master: the workers inherit the variables, and the dotenv file's
# RATELIMIT_STORAGE_URI counts for the worker count below.
load_environment()


def _shared_rate_limit_storage() -> bool:
    """True when the rate-limit counters live outside the worker processes (e.g. Redis)."""
    uri = os.environ.get("RATELIMIT_STORAGE_URI", "").strip()
    return bool(uri) and not uri.startswith("memory://")


SHARED_WORKERS = 2  # the default once the counters are shared

wsgi_app = "example_app.app:create_app()"
pythonpath = REPO_ROOT
bind = os.environ.get("MCP_EXAMPLE_BIND", "127.0.0.1:3210")
workers = int(
    os.environ.get("MCP_EXAMPLE_WORKERS") or (SHARED_WORKERS if _shared_rate_limit_storage() else 1)
)
worker_class = "gthread"
threads = int(os.environ.get("MCP_EXAMPLE_THREADS") or 8)
timeout = 30
accesslog = "-"
errorlog = "-"
# gunicorn >= 25 opens a control socket at one fixed path per user (~/.gunicorn/gunicorn.ctl),
# so two instances (a demo and a test run) would take it from each other. Not needed here;
# older gunicorn versions ignore the unknown setting.
control_socket_disable = True

# Redact ?api_key=... (and the key headers) from gunicorn's access and error logs.
logger_class = "flask_mcp_auth.redaction.GunicornLogger"


def on_starting(server: object) -> None:
    """Once per server, in the master before any worker starts (not again on a reload)."""
    announce_demo_configuration()
