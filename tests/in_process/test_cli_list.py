"""`flask mcp-auth list`: every key's non-secret facts, never a key id."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner
from flask.cli import ScriptInfo
from support.cli import run_cli

from flask_mcp_auth.checks import expiry_state
from flask_mcp_auth.cli import mcp_auth_cli
from flask_mcp_auth.keys.schema import parse_keys

PLAIN_IDS = ("alpha-secret-id-123", "beta-secret-id-456", "gamma-secret-id-789")


def iso(moment: datetime) -> str:
    return moment.replace(microsecond=0).isoformat().replace("+00:00", "Z")


@pytest.fixture
def listed_app(make_app):
    now = datetime.now(UTC)
    keys = {
        PLAIN_IDS[0]: {
            "name": "Reporter",
            "role": "user",
            "permissions": ["write", "read"],
            "rateLimit": {"requestsPerMinute": 100, "requestsPerHour": 1000},
            # an hour of margin so the day count cannot change while the test runs
            "expiresAt": iso(now + timedelta(days=10, hours=1)),
        },
        PLAIN_IDS[1]: {"role": "admin", "permissions": ["*"]},
        PLAIN_IDS[2]: {
            "name": "Old",
            "rateLimit": {"requestsPerHour": 5},
            "expiresAt": "2001-01-01T00:00:00Z",
        },
    }
    return make_app(keys=keys, JWT_SECRET="s")


def test_table_shows_each_key_without_its_id(listed_app):
    result = run_cli(listed_app, "list")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["NAME", "FINGERPRINT", "ROLE", "PERMISSIONS", "LIMITS", "EXPIRY"]
    store = listed_app.extensions["mcp_auth"].state_for(listed_app).store
    fingerprints = [store.find(key_id).fingerprint for key_id in PLAIN_IDS]
    assert lines[1].split() == [
        "Reporter", fingerprints[0], "user", "read,write", "100/min,", "1000/h",
        "expires", "in", "10", "days",
    ]  # fmt: skip
    assert lines[2].split() == [
        "(unnamed)", fingerprints[1], "admin", "*", "none", "valid", "(no", "expiry)",
    ]  # fmt: skip
    assert lines[3].split() == ["Old", fingerprints[2], "guest", "-", "5/h", "expired"]
    # columns line up: every row starts its FINGERPRINT column at the same offset
    assert len({line.index(fp) for line, fp in zip(lines[1:], fingerprints, strict=True)}) == 1
    for key_id in PLAIN_IDS:
        assert key_id not in result.output


def test_json_listing(listed_app):
    result = run_cli(listed_app, "list", "--json")
    assert result.exit_code == 0
    keys = json.loads(result.stdout)
    assert [k["name"] for k in keys] == ["Reporter", None, "Old"]
    assert keys[0]["rate_limit"] == {"requests_per_minute": 100, "requests_per_hour": 1000}
    assert keys[0]["permissions"] == ["read", "write"]
    assert keys[0]["expiry"] == "expires in 10 days"
    assert keys[2]["expires_at"] == "2001-01-01T00:00:00Z"
    assert keys[2]["expiry"] == "expired"
    assert keys[1]["expires_at"] is None
    for key_id in PLAIN_IDS:
        assert key_id not in result.output


def test_empty_store(make_app):
    result = run_cli(make_app(keys=None), "list")
    assert result.exit_code == 0
    assert "No API keys are configured" in result.stdout
    assert json.loads(run_cli(make_app(keys=None), "list", "--json").stdout) == []


NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("expires_at", "state"),
    [
        (None, "valid (no expiry)"),
        ("2026-03-01T12:00:00Z", "expired"),
        ("2026-03-01T11:00:00Z", "expired"),
        ("2026-03-01T12:30:00Z", "expires in under 1 hour"),
        ("2026-03-01T13:00:00Z", "expires in 1 hour"),
        ("2026-03-02T11:59:59Z", "expires in 23 hours"),
        ("2026-03-02T12:00:00Z", "expires in 1 day"),
        ("2026-06-09T12:00:00Z", "expires in 100 days"),
    ],
)
def test_expiry_state(expires_at, state):
    entry = {"expiresAt": expires_at} if expires_at else {}
    (key,) = parse_keys({"k": entry}).values()
    assert expiry_state(key, NOW) == state


def test_without_an_app_the_keys_of_the_environment_are_listed(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no app.py / wsgi.py here
    monkeypatch.setenv("MCP_API_KEYS", json.dumps({PLAIN_IDS[0]: {"name": "From env"}}))
    result = CliRunner().invoke(mcp_auth_cli, ["list"], obj=ScriptInfo())
    assert result.exit_code == 0
    assert "Note: using the environment only" in result.stderr
    assert result.stdout.splitlines()[1].startswith("From env ")
    assert PLAIN_IDS[0] not in result.output
