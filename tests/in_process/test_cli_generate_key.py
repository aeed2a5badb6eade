"""`flask mcp-auth generate-key`: the key it prints is accepted by the extension."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest
from support.cli import run_cli
from support.seed import SEED_KEYS

from flask_mcp_auth.cli.generate_key import parse_expiry

SECRET = "test-jwt-secret"
SIGNED_KEY = re.compile(r"^\s*(mcp_\S+)\s*$", re.MULTILINE)


def split_output(stdout: str) -> tuple[str, dict]:
    """(signed key, the JSON entry) from the output of generate-key without --merge."""
    key = SIGNED_KEY.search(stdout)
    assert key, stdout
    entry_text = stdout[stdout.index("{") :]
    return key.group(1), json.loads(entry_text)


def test_generated_key_authenticates_with_every_field(make_app):
    app = make_app(JWT_SECRET=SECRET)
    result = run_cli(
        app,
        "generate-key",
        "reporting-bot",
        "--name",
        "Reporting Bot",
        "--user-id",
        "bot-7",
        "--role",
        "developer",
        "--permissions",
        "read, write",
        "--rpm",
        "100",
        "--rph",
        "1000",
        "--expires",
        "2099-12-31",
    )
    assert result.exit_code == 0, result.output
    key, entry = split_output(result.stdout)
    assert key.startswith("mcp_reporting-bot_")
    assert entry == {
        "reporting-bot": {
            "name": "Reporting Bot",
            "userId": "bot-7",
            "role": "developer",
            "permissions": ["read", "write"],
            "rateLimit": {"requestsPerMinute": 100, "requestsPerHour": 1000},
            "expiresAt": "2099-12-31T23:59:59Z",
        }
    }

    served = make_app(keys={**SEED_KEYS, **entry}, JWT_SECRET=SECRET)
    client = served.test_client()
    body = client.get("/mcp/status", headers={"X-API-Key": key}).get_json()
    assert body["authenticated"] is True
    assert body["principal"] == {
        "name": "Reporting Bot",
        "user_id": "bot-7",
        "role": "developer",
        "permissions": ["read", "write"],
        "expires_at": "2099-12-31T23:59:59Z",
    }
    stored = next(
        k
        for k in served.extensions["mcp_auth"].state_for(served).store
        if k.name == "Reporting Bot"
    )
    assert (stored.requests_per_minute, stored.requests_per_hour) == (100, 1000)
    # A key signed under another secret is refused.
    other = make_app(keys={**SEED_KEYS, **entry}, JWT_SECRET="another-secret").test_client()
    assert other.get("/data", headers={"X-API-Key": key}).status_code == 401


def test_defaults_make_a_guest_key_without_permissions(make_app):
    result = run_cli(make_app(JWT_SECRET=SECRET), "generate-key", "minimal-key")
    assert result.exit_code == 0, result.output
    _, entry = split_output(result.stdout)
    assert entry == {"minimal-key": {"role": "guest", "permissions": []}}


def test_merge_prints_the_whole_document_and_round_trips_through_init_app(make_app):
    app = make_app(JWT_SECRET=SECRET)
    result = run_cli(
        app, "generate-key", "second-key", "--name", "Second", "--role", "user", "--merge"
    )
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)  # stdout is the document and nothing else
    assert list(document) == ["chatgpt-connector-key", "second-key"]
    assert document["chatgpt-connector-key"] == SEED_KEYS["chatgpt-connector-key"]
    key = SIGNED_KEY.search(result.stderr).group(1)
    assert key not in result.stdout

    merged = make_app(keys=result.stdout, JWT_SECRET=SECRET).test_client()
    new = merged.get("/mcp/status", headers={"X-API-Key": key}).get_json()
    old = merged.get("/mcp/status", headers={"X-API-Key": "chatgpt-connector-key"}).get_json()
    assert new["principal"]["name"] == "Second"
    assert old["principal"]["name"] == "ChatGPT Connector"


def test_merge_works_from_a_dict_in_app_config_and_from_no_keys(make_app):
    from_dict = make_app(keys=None, JWT_SECRET=SECRET, MCP_API_KEYS=dict(SEED_KEYS))
    result = run_cli(from_dict, "generate-key", "from-dict-key", "--merge")
    assert list(json.loads(result.stdout)) == ["chatgpt-connector-key", "from-dict-key"]
    assert from_dict.config["MCP_API_KEYS"] == SEED_KEYS  # not modified in place

    empty = run_cli(make_app(keys=None, JWT_SECRET=SECRET), "generate-key", "first", "--merge")
    assert json.loads(empty.stdout) == {"first": {"role": "guest", "permissions": []}}


def test_refuses_an_id_already_in_use_without_printing_it(make_app):
    result = run_cli(make_app(JWT_SECRET=SECRET), "generate-key", "chatgpt-connector-key")
    assert result.exit_code == 1
    assert "already in use by ChatGPT Connector [" in result.stderr
    assert "mcp_" not in result.output
    assert "chatgpt-connector-key" not in result.output


def test_refuses_when_there_is_no_secret(make_app):
    result = run_cli(make_app(), "generate-key", "new-key")
    assert result.exit_code == 1
    assert "no secret to sign keys with: set JWT_SECRET" in result.stderr
    assert "mcp_" not in result.output


def test_the_app_secret_key_is_used_when_jwt_secret_is_unset(make_app):
    result = run_cli(make_app(SECRET_KEY="flask-secret"), "generate-key", "new-key")
    assert result.exit_code == 0, result.output
    key, entry = split_output(result.stdout)
    client = make_app(keys={**SEED_KEYS, **entry}, SECRET_KEY="flask-secret").test_client()
    assert client.get("/data", headers={"X-API-Key": key}).status_code == 200


def test_notes_that_plain_keys_are_accepted_unless_signed_keys_are_required(make_app):
    loose = run_cli(make_app(JWT_SECRET=SECRET), "generate-key", "new-key")
    assert "MCP_REQUIRE_SIGNED_KEYS is off" in loose.stderr
    assert "this id is short" in loose.stderr
    strong = run_cli(
        make_app(JWT_SECRET=SECRET), "generate-key", "Zk3q9_Xv2LmR8pTw4sYb7NcJ5hGd1FeA"
    )
    assert "MCP_REQUIRE_SIGNED_KEYS is off" in strong.stderr
    assert "this id" not in strong.stderr
    strict_app = make_app(JWT_SECRET=SECRET, MCP_REQUIRE_SIGNED_KEYS=True)
    strict = run_cli(strict_app, "generate-key", "new-key")
    assert strict.exit_code == 0
    assert "MCP_REQUIRE_SIGNED_KEYS" not in strict.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--permissions", "read,,write"], "comma-separated names"),
        (["--rpm", "0"], "0 is not in the range x>=1"),
        (["--rph", "-5"], "x>=1"),
        (["--role", "root"], "'root' is not one of"),
        (["--expires", "soon"], "neither an ISO date"),
        (["--expires", "2001-01-01"], "already past"),
        (["--expires", "0d"], "not a positive duration"),
    ],
)
def test_bad_options_are_usage_errors(make_app, args, message):
    result = run_cli(make_app(JWT_SECRET=SECRET), "generate-key", "new-key", *args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert "mcp_" not in result.stdout


def test_a_key_id_start_up_would_reject_is_refused(make_app):
    result = run_cli(make_app(JWT_SECRET=SECRET), "generate-key", "has space")
    assert result.exit_code == 1
    assert "must be printable ASCII without whitespace" in result.stderr
    assert "mcp_" not in result.stdout


NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90d", datetime(2026, 5, 30, 12, 0, 0, tzinfo=UTC)),
        ("12h", datetime(2026, 3, 2, 0, 0, 0, tzinfo=UTC)),
        ("2w", datetime(2026, 3, 15, 12, 0, 0, tzinfo=UTC)),
        ("2026-12-31", datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC)),
        ("2026-12-31T23:59:59Z", datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC)),
        ("2026-06-01T10:00:00+02:00", datetime(2026, 6, 1, 8, 0, 0, tzinfo=UTC)),
        ("2026-06-01T10:00:00", datetime(2026, 6, 1, 10, 0, 0, tzinfo=UTC)),  # naive: UTC
    ],
)
def test_parse_expiry_forms(text, expected):
    assert parse_expiry(text, NOW) == expected


@pytest.mark.parametrize("text", ["2026-02-28", "2026-03-01T12:00:00Z", "0h", "90", "d90", ""])
def test_parse_expiry_rejects_past_and_malformed_values(text):
    with pytest.raises(ValueError):
        parse_expiry(text, NOW)


def test_merge_with_a_key_file_merges_into_the_file(make_app, tmp_path):
    """With MCP_API_KEYS_FILE set, the printed document is the file's plus the new entry,
    so writing it back to the file can never drop the keys the file already held."""
    key_file = tmp_path / "keys.json"
    key_file.write_text(json.dumps({"file-key-0123456789abcdef": {"name": "From file"}}))
    app = make_app(JWT_SECRET=SECRET, MCP_API_KEYS_FILE=str(key_file))
    result = run_cli(app, "generate-key", "added-key", "--name", "Added", "--merge")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert list(document) == ["file-key-0123456789abcdef", "added-key"]  # not the env keys

    key_file.write_text(result.stdout)
    reloaded = make_app(JWT_SECRET=SECRET, MCP_API_KEYS_FILE=str(key_file)).test_client()
    key = SIGNED_KEY.search(result.stderr).group(1)
    assert reloaded.get("/mcp/status", headers={"X-API-Key": key}).get_json()["authenticated"]

    plain = run_cli(app, "generate-key", "another-key")
    assert "Add this entry to MCP_API_KEYS_FILE:" in plain.stdout
