"""Start-up fails closed.

Every invalid configuration makes ``init_app`` raise ConfigError, whichever
way it is given (environment, app.config, constructor), so a real ``flask``
or gunicorn start exits non-zero; the message names the setting and never a
key id.  Nothing falls back to "no auth": a failed init_app leaves the
decorators refusing callers, an empty key store admits no key, signed-only
mode refuses plain keys.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from typing import Any

import pytest
from apps.security_app import create_app
from flask import Flask
from support.paths import APPS_DIR, REPO_ROOT
from support.servers import GunicornServer, child_environment, free_port, get

from flask_mcp_auth import ConfigError, MCPAuth, generate_api_key, require_permission
from flask_mcp_auth.config import SETTINGS

# A distinctive key id: in plain-key mode it is the secret, so it must not show up in errors.
SECRET_KEY_ID = "startup-5e7c2a91d4b8f036"


def keys(entry: Any) -> str:
    return json.dumps({SECRET_KEY_ID: entry})


VALID_KEYS = keys({"name": "Ops", "role": "admin", "permissions": ["*"]})

# (settings, what the error message must say)
INVALID = {
    "keys-not-json": ({"MCP_API_KEYS": "{" + SECRET_KEY_ID + ": {}}"}, "not valid JSON"),
    "keys-truncated": ({"MCP_API_KEYS": VALID_KEYS[:-3]}, "not valid JSON"),
    "keys-array": ({"MCP_API_KEYS": json.dumps([SECRET_KEY_ID])}, "top level must be"),
    "keys-entry-string": ({"MCP_API_KEYS": keys("admin")}, "must be a JSON object"),
    "keys-bad-role": ({"MCP_API_KEYS": keys({"role": "root"})}, "unknown role"),
    "keys-typo-field": ({"MCP_API_KEYS": keys({"permission": ["read"]})}, "'permissions'"),
    "keys-permissions-string": ({"MCP_API_KEYS": keys({"permissions": "read"})}, "list"),
    "keys-empty-permission": ({"MCP_API_KEYS": keys({"permissions": ["read", " "]})}, "list"),
    "keys-zero-limit": (
        {"MCP_API_KEYS": keys({"rateLimit": {"requestsPerMinute": 0}})},
        "positive integer",
    ),
    "keys-string-limit": (
        {"MCP_API_KEYS": keys({"rateLimit": {"requestsPerHour": "1000"}})},
        "positive integer",
    ),
    "keys-limit-typo": (
        {"MCP_API_KEYS": keys({"rateLimit": {"requestsPerSecond": 5}})},
        "unknown field",
    ),
    "keys-expiry-no-timezone": (
        {"MCP_API_KEYS": keys({"expiresAt": "2025-12-31T23:59:59"})},
        "no timezone",
    ),
    "keys-expiry-not-a-date": ({"MCP_API_KEYS": keys({"expiresAt": "soon"})}, "ISO 8601"),
    "keys-expiry-out-of-range": (
        {"MCP_API_KEYS": keys({"expiresAt": "0001-01-01T00:00:00+05:00"})},
        "out of range",
    ),
    "keys-duplicate-id": (
        {"MCP_API_KEYS": "{" + VALID_KEYS[1:-1] + "," + VALID_KEYS[1:-1] + "}"},
        "repeats a key id",
    ),
    "keys-id-with-space": (
        {"MCP_API_KEYS": json.dumps({SECRET_KEY_ID + " ": {}})},
        "whitespace",
    ),
    "default-role-unknown": ({"MCP_DEFAULT_ROLE": "superuser"}, "MCP_DEFAULT_ROLE"),
    "signed-without-secret": ({"MCP_REQUIRE_SIGNED_KEYS": "true"}, "no secret"),
    "signed-with-blank-secret": (
        {"MCP_REQUIRE_SIGNED_KEYS": "true", "JWT_SECRET": "   "},
        "no secret",
    ),
    "signed-not-a-boolean": ({"MCP_REQUIRE_SIGNED_KEYS": "sometimes"}, "boolean"),
    "bearer-not-a-boolean": ({"MCP_ACCEPT_BEARER": "maybe"}, "boolean"),
    "header-name-with-space": ({"MCP_API_KEY_HEADER": "X API Key"}, "header name"),
    "header-name-empty": ({"MCP_API_KEY_HEADER": ""}, "header name"),
    "realm-not-ascii": ({"MCP_AUTH_REALM": "caf\u00e9 \u2615"}, "printable ASCII"),
    "realm-with-newline": ({"MCP_AUTH_REALM": "mcp\r\nSet-Cookie: x=1"}, "printable ASCII"),
    "status-url-relative": ({"MCP_STATUS_URL": "mcp/status"}, "URL path"),
    "status-url-variable": ({"MCP_STATUS_URL": "/mcp/<name>"}, "URL path"),
    "discovery-unknown-answer": ({"MCP_OAUTH_DISCOVERY_ANSWERS": "login-page"}, "unknown"),
    "login-path-relative": ({"MCP_OAUTH_LOGIN_PATHS": "auth/login"}, "URL path"),
    "default-limit-garbage": ({"MCP_DEFAULT_RATE_LIMIT": "lots"}, "rate limit string"),
    "default-limit-zero": ({"MCP_DEFAULT_RATE_LIMIT": "0 per minute"}, "no request at all"),
    "anonymous-limit-unknown-unit": (
        {"MCP_ANONYMOUS_RATE_LIMIT": "100 per fortnight"},
        "rate limit string",
    ),
    "anonymous-limit-zero": ({"MCP_ANONYMOUS_RATE_LIMIT": "0/second"}, "no request at all"),
    "failure-limit-two-windows": (
        {"MCP_AUTH_FAILURE_LIMIT": "20 per minute;100 per hour"},
        "one window",
    ),
    "failure-limit-zero": ({"MCP_AUTH_FAILURE_LIMIT": "0 per minute"}, "no request at all"),
    "fail-closed-not-a-boolean": ({"MCP_RATELIMIT_FAIL_CLOSED": "perhaps"}, "boolean"),
    "storage-unknown-scheme": (
        {"RATELIMIT_STORAGE_URI": "bogus://admin:hunter2@127.0.0.1"},
        "unknown storage scheme",
    ),
    "keys-file-missing": ({"MCP_API_KEYS_FILE": "/nonexistent/keys.json"}, "cannot read"),
    "keys-file-interval-negative": (
        {"MCP_API_KEYS_FILE_CHECK_INTERVAL": "-1"},
        "finite number of seconds",
    ),
    "sighup-not-a-boolean": ({"MCP_API_KEYS_RELOAD_ON_SIGHUP": "maybe"}, "boolean"),
}
CASES = [pytest.param(settings, match, id=name) for name, (settings, match) in INVALID.items()]
OPTION = {setting.name: setting.option for setting in SETTINGS}


def assert_names_no_key_id(error: ConfigError | str) -> None:
    assert SECRET_KEY_ID not in str(error)
    assert "hunter2" not in str(error)  # nor a storage password


@pytest.mark.parametrize(("settings", "match"), CASES)
def test_invalid_environment_refuses_to_start(
    settings: dict[str, str], match: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=match) as raised:
        create_app()
    assert_names_no_key_id(raised.value)


# flask-limiter's own settings, read from app.config only.
LIMITER_CASES = [
    pytest.param({"RATELIMIT_STRATEGY": "leaky-bucket"}, "strategy", id="limiter-strategy"),
]


@pytest.mark.parametrize(("settings", "match"), CASES + LIMITER_CASES)
def test_invalid_app_config_refuses_to_start(settings: dict[str, str], match: str) -> None:
    with pytest.raises(ConfigError, match=match) as raised:
        create_app(**settings)
    assert_names_no_key_id(raised.value)


@pytest.mark.parametrize(("settings", "match"), CASES)
def test_invalid_constructor_options_refuse_to_start(settings: dict[str, str], match: str) -> None:
    options = {OPTION[name]: value for name, value in settings.items()}
    with pytest.raises(ConfigError, match=match) as raised:
        MCPAuth(Flask(__name__), **options)
    assert_names_no_key_id(raised.value)


@pytest.mark.parametrize(
    ("secret_key", "starts"),
    [(b"\x8f\x1c quickstart-style bytes", True), ("text-secret", True), (12345, False)],
)
def test_secret_key_types(secret_key: Any, starts: bool) -> None:
    """Flask's quickstart sets SECRET_KEY to bytes; that used to crash init_app."""
    settings = {"MCP_API_KEYS": VALID_KEYS, "MCP_REQUIRE_SIGNED_KEYS": "true"}
    if not starts:
        with pytest.raises(ConfigError, match="SECRET_KEY"):
            create_app(SECRET_KEY=secret_key, **settings)
        return
    client = create_app(SECRET_KEY=secret_key, **settings).test_client()
    signed = generate_api_key(SECRET_KEY_ID, secret_key)
    assert client.get("/admin", headers={"X-API-Key": signed}).status_code == 200
    assert client.get("/admin", headers={"X-API-Key": SECRET_KEY_ID}).status_code == 401


def test_valid_configuration_in_every_form_starts() -> None:
    """The control for the cases above: the same app starts when the settings are right."""
    app = create_app(
        MCP_API_KEYS=VALID_KEYS,
        JWT_SECRET="s",
        MCP_REQUIRE_SIGNED_KEYS="true",
        MCP_API_KEY_HEADER="X-MCP-Key",
        MCP_AUTH_REALM="my realm",
        MCP_STATUS_URL="/health/auth",
    )
    client = app.test_client()
    signed = generate_api_key(SECRET_KEY_ID, "s")
    assert client.get("/health/auth", headers={"X-MCP-Key": signed}).status_code == 200
    refused = client.get("/admin", headers={"X-MCP-Key": "nope"})
    assert refused.headers["WWW-Authenticate"].startswith('Bearer realm="my realm"')


# -- nothing falls back to "no auth" -------------------------------------------------


def test_a_swallowed_config_error_leaves_nothing_half_installed_and_guards_still_refuse() -> None:
    """If an application catches the ConfigError and serves anyway, guarded views refuse."""
    app = Flask(__name__)
    app.config["MCP_API_KEYS"] = keys({"role": "root"})
    auth = MCPAuth()
    with pytest.raises(ConfigError):
        auth.init_app(app)

    @app.get("/tools")
    @require_permission("read")
    def tools() -> dict[str, bool]:
        return {"ok": True}

    assert "mcp_auth" not in app.extensions
    assert not app.before_request_funcs
    with pytest.raises(RuntimeError, match="not initialised on the app"):
        auth.state_for(app)
    client = app.test_client()
    assert client.get("/tools").status_code == 401
    assert client.get("/tools", headers={"X-API-Key": SECRET_KEY_ID}).status_code == 401


@pytest.mark.parametrize("empty", ["", "   ", "{}"])
def test_an_empty_key_store_admits_no_key(empty: str) -> None:
    client = create_app(MCP_API_KEYS=empty).test_client()
    for path in ("/read", "/admin", "/data", "/mcp/status"):
        response = client.get(path, headers={"X-API-Key": SECRET_KEY_ID})
        assert response.status_code == 401, path
        assert response.get_json()["error"] == "invalid_api_key"
    assert client.get("/read").status_code == 401


def test_signed_only_mode_refuses_plain_key_ids() -> None:
    client = create_app(
        MCP_API_KEYS=VALID_KEYS, JWT_SECRET="s", MCP_REQUIRE_SIGNED_KEYS="true"
    ).test_client()
    for place in ({"X-API-Key": SECRET_KEY_ID}, {"Authorization": f"Bearer {SECRET_KEY_ID}"}):
        assert client.get("/admin", headers=place).status_code == 401
    assert client.get("/admin", query_string={"api_key": SECRET_KEY_ID}).status_code == 401
    signed = generate_api_key(SECRET_KEY_ID, "s")
    assert client.get("/admin", headers={"X-API-Key": signed}).status_code == 200


def test_no_anonymous_role_means_every_guarded_and_unguarded_route_needs_a_key() -> None:
    client = create_app(MCP_API_KEYS=VALID_KEYS, MCP_DEFAULT_ROLE="").test_client()
    for path in ("/data", "/read", "/admin"):
        assert client.get(path).status_code == 401, path
        assert client.get(path, headers={"X-API-Key": SECRET_KEY_ID}).status_code == 200, path


# -- real servers ---------------------------------------------------------------------

SERVER_CASES = ["keys-not-json", "keys-bad-role", "signed-without-secret", "realm-with-newline"]
EXIT_TIMEOUT_SECONDS = 30
SECURITY_APP = "security_app:create_app()"


def server_environment(settings: Mapping[str, str]) -> dict[str, str]:
    """The test process's environment without auth settings, plus ``settings``."""
    env = child_environment()
    env["PYTHONPATH"] = os.pathsep.join([str(APPS_DIR), str(REPO_ROOT)])
    return {**env, **settings}


def gunicorn_command() -> list[str]:
    bind = f"127.0.0.1:{free_port()}"
    return [sys.executable, "-m", "gunicorn", "--bind", bind, "--workers", "2", SECURITY_APP]


def flask_run_command() -> list[str]:
    flask = [sys.executable, "-m", "flask", "--app", "security_app:create_app", "run"]
    return [*flask, "--host", "127.0.0.1", "--port", str(free_port())]


@pytest.mark.parametrize("command", [gunicorn_command, flask_run_command])
@pytest.mark.parametrize("case", SERVER_CASES)
def test_real_server_exits_non_zero_on_invalid_configuration(
    case: str, command: Callable[[], list[str]]
) -> None:
    settings, match = INVALID[case]
    finished = subprocess.run(
        command(),
        env=server_environment(settings),
        cwd=REPO_ROOT,
        capture_output=True,
        timeout=EXIT_TIMEOUT_SECONDS,
    )
    output = finished.stdout.decode() + finished.stderr.decode()
    assert finished.returncode != 0
    assert "ConfigError" in output and match in output
    assert_names_no_key_id(output)


def test_gunicorn_starts_with_a_valid_configuration_and_authenticates(
    start_gunicorn: Callable[..., GunicornServer],
) -> None:
    """The control for the exits above: same app, valid settings, a working server."""
    server = start_gunicorn(2, server_environment({"MCP_API_KEYS": VALID_KEYS}), app=SECURITY_APP)
    assert get(server.url + "/admin", {"X-API-Key": SECRET_KEY_ID})[0] == 200
    assert get(server.url + "/admin", {"X-API-Key": "guess"})[0] == 401
    assert get(server.url + "/admin")[0] == 401
