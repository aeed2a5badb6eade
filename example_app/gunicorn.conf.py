"""gunicorn settings for the example service: ``gunicorn -c example_app/gunicorn.conf.py``.

Environment (also read from example_app/.env, see example_app/environment.py):
MCP_EXAMPLE_BIND (default 127.0.0.1:3210), MCP_EXAMPLE_WORKERS (default 2).
"""

import os
import sys
from pathlib import Path

REPO_ROOT = str(Path(__file__).resolve().parent.parent)
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)  # so example_app imports from any working directory

from example_app.environment import load_environment  # noqa: E402

# Once, here in the master: the workers inherit the variables.
load_environment()

wsgi_app = "example_app.app:create_app()"
pythonpath = REPO_ROOT
bind = os.environ.get("MCP_EXAMPLE_BIND", "127.0.0.1:3210")
workers = int(os.environ.get("MCP_EXAMPLE_WORKERS", "2"))
timeout = 30
accesslog = "-"
errorlog = "-"
# gunicorn >= 25 opens a control socket at one fixed path per user (~/.gunicorn/gunicorn.ctl),
# so two instances (a demo and a test run) would take it from each other. Not needed here;
# older gunicorn versions ignore the unknown setting.
control_socket_disable = True

# Redact ?api_key=... (and the key headers) from gunicorn's access and error logs.
logger_class = "flask_mcp_auth.redaction.GunicornLogger"
