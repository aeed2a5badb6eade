"""The Flask applications the benchmark compares, one builder per stack.

Every stack serves the same trivial JSON route, ``GET /data``, and (where it
authenticates at all) expects the same key in ``X-API-Key``.  The builders are
shared by the in-process measurements (``inprocess.py``) and by gunicorn, which
loads them as ``stacks:wsgi_app("<stack>", ...)``.

The hand-assembled stacks are written the way their documentation shows:
Flask-HTTPAuth's ``HTTPTokenAuth`` with a dictionary lookup, flask-limiter with
a ``key_func`` that reads the header, and an ``after_request`` hook that writes
one JSON line through a ``logging.FileHandler``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from flask import Flask, Response, request
from flask_limiter import Limiter

from flask_mcp_auth import MCPAuth, generate_api_key

SECRET = "benchmark-signing-secret"
KEY_ID = "bench-key-000000"
API_KEY = generate_api_key(KEY_ID, SECRET)
HEADER = "X-API-Key"
ROUTE = "/data"

# High enough never to trigger, however long a run lasts.
PER_MINUTE = 1_000_000_000
PER_HOUR = 10_000_000_000


def _add_route(app: Flask, decorate: Callable[[Any], Any] | None = None) -> None:
    def data() -> dict[str, Any]:
        return {"ok": True}

    app.add_url_rule(ROUTE, "data", decorate(data) if decorate else data, methods=["GET"])


def bare() -> Flask:
    app = Flask("bench_bare")
    _add_route(app)
    return app


def httpauth_missing() -> str:
    """Why the Flask-HTTPAuth stacks cannot be built here, or "" if they can."""
    try:
        import flask_httpauth  # noqa: F401
    except ImportError:
        return "Flask-HTTPAuth is not installed (pip install flask-httpauth, or run tox -e bench)"
    return ""


def _token_auth() -> Any:
    from flask_httpauth import HTTPTokenAuth

    users = {API_KEY: "bench-user"}
    auth = HTTPTokenAuth(header=HEADER)

    @auth.verify_token
    def verify_token(token: str) -> str | None:
        return users.get(token)

    return auth


def httpauth() -> Flask:
    app = Flask("bench_httpauth")
    _add_route(app, _token_auth().login_required)
    return app


def _header_limiter(app: Flask, storage_uri: str) -> Limiter:
    return Limiter(
        lambda: request.headers.get(HEADER, ""),
        app=app,
        default_limits=[f"{PER_MINUTE} per minute", f"{PER_HOUR} per hour"],
        storage_uri=storage_uri,
        strategy="fixed-window",
    )


def limiter(storage_uri: str = "memory://") -> Flask:
    app = Flask("bench_limiter")
    _header_limiter(app, storage_uri)
    _add_route(app)
    return app


def _audit_logger(path: str) -> logging.Logger:
    audit = logging.getLogger(f"bench.audit.{path}")
    audit.setLevel(logging.INFO)
    audit.propagate = False
    if not audit.handlers:
        audit.addHandler(logging.FileHandler(path))
    return audit


def hand_assembled(audit_path: str, storage_uri: str = "memory://") -> Flask:
    """Flask-HTTPAuth + flask-limiter + one JSON audit line per request."""
    app = Flask("bench_hand")
    auth = _token_auth()
    _header_limiter(app, storage_uri)
    audit = _audit_logger(audit_path)

    @app.after_request
    def audit_line(response: Response) -> Response:
        audit.info(
            json.dumps(
                {
                    "ts": datetime.now(UTC).isoformat(),
                    "event": "request",
                    "user": auth.current_user(),
                    "method": request.method,
                    "path": request.path,
                    "status": response.status_code,
                    "remote_addr": request.remote_addr,
                }
            )
        )
        return response

    _add_route(app, auth.login_required)
    return app


def key_store(count: int, *, rate_limited: bool) -> str:
    """``MCP_API_KEYS`` text with ``count`` keys; KEY_ID is the first of them."""
    entry: dict[str, Any] = {
        "name": "Benchmark key",
        "userId": "bench-user",
        "role": "user",
        "permissions": ["*"],
    }
    if rate_limited:
        entry["rateLimit"] = {"requestsPerMinute": PER_MINUTE, "requestsPerHour": PER_HOUR}
    keys = {f"bench-key-{i:06d}": dict(entry, name=f"Benchmark key {i}") for i in range(count)}
    return json.dumps(keys)


def _keys_config(app: Flask, keys: str | None, keys_file: str | None, rate_limited: bool) -> None:
    if keys_file is not None:
        app.config["MCP_API_KEYS_FILE"] = keys_file
    else:
        app.config["MCP_API_KEYS"] = keys or key_store(10, rate_limited=rate_limited)


def mcp_auth_only(keys: str | None = None, keys_file: str | None = None) -> Flask:
    """flask-mcp-auth: signed key, no rate limits, audit off."""
    app = Flask("bench_mcp_auth_only")
    _keys_config(app, keys, keys_file, rate_limited=False)
    app.config["JWT_SECRET"] = SECRET
    app.config["MCP_DEFAULT_ROLE"] = ""  # a request without a key gets 401, as with HTTPAuth
    app.config["MCP_DEFAULT_RATE_LIMIT"] = ""
    app.config["MCP_AUTH_FAILURE_LIMIT"] = "off"
    app.config["MCP_AUDIT_LOG"] = "off"
    MCPAuth(app)
    _add_route(app)
    return app


def mcp_full(
    audit_path: str,
    storage_uri: str = "memory://",
    keys: str | None = None,
    keys_file: str | None = None,
    oauth: bool = False,
    storage_options: dict[str, Any] | None = None,
) -> Flask:
    """flask-mcp-auth: signed key, minute + hour limits, audit line to a file."""
    app = Flask("bench_mcp_full")
    _keys_config(app, keys, keys_file, rate_limited=True)
    app.config["JWT_SECRET"] = SECRET
    app.config["MCP_DEFAULT_ROLE"] = ""  # a request without a key gets 401, as with HTTPAuth
    app.config["RATELIMIT_STORAGE_URI"] = storage_uri
    if storage_options:
        app.config["RATELIMIT_STORAGE_OPTIONS"] = storage_options
    app.config["MCP_AUDIT_LOG"] = audit_path
    if oauth:
        app.config["MCP_OAUTH_ISSUER"] = OAUTH_ISSUER
    MCPAuth(app)
    _add_route(app)
    return app


#: The issuer of the OAuth stack (never contacted: the benchmark calls the WSGI app).
OAUTH_ISSUER = "http://127.0.0.1:3210"


def mcp_full_oauth(audit_path: str) -> Flask:
    """mcp_full with the OAuth sign-in on; requests carry an access token for the same key."""
    return mcp_full(audit_path, oauth=True)


def oauth_headers(app: Flask) -> dict[str, str]:
    """Authorization: Bearer <access token> for the benchmark key, issued by the app's codec."""
    from flask_mcp_auth.oauth.tokens import Grant

    state = app.extensions["mcp_auth"].state_for(app)
    key = state.resolver.keys.current().find(KEY_ID)
    grant = Grant(key.fingerprint, "bench-client", OAUTH_ISSUER, "", "bench", "", 0.0)
    token, _ttl = state.oauth.service.codec.issue_access(grant, None, 24 * 3600)
    return {"Authorization": f"Bearer {token}"}


#: The one-round-trip floor's script: what exact shared counting cannot go below.
FLOOR_SCRIPT = "return 1"


def redis_floor(storage_uri: str, storage_options: dict[str, Any] | None = None) -> Flask:
    """Bare Flask plus one ``EVALSHA`` of a trivial script per request.

    The client is built as ``limits`` builds the rate-limit storage's
    (``redis.from_url``), so the row costs one round trip through the same client.
    """
    import redis

    app = bare()
    client = redis.Redis.from_url(storage_uri, **(storage_options or {}))
    script = client.register_script(FLOOR_SCRIPT)

    @app.before_request
    def one_round_trip() -> None:
        script(keys=["bench-floor"], args=[])

    return app


def wsgi_app(
    stack: str, audit_path: str = "", storage_uri: str = "memory://", storage_options: str = ""
) -> Any:
    """Entry point for gunicorn: ``stacks:wsgi_app("mcp_full", "/tmp/a.log", "redis://...")``.

    ``storage_options``: JSON, the Redis client options (``RATELIMIT_STORAGE_OPTIONS``).
    The app is wrapped in the CPU meter that ``worker_cpu.snapshot`` reads.
    """
    from worker_cpu import CPUMeter

    options = json.loads(storage_options) if storage_options else None
    if stack == "bare":
        app = bare()
    elif stack == "floor":
        app = redis_floor(storage_uri, options)
    elif stack == "hand":
        app = hand_assembled(audit_path, storage_uri)
    elif stack == "mcp_full":
        app = mcp_full(audit_path, storage_uri, storage_options=options)
    else:
        raise ValueError(f"unknown stack {stack!r}")
    return CPUMeter(app)
