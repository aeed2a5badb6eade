"""gunicorn settings for the example service: gunicorn -c example_app/gunicorn.conf.py"""

import os

wsgi_app = "example_app.app:create_app()"
bind = os.environ.get("MCP_EXAMPLE_BIND", "127.0.0.1:3210")
workers = int(os.environ.get("MCP_EXAMPLE_WORKERS", "2"))
accesslog = "-"
# Redact ?api_key=... (and the key headers) from gunicorn's access and error logs.
logger_class = "flask_mcp_auth.redaction.GunicornLogger"
