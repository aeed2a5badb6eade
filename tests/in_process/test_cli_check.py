"""`flask mcp-auth check`: start-up validation, the best-practice warnings, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.cli import ScriptInfo
from support.cli import run_cli, run_cli_with_factory

from flask_mcp_auth import MCPAuth
from flask_mcp_auth.checks import weak_key_id_reason
from flask_mcp_auth.cli import mcp_auth_cli

STRONG_ID = "Zk3q9_Xv2LmR8pTw4sYb7NcJ5hGd1FeA"
WEAK_ID = "reporter-key"
CLEAN_ENTRY: dict[str, Any] = {
    "name": "Reporter",
    "role": "user",
    "permissions": ["read"],
    "rateLimit": {"requestsPerMinute": 60},
    "expiresAt": "2099-01-01T00:00:00Z",
}
CLEAN_CONFIG: dict[str, Any] = {"JWT_SECRET": "s3cret", "MCP_API_KEY_QUERY_PARAM": ""}


def clean_app(
    make_app,
    entry_changes: dict[str, Any] | None = None,
    key_id: str = STRONG_ID,
    drop: tuple[str, ...] = (),
    **config: Any,
) -> Flask:
    entry = {k: v for k, v in {**CLEAN_ENTRY, **(entry_changes or {})}.items() if k not in drop}
    settings = {k: v for k, v in {**CLEAN_CONFIG, **config}.items() if v is not None}
    return make_app(keys={key_id: entry}, **settings)


def warning_codes(app: Flask) -> list[str]:
    result = run_cli(app, "check", "--json")
    report = json.loads(result.stdout)
    return [w["code"] for w in report["warnings"]]


def test_a_clean_configuration_exits_0_even_with_strict(make_app):
    app = clean_app(make_app)
    human = run_cli(app, "check")
    assert human.exit_code == 0
    assert "The configuration is valid (1 API key(s))." in human.stdout
    assert "0 error(s), 0 warning(s)." in human.stdout
    assert run_cli(app, "check", "--strict").exit_code == 0
    report = json.loads(run_cli(app, "check", "--json").stdout)
    assert report == {
        "valid": True,
        "source": f"app {app.name!r}",
        "keys": 1,
        "errors": [],
        "warnings": [],
        "exit_code": 0,
    }


@pytest.mark.parametrize(
    ("changes", "code", "text"),
    [
        ({"key_id": WEAK_ID}, "predictable-key-id", "the key id is short"),
        ({"entry_changes": {"permissions": ["*"]}}, "wildcard-permission", 'permissions ["*"]'),
        ({"drop": ("rateLimit",)}, "no-rate-limit", "no rate limit"),
        ({"drop": ("expiresAt",)}, "no-expiry", "never expires"),
        (
            {"entry_changes": {"expiresAt": "2001-01-01T00:00:00Z"}},
            "expired",
            "expired at 2001-01-01T00:00:00Z and is refused",
        ),
        ({"JWT_SECRET": None, "SECRET_KEY": "flask"}, "no-jwt-secret", "app's SECRET_KEY"),
        ({"JWT_SECRET": None}, "no-jwt-secret", "only plain key ids work"),
        ({"MCP_API_KEY_QUERY_PARAM": None}, "query-param-enabled", "'api_key' query parameter"),
        ({"MCP_API_KEY_QUERY_PARAM": "token"}, "query-param-enabled", "'token' query parameter"),
        ({"MCP_DEFAULT_ROLE": "developer"}, "anonymous-role", "up to 'developer'"),
        (
            {"MCP_OAUTH_ISSUER": "http://127.0.0.1:3210"},
            "short-oauth-secret",
            "shorter than 32 bytes",
        ),
    ],
)
def test_each_best_practice_warning(make_app, changes, code, text):
    app = clean_app(make_app, **changes)
    assert warning_codes(app) == [code]
    human = run_cli(app, "check")
    assert human.exit_code == 0  # warnings alone do not fail without --strict
    assert f"warning [{code}]: " in human.stdout
    assert text in human.stdout
    assert "0 error(s), 1 warning(s)." in human.stdout
    strict = run_cli(app, "check", "--strict")
    assert strict.exit_code == 1
    strict_json = json.loads(run_cli(app, "check", "--strict", "--json").stdout)
    assert strict_json["exit_code"] == 1


def test_a_long_secret_with_the_oauth_sign_in_is_no_warning(make_app):
    app = clean_app(make_app, JWT_SECRET="s" * 32, MCP_OAUTH_ISSUER="http://127.0.0.1:3210")
    assert warning_codes(app) == []


def test_no_keys_is_a_warning(make_app):
    app = make_app(keys=None, **CLEAN_CONFIG)
    assert warning_codes(app) == ["no-keys"]


def test_key_warnings_name_the_entry_by_label_never_by_id(make_app):
    app = make_app(keys={WEAK_ID: {"name": "Reporter", "permissions": ["*"]}}, JWT_SECRET="s")
    human = run_cli(app, "check")
    as_json = run_cli(app, "check", "--json")
    fingerprint = app.extensions["mcp_auth"].state_for(app).store.find(WEAK_ID).fingerprint
    for output in (human.stdout, as_json.stdout):
        assert WEAK_ID not in output
        assert f"Reporter [{fingerprint}]" in output
    report = json.loads(as_json.stdout)
    keyed = [w for w in report["warnings"] if w["key"]]
    assert {w["code"] for w in keyed} == {
        "predictable-key-id",
        "guest-with-wildcard",  # no role given: guest
        "wildcard-permission",
        "no-rate-limit",
        "no-expiry",
    }
    assert all(w["key"] == {"name": "Reporter", "fingerprint": fingerprint} for w in keyed)


def test_guessable_ids_are_not_reported_when_signed_keys_are_required(make_app):
    app = clean_app(make_app, key_id=WEAK_ID, MCP_REQUIRE_SIGNED_KEYS=True)
    assert warning_codes(app) == []


@pytest.mark.parametrize(
    ("key_id", "reason"),
    [
        ("chatgpt-connector-key", "is short"),
        ("my-long-and-very-predictable-key-name-2025", "made of words"),
        ("123456789012345678901234567890", "too few kinds of character"),
        ("9f86d081884c7d659a2feaa0c55ad015", None),  # secrets.token_hex(16)
        ("3f2b6c1e-8d4a-4f7b-9c2e-1a5d6e7f8b9c", None),  # a UUID
        ("Zk3q9_Xv2LmR8pTw4sYb7NcJ5hGd1FeA", None),  # secrets.token_urlsafe
    ],
)
def test_weak_key_id_heuristic(key_id, reason):
    found = weak_key_id_reason(key_id)
    if reason is None:
        assert found is None
    else:
        assert reason in found


def broken_factory() -> Flask:
    app = Flask("broken")
    MCPAuth(app, api_keys='{"k": {"rol": "user"}}')
    return app


def test_an_invalid_configuration_exits_2_with_the_start_up_message():
    human = run_cli_with_factory(broken_factory, "check")
    assert human.exit_code == 2
    assert (
        "error: MCP_API_KEYS: entry #1 (no name), field \"rol\": unknown field 'rol'; "
        "did you mean 'role'?" in human.stdout
    )
    assert "1 error(s), 0 warning(s)." in human.stdout
    report = json.loads(run_cli_with_factory(broken_factory, "check", "--json").stdout)
    assert report["valid"] is False
    assert report["exit_code"] == 2
    assert report["keys"] is None
    assert "did you mean 'role'?" in report["errors"][0]
    assert run_cli_with_factory(broken_factory, "check", "--strict").exit_code == 2


def test_a_config_error_wrapped_by_the_factory_is_still_reported():
    def wrapping_factory() -> Flask:
        try:
            return broken_factory()
        except ValueError as exc:
            raise RuntimeError("could not start") from exc

    result = run_cli_with_factory(wrapping_factory, "check")
    assert result.exit_code == 2
    assert "unknown field 'rol'" in result.stdout


def test_an_app_that_fails_for_another_reason_or_lacks_mcpauth_exits_2():
    def failing() -> Flask:
        raise RuntimeError("database unreachable")

    failed = run_cli_with_factory(failing, "check")
    assert failed.exit_code == 2
    assert "could not be created: RuntimeError: database unreachable" in failed.stdout
    plain = run_cli_with_factory(lambda: Flask("plain"), "check")
    assert plain.exit_code == 2
    assert "does not initialise flask_mcp_auth.MCPAuth" in plain.stdout


def test_an_app_named_with_app_that_cannot_be_imported_exits_2(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    info = ScriptInfo(app_import_path="no_such_module_for_mcp_auth")
    result = CliRunner().invoke(mcp_auth_cli, ["check"], obj=info)
    assert result.exit_code == 2
    assert "Could not import 'no_such_module_for_mcp_auth'" in result.stdout
    assert "environment only" not in result.stdout


def test_without_an_app_the_environment_is_checked(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no app.py / wsgi.py here
    runner = CliRunner()
    monkeypatch.setenv("MCP_API_KEYS", '{"k": {"role": "root"}}')
    bad = runner.invoke(mcp_auth_cli, ["check"], obj=ScriptInfo())
    assert bad.exit_code == 2
    assert "unknown role 'root'" in bad.stdout
    assert "checked the environment only" in bad.stdout

    monkeypatch.setenv("MCP_API_KEYS", json.dumps({STRONG_ID: CLEAN_ENTRY}))
    monkeypatch.setenv("JWT_SECRET", "s")
    monkeypatch.setenv("MCP_API_KEY_QUERY_PARAM", "")
    good = runner.invoke(mcp_auth_cli, ["check", "--json"], obj=ScriptInfo())
    assert good.exit_code == 0
    report = json.loads(good.stdout)
    assert report["source"].startswith("the environment only")
    assert report["keys"] == 1


APP_MODULE = textwrap.dedent(
    """
    from flask import Flask
    from flask_mcp_auth import MCPAuth

    def create_app():
        app = Flask(__name__)
        MCPAuth(app)
        return app
    """
)


def run_flask(tmp_path, keys: str, *args: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "svc.py").write_text(APP_MODULE)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MCP_", "FLASK_"))}
    env.update(MCP_API_KEYS=keys, JWT_SECRET="s", MCP_API_KEY_QUERY_PARAM="")
    return subprocess.run(
        [sys.executable, "-m", "flask", "--app", "svc:create_app", "mcp-auth", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_flask_command_line_checks_an_app_whose_factory_fails(tmp_path):
    """The flask.commands entry point: `check` runs although create_app raises."""
    broken = run_flask(tmp_path, '{"k": {"permissions": "read"}}', "check", "--json")
    assert broken.returncode == 2, broken.stderr
    report = json.loads(broken.stdout)
    assert 'field "permissions": must be a list of non-empty strings' in report["errors"][0]

    clean = run_flask(tmp_path, json.dumps({STRONG_ID: CLEAN_ENTRY}), "check", "--strict")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "0 error(s), 0 warning(s)." in clean.stdout


def test_a_default_rate_limit_covers_keys_without_their_own(make_app):
    app = clean_app(make_app, drop=("rateLimit",), MCP_DEFAULT_RATE_LIMIT="60/minute")
    assert warning_codes(app) == []


@pytest.mark.parametrize("role", ["guest", ""])
def test_guest_or_no_anonymous_access_is_not_reported(make_app, role):
    assert warning_codes(clean_app(make_app, MCP_DEFAULT_ROLE=role)) == []


@pytest.mark.parametrize(
    ("changes", "codes", "fix"),
    [
        (
            {"role": "admin", "permissions": []},
            ["admin-without-permissions"],
            'For full access add permissions ["*"]',
        ),
        (
            {"permissions": ["admin"]},
            ["admin-permission-alone"],
            "not 'read' or 'write', and not the admin role",
        ),
        (
            {"role": "guest", "permissions": ["*"]},
            ["guest-with-wildcard", "wildcard-permission"],
            'give it a role (e.g. "role": "user")',
        ),
    ],
    ids=["admin-role-no-permissions", "admin-permission-alone", "guest-with-wildcard"],
)
def test_grants_that_do_not_do_what_their_words_promise(make_app, changes, codes, fix):
    app = clean_app(make_app, entry_changes=changes, key_id=WEAK_ID, MCP_REQUIRE_SIGNED_KEYS=True)
    assert warning_codes(app) == codes
    human = run_cli(app, "check")
    fingerprint = app.extensions["mcp_auth"].state_for(app).store.find(WEAK_ID).fingerprint
    assert f"Reporter [{fingerprint}]" in human.stdout
    assert fix in human.stdout
    assert WEAK_ID not in human.stdout


def test_an_admin_with_full_permissions_is_not_reported(make_app):
    app = clean_app(make_app, entry_changes={"role": "admin", "permissions": ["read", "write"]})
    assert warning_codes(app) == []
