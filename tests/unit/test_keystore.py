"""MCP_API_KEYS: the schema, least-privilege defaults, every bad-input case, and a large
store keeping one copy of what its keys have in common."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import pickle
import traceback
from dataclasses import FrozenInstanceError
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support import reference_schema as reference
from support.clocks import frozen_clock
from support.flask_app import build_app
from support.seed import SEED_FULL_ENTRY_JSON, SEED_KEY

from flask_mcp_auth import ConfigError, KeyStore
from flask_mcp_auth.keys.model import APIKey, fingerprint
from flask_mcp_auth.keys.schema import (
    ENTRY_FIELDS,
    RATE_LIMIT_FIELDS,
    parse_keys,
)
from flask_mcp_auth.roles import ROLES

# A key id nobody could mistake for another string in a message.
SECRET_ID = "kid-7f3a9c2e-SECRET-d41b"
KEYS_LOGGER = "flask_mcp_auth"


def config_error(raw: Any) -> str:
    """The ConfigError message ``raw`` produces, as a user would see it at start-up.

    The whole formatted traceback is returned: chained exceptions must not leak the key id either.
    """
    with pytest.raises(ConfigError) as excinfo:
        parse_keys(raw)
    return "".join(traceback.format_exception(excinfo.value))


def with_entry(entry: Any, *, position: int = 1) -> str:
    """A store whose entry number ``position`` (1-based) is ``entry`` under SECRET_ID."""
    document: dict[str, Any] = {f"fine-key-{n}": {"name": f"Fine {n}"} for n in range(1, position)}
    document[SECRET_ID] = entry
    return json.dumps(document)


# -- the schema -------------------------------------------------------------------


def test_the_seed_configuration_options_example_parses_field_by_field() -> None:
    [key] = parse_keys(SEED_FULL_ENTRY_JSON).values()
    assert key.name == "ChatGPT Connector"
    assert key.user_id == "connector-user"
    assert key.role == "user"
    assert key.permissions == frozenset({"*"})
    assert (key.requests_per_minute, key.requests_per_hour) == (100, 1000)
    assert key.expires_at == datetime(2025, 12, 31, 23, 59, 59, tzinfo=UTC)


def test_missing_optional_fields_get_least_privilege() -> None:
    [key] = parse_keys('{"bare-key": {}}').values()
    assert key.name is None
    assert key.user_id is None
    assert key.role == "guest"
    assert key.permissions == frozenset()
    assert key.requests_per_minute is None
    assert key.requests_per_hour is None
    assert key.expires_at is None


def test_a_key_with_only_a_name_authenticates_as_guest_without_permissions() -> None:
    app = build_app({"bare-key": {"name": "Bare"}})
    body = app.test_client().get("/whoami", headers={"X-API-Key": "bare-key"}).get_json()
    assert body["is_authenticated"] is True
    assert body["role"] == "guest"
    assert body["permissions"] == []


def test_one_rate_limit_without_the_other() -> None:
    [key] = parse_keys('{"k": {"rateLimit": {"requestsPerHour": 5}}}').values()
    assert (key.requests_per_minute, key.requests_per_hour) == (None, 5)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2030-06-01T12:00:00Z", datetime(2030, 6, 1, 12, tzinfo=UTC)),
        ("2030-06-01T14:00:00+02:00", datetime(2030, 6, 1, 12, tzinfo=UTC)),
        ("2030-06-01T12:00:00.250000+00:00", datetime(2030, 6, 1, 12, 0, 0, 250000, tzinfo=UTC)),
    ],
)
def test_expires_at_with_a_timezone_is_normalised_to_utc(text: str, expected: datetime) -> None:
    [key] = parse_keys({"k": {"expiresAt": text}}).values()
    assert key.expires_at == expected
    assert key.expires_at.tzinfo == UTC


def test_lookup_is_exact() -> None:
    store = KeyStore.load(SEED_FULL_ENTRY_JSON)
    assert store.contains(SEED_KEY)
    for near_miss in (SEED_KEY.upper(), SEED_KEY + " ", SEED_KEY[:-1], SEED_KEY + "x", ""):
        assert store.find(near_miss) is None


def test_fingerprint_is_stable_short_and_depends_on_the_secret() -> None:
    assert fingerprint(SECRET_ID) == fingerprint(SECRET_ID)
    assert len(fingerprint(SECRET_ID)) == 12
    assert fingerprint(SECRET_ID) != fingerprint(SECRET_ID + "x")
    assert fingerprint(SECRET_ID, "one") != fingerprint(SECRET_ID, "two")
    assert SECRET_ID not in fingerprint(SECRET_ID)


@settings(max_examples=60, deadline=None)
@given(
    key_id=st.text(min_size=1, max_size=40),
    secret=st.binary(min_size=1, max_size=150) | st.text(min_size=1, max_size=100),
)
def test_a_fingerprint_is_the_hmac_sha256_of_the_key_id(key_id: str, secret: str | bytes) -> None:
    """Its definition, which audit lines, rate-limit storage keys and the status route
    share across workers and restarts (keys longer than SHA-256's block included)."""
    key = secret if isinstance(secret, bytes) else secret.encode()
    expected = hmac.new(key, key_id.encode(), hashlib.sha256).hexdigest()[:12]
    assert fingerprint(key_id, secret) == expected
    assert (
        fingerprint(key_id) == hashlib.sha256(b"flask-mcp-auth:" + key_id.encode()).hexdigest()[:12]
    )


# -- unset or empty -----------------------------------------------------------------


@pytest.mark.parametrize("raw", [None, "", "   \n", "{}", {}])
def test_unset_or_empty_store_starts_with_no_keys_and_warns(
    caplog: pytest.LogCaptureFixture, raw: Any
) -> None:
    caplog.set_level(logging.WARNING, logger=KEYS_LOGGER)
    app = build_app(keys=raw) if raw is not None else build_app(keys=None)
    assert len(app.extensions["mcp_auth"].state_for(app).store) == 0
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert any("MCP_API_KEYS" in r.getMessage() for r in warnings)
    # The app works: anonymous callers get the default role, any key is refused.
    client = app.test_client()
    assert client.get("/whoami").get_json()["role"] == "guest"
    assert client.get("/whoami", headers={"X-API-Key": SEED_KEY}).status_code == 401


def test_a_configured_store_logs_no_empty_store_warning(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger=KEYS_LOGGER)
    build_app()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


# -- expiry at start-up -------------------------------------------------------------


def test_a_key_expired_at_start_up_is_named_by_name_and_fingerprint(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger=KEYS_LOGGER)
    app = build_app(SEED_FULL_ENTRY_JSON)  # expiresAt 2025-12-31T23:59:59Z is past
    [key] = list(app.extensions["mcp_auth"].state_for(app).store)
    [warning] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "ChatGPT Connector" in warning
    assert key.fingerprint in warning
    assert "expired" in warning
    assert SEED_KEY not in warning


def test_an_unnamed_expired_key_is_named_by_its_fingerprint(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger=KEYS_LOGGER)
    app = build_app({SECRET_ID: {"expiresAt": "2020-01-01T00:00:00Z"}})
    [key] = list(app.extensions["mcp_auth"].state_for(app).store)
    [warning] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert key.fingerprint in warning
    assert SECRET_ID not in warning


def test_no_expiry_warning_before_the_expiry_instant(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=KEYS_LOGGER)
    before = datetime(2025, 12, 31, 23, 59, 59, tzinfo=UTC) - timedelta(microseconds=1)
    with frozen_clock(monkeypatch, before):
        build_app(SEED_FULL_ENTRY_JSON)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


# -- bad input: every case names the entry and field, never the key id ----------------


def test_malformed_json_reports_line_and_column_and_hides_the_document() -> None:
    raw = '{\n  "' + SECRET_ID + '": {\n    "name": "Broken"\n    "role": "user"\n  }\n}'
    message = config_error(raw)
    assert "MCP_API_KEYS" in message
    assert "not valid JSON" in message
    assert "line 4, column 5" in message
    assert SECRET_ID not in message


def test_malformed_json_single_line_trailing_comma() -> None:
    message = config_error('{"' + SECRET_ID + '": {"name": "A",}}')
    assert "line 1, column" in message
    assert "a trailing comma before '}'" in message
    assert SECRET_ID not in message


@pytest.mark.parametrize(
    ("raw", "closing"),
    [
        ('{"k": {"permissions": ["read",]}}', "]"),
        ('{\n  "k": {"role": "user"},\n  "j": {"role": "user"},\n}', "}"),
        ('{"k": {"role": "user",\n    }\n}', "}"),
    ],
)
def test_a_trailing_comma_is_named_as_such(raw: str, closing: str) -> None:
    message = config_error(raw)
    assert f"a trailing comma before '{closing}'" in message
    assert "no comma after the last item" in message


def test_other_syntax_errors_keep_the_parser_message() -> None:
    message = config_error('{"k": {"role": "user" "name": "x"}}')
    assert "trailing comma" not in message
    assert "Expecting ',' delimiter" in message


def test_malformed_json_stops_init_app() -> None:
    with pytest.raises(ConfigError, match=r"line 1, column \d+"):
        build_app("{not json")


@pytest.mark.parametrize(
    ("raw", "kind"),
    [
        ("[]", "an array"),
        ('"' + SECRET_ID + '"', "a string"),
        ("42", "a number"),
        ("null", "null"),
        ("true", "a boolean"),
        (["list"], "an array"),
    ],
)
def test_top_level_must_be_an_object(raw: Any, kind: str) -> None:
    message = config_error(raw)
    assert "top level must be a JSON object" in message
    assert kind in message
    assert SECRET_ID not in message


@pytest.mark.parametrize("entry", ["user", ["read"], None, 7, True])
def test_an_entry_that_is_not_an_object_is_named_by_position(entry: Any) -> None:
    message = config_error(with_entry(entry, position=2))
    assert "entry #2" in message
    assert "must be a JSON object" in message
    assert SECRET_ID not in message


@pytest.mark.parametrize(
    ("typo", "suggestion"),
    [
        ("expiresat", "expiresAt"),
        ("expires_at", "expiresAt"),
        ("userid", "userId"),
        ("user_id", "userId"),
        ("permission", "permissions"),
        ("Role", "role"),
        ("ratelimit", "rateLimit"),
    ],
)
def test_an_unknown_field_suggests_the_closest_valid_name(typo: str, suggestion: str) -> None:
    message = config_error(with_entry({"name": "Typo Key", typo: "x"}))
    assert 'entry "Typo Key"' in message
    assert f'field "{typo}"' in message
    assert f"did you mean '{suggestion}'?" in message
    assert SECRET_ID not in message


def test_expiresat_typo_never_makes_a_key_immortal() -> None:
    entry = {"name": "Seed", "role": "user", "expiresat": "2025-12-31T23:59:59Z"}
    with pytest.raises(ConfigError, match="did you mean 'expiresAt'"):
        build_app({SECRET_ID: entry})


def test_an_unrelated_unknown_field_lists_the_valid_fields() -> None:
    message = config_error(with_entry({"colour": "blue"}, position=3))
    assert "entry #3" in message
    assert "unknown field 'colour'" in message
    assert "did you mean" not in message
    assert "Valid fields: name, userId, role, permissions, rateLimit, expiresAt" in message


def test_an_unknown_rate_limit_field_suggests_the_closest_name() -> None:
    message = config_error(with_entry({"name": "RL", "rateLimit": {"requestsPerMin": 5}}))
    assert 'field "rateLimit.requestsPerMin"' in message
    assert "did you mean 'requestsPerMinute'?" in message
    assert SECRET_ID not in message


@pytest.mark.parametrize("role", ["superuser", "Admin", "", "root", 3, ["user"]])
def test_an_unknown_role_is_refused(role: Any) -> None:
    message = config_error(with_entry({"name": "Role Key", "role": role}))
    assert 'entry "Role Key", field "role"' in message
    assert "unknown role" in message
    assert "guest, user, developer, admin" in message
    assert SECRET_ID not in message


@pytest.mark.parametrize(
    "permissions",
    ["read", "*", ["read", ""], ["read", "   "], ["read", 5], [None], {"read": True}, 1],
)
def test_permissions_must_be_a_list_of_non_empty_strings(permissions: Any) -> None:
    message = config_error(with_entry({"name": "Perm Key", "permissions": permissions}))
    assert 'entry "Perm Key", field "permissions"' in message
    assert "list of non-empty strings" in message
    assert SECRET_ID not in message


@pytest.mark.parametrize("limit_field", ["requestsPerMinute", "requestsPerHour"])
@pytest.mark.parametrize("value", [0, -1, 1.5, "10", True, False, [10]])
def test_limits_must_be_positive_integers(limit_field: str, value: Any) -> None:
    entry = {"name": "Limit Key", "rateLimit": {limit_field: value}}
    message = config_error(with_entry(entry))
    assert f'entry "Limit Key", field "rateLimit.{limit_field}"' in message
    assert "must be a positive integer" in message
    assert SECRET_ID not in message


@pytest.mark.parametrize("rate_limit", [100, "100/minute", [100, 1000]])
def test_rate_limit_must_be_an_object(rate_limit: Any) -> None:
    message = config_error(with_entry({"rateLimit": rate_limit}, position=2))
    assert 'entry #2 (no name), field "rateLimit"' in message
    assert SECRET_ID not in message


@pytest.mark.parametrize(
    "expires_at",
    [
        "2025-12-31",  # date only
        "2025-12-31T23:59:59",  # naive
        "garbage",
        "",
        "31/12/2025 23:59",
        "2025-13-31T00:00:00Z",
        1767225599,
    ],
)
def test_expires_at_must_be_iso_8601_with_a_timezone(expires_at: Any) -> None:
    message = config_error(with_entry({"name": "Expiry Key", "expiresAt": expires_at}))
    assert 'entry "Expiry Key", field "expiresAt"' in message
    assert "ISO 8601" in message
    assert "timezone" in message
    assert SECRET_ID not in message


@pytest.mark.parametrize("name", [5, "", "   ", ["x"]])
def test_name_and_user_id_must_be_non_empty_strings(name: Any) -> None:
    message = config_error(with_entry({"name": name}, position=2))
    assert 'entry #2 (no name), field "name"' in message
    message = config_error(with_entry({"name": "U", "userId": name}))
    assert 'entry "U", field "userId"' in message
    assert SECRET_ID not in message


@pytest.mark.parametrize(
    "bad_id", ["", "   ", " padded", "with space", "tab\there", "ü-key", "ключ-1", "del\x7f"]
)
def test_key_ids_must_be_non_empty_printable_ascii(bad_id: str) -> None:
    """Headers carry ISO-8859-1 bytes: a non-ASCII id could work in ?api_key= but
    never in X-API-Key, so it is refused at start-up."""
    message = config_error(json.dumps({bad_id: {"name": "Spacey"}}))
    assert 'entry "Spacey"' in message
    assert "key id" in message
    if bad_id.strip():
        assert bad_id.strip() not in message


def test_a_repeated_key_id_is_refused_without_naming_it() -> None:
    raw = '{"' + SECRET_ID + '": {"name": "First"}, "' + SECRET_ID + '": {"name": "Second"}}'
    message = config_error(raw)
    assert 'entry "Second"' in message
    assert "repeats a key id" in message
    assert SECRET_ID not in message
    unnamed = '{"a": {}, "' + SECRET_ID + '": {}, "' + SECRET_ID + '": {}}'
    assert "entry #3 (no name) repeats a key id" in config_error(unnamed)


@pytest.mark.parametrize(
    ("entry_json", "label", "field"),
    [
        ('{"name": "Twice", "role": "user", "role": "admin"}', 'entry "Twice"', "role"),
        ('{"expiresAt": "2030-01-01T00:00:00Z", "expiresAt": null}', "entry #2", "expiresAt"),
        (
            '{"name": "RL", "rateLimit": {"requestsPerHour": 1, "requestsPerHour": 9}}',
            'entry "RL"',
            "rateLimit.requestsPerHour",
        ),
    ],
)
def test_a_repeated_field_names_the_entry_and_the_field(
    entry_json: str, label: str, field: str
) -> None:
    # Plain JSON would silently keep the last value: a repeated expiresAt: null would
    # make the key immortal.
    message = config_error('{"fine": {}, "' + SECRET_ID + '": ' + entry_json + "}")
    assert f"{label}" in message
    assert f'field "{field}"' in message
    assert "more than once" in message
    assert SECRET_ID not in message


def test_a_bad_entry_after_a_good_one_stops_start_up() -> None:
    app_config = {"good-key": {"name": "Good"}, SECRET_ID: {"name": "Bad", "role": "root"}}
    with pytest.raises(ConfigError, match='entry "Bad", field "role"'):
        build_app(app_config)


# Any JSON value; strings never contain "#", which every generated key id does, so a
# message can only contain a key id by leaking it.
_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-5, 5)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from(["user", "admin", "read", "*", "2030-01-01T00:00:00Z", "2030-01-01", ""])
    | st.text(st.characters(blacklist_characters="#"), max_size=8),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.sampled_from(ENTRY_FIELDS + RATE_LIMIT_FIELDS + ("x",)), children)
    ),
    max_leaves=8,
)
_entries = (
    st.dictionaries(
        st.sampled_from((*ENTRY_FIELDS, "expiresat", "extra")), _json_values, max_size=4
    )
    | _json_values
)


@settings(max_examples=100, deadline=None)
@given(
    key_id=st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=4, max_size=12).map(
        lambda text: f"#{text}#"
    ),
    entry=_entries,
    position=st.integers(1, 3),
)
def test_no_error_message_ever_contains_the_key_id(key_id: str, entry: Any, position: int) -> None:
    document: dict[str, Any] = {f"fine-{n}": {} for n in range(1, position)}
    document[key_id] = entry
    for raw in (document, json.dumps(document)):
        try:
            parse_keys(raw)
        except ConfigError as error:
            message = "".join(traceback.format_exception(error))
            assert key_id not in message


# -- memory: shared permission sets and roles --------------------------------------


def test_equal_permission_sets_and_roles_are_shared_between_keys() -> None:
    document = {
        f"key-{i}": {"role": "user", "permissions": ["read", " write"] if i % 2 else ["*"]}
        for i in range(6)
    }
    keys = list(parse_keys(json.dumps(document)).values())
    assert keys[1].permissions == frozenset({"read", "write"})
    assert keys[1].permissions is keys[3].permissions is keys[5].permissions
    assert keys[0].permissions is keys[2].permissions
    assert all(key.role is ROLES[1] for key in keys)


def test_sharing_does_not_leak_between_loads() -> None:
    first = parse_keys(json.dumps({"a": {"permissions": ["read"]}}))["a"]
    second = parse_keys(json.dumps({"a": {"permissions": ["read", "write"]}}))["a"]
    assert first.permissions == frozenset({"read"})
    assert second.permissions == frozenset({"read", "write"})


@pytest.mark.parametrize(
    "today", [datetime(2026, 12, 1, tzinfo=UTC), datetime(2031, 6, 15, tzinfo=UTC)]
)
def test_the_expiry_example_in_the_message_is_in_the_future_and_accepted(
    monkeypatch: pytest.MonkeyPatch, today: datetime
) -> None:
    """A user who copies the suggested value gets a key that works, whatever the date."""
    with frozen_clock(monkeypatch, today):
        message = config_error(with_entry({"name": "Expiry Key", "expiresAt": "2026-12-31"}))
        example = message.split("e.g. ", 1)[1].split(";", 1)[0]
        [key] = parse_keys({"k": {"expiresAt": example}}).values()
        assert key.expires_at is not None and key.expires_at > today
        assert not key.is_expired()


# -- large stores: the validation checks equal values once ----------------------------
# tests/support/reference_schema.py is the validation as it was before: the same
# keys and, for every invalid document, byte for byte the same message.

_key_ids = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=8) | st.just("")
_some_text = st.text(max_size=6) | st.sampled_from(["Ops", " padded ", "é", "\ud800 lone"])
# Values equal across JSON types (1 == 1.0 == true) next to valid ones: a value checked
# once must never stand in for an equal value of another type.
_tricky_numbers = st.sampled_from([1, 1.0, True, 0, 0.0, False, 60, 60.0, -1, None])


class _Pairs(tuple[tuple[str, Any], ...]):
    """A JSON object written member by member: its names may repeat."""


def _objects(names: st.SearchStrategy[str], values: st.SearchStrategy[Any]) -> Any:
    return st.lists(st.tuples(names, values), max_size=3).map(_Pairs)


_values = st.recursive(
    _tricky_numbers
    | st.sampled_from(["user", "admin", "read", "*", " write ", "2030-01-01T00:00:00Z", ""])
    | st.sampled_from(["2030-01-01", " 2031-06-01T12:00:00+02:00", "0001-01-01T00:00:00+01:00"])
    | _some_text,
    lambda children: (
        st.lists(children, max_size=3)
        | _objects(st.sampled_from((*ENTRY_FIELDS, *RATE_LIMIT_FIELDS, "x")), children)
    ),
    max_leaves=6,
)
_limits = _objects(st.sampled_from((*RATE_LIMIT_FIELDS, "requestsperminute")), _tricky_numbers)
_fields = st.sampled_from((*ENTRY_FIELDS, "expiresat"))
_entry_values = (
    st.tuples(st.just("rateLimit"), _limits)
    | st.tuples(st.just("role"), st.sampled_from([*ROLES, 1, True, "root"]))
    | st.tuples(st.just("permissions"), st.lists(st.sampled_from(["read", " x ", 1, ""])))
    | st.tuples(_fields, _values)
)
_entries_of_fields = st.lists(_entry_values, max_size=4).map(_Pairs)
_documents = st.lists(
    st.tuples(_key_ids, _entries_of_fields | _objects(_fields, _values) | _values), max_size=5
).map(_Pairs)


def _json_text(value: Any) -> str:
    if isinstance(value, _Pairs):
        return "{" + ", ".join(f"{json.dumps(n)}: {_json_text(v)}" for n, v in value) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_json_text(item) for item in value) + "]"
    return json.dumps(value)


def _outcome(parse: Any, raw: Any, secret: str | None) -> list[tuple[str, APIKey]] | str:
    try:
        return list(parse(raw, secret).items())
    except ConfigError as error:
        return str(error)


@settings(max_examples=400, deadline=None)
@given(document=_documents, secret=st.none() | st.just("signing-secret"))
def test_keys_and_every_message_are_those_of_the_reference_validation(
    document: _Pairs, secret: str | None
) -> None:
    """From text (names may repeat) and from a mapping: the same keys in the same order,
    fingerprints included, or the same message."""
    raw = _json_text(document)
    assert _outcome(parse_keys, raw, secret) == _outcome(reference.parse_keys, raw, secret)
    mapping = json.loads(raw)
    assert _outcome(parse_keys, mapping, secret) == _outcome(reference.parse_keys, mapping, secret)


@settings(max_examples=100, deadline=None)
@given(
    limit=st.lists(
        st.tuples(st.sampled_from(RATE_LIMIT_FIELDS), st.sampled_from([1, 60])),
        min_size=1,
        max_size=2,
        unique_by=lambda member: member[0],
    ),
    other_type=st.sampled_from([float, bool]),
    changed=st.integers(0, 1),
    copies=st.integers(1, 3),
    role=st.sampled_from(["user", 1, True, 1.0]),
)
def test_a_value_checked_once_never_stands_in_for_an_equal_one_of_another_type(
    limit: list[tuple[str, int]], other_type: type, changed: int, copies: int, role: Any
) -> None:
    """Valid limits, then the same limits with one value of another JSON type (1.0, true):
    equal in Python, refused by the reference validation, so refused here too.
    (tests/support/reference_schema.py checks each entry on its own.)"""
    index = changed % len(limit)
    name, value = limit[index]
    variant = [*limit[:index], (name, other_type(value)), *limit[index + 1 :]]
    entries = [_Pairs([("rateLimit", _Pairs(limit)), ("role", "user")])] * copies
    entries.append(_Pairs([("rateLimit", _Pairs(variant)), ("role", role)]))
    raw = _json_text(_Pairs((f"key-{n}", entry) for n, entry in enumerate(entries)))
    for document in (raw, json.loads(raw)):  # from text and from a mapping
        expected = _outcome(reference.parse_keys, document, None)
        assert isinstance(expected, str)
        assert _outcome(parse_keys, document, None) == expected


@pytest.mark.parametrize(
    ("valid", "equal_but_invalid", "field"),
    [
        ('{"requestsPerMinute": 1}', '{"requestsPerMinute": 1.0}', "rateLimit.requestsPerMinute"),
        ('{"requestsPerMinute": 1}', '{"requestsPerMinute": true}', "rateLimit.requestsPerMinute"),
        ('{"requestsPerHour": 5}', '{"requestsPerHour": 5, "requestsPerHour": 5}', "rateLimit"),
    ],
)
def test_a_value_equal_to_a_valid_one_is_still_checked(
    valid: str, equal_but_invalid: str, field: str
) -> None:
    raw = f'{{"a": {{"rateLimit": {valid}}}, "b": {{"rateLimit": {equal_but_invalid}}}}}'
    with pytest.raises(ConfigError, match=f'entry #2 \\(no name\\), field "{field}') as excinfo:
        parse_keys(raw)
    assert str(excinfo.value) == _outcome(reference.parse_keys, raw, None)


def test_a_repeated_key_id_is_reported_before_a_bad_entry_ahead_of_it() -> None:
    raw = '{"a": {}, "b": {"role": "root"}, "a": {"name": "Again"}}'
    with pytest.raises(ConfigError, match='entry "Again" repeats a key id'):
        parse_keys(raw)


def test_keys_keep_no_string_of_the_decoded_document() -> None:
    """Key ids, names and user ids are copies, shared by the keys with equal ones: a
    string from the document would keep its memory from going back to the system."""
    raw = json.dumps({f"key-{i}": {"name": "Same", "userId": f"user-{i % 2}"} for i in range(4)})
    document = json.loads(raw)
    keys = list(parse_keys(raw).values())
    assert len({id(key.name) for key in keys}) == 1
    assert len({id(key.user_id) for key in keys}) == 2
    mapping_keys = parse_keys(document)
    for key_id, entry in document.items():
        key = mapping_keys[key_id]
        assert key.key_id == key_id and key.key_id is not key_id
        assert key.name == entry["name"] and key.name is not entry["name"]


def test_keys_are_frozen_and_pickle_with_their_fingerprint() -> None:
    [key] = parse_keys(SEED_FULL_ENTRY_JSON, "signing-secret").values()
    with pytest.raises(FrozenInstanceError):
        key.role = "admin"  # type: ignore[misc]
    copy = pickle.loads(pickle.dumps(key))
    assert copy == key
    assert copy.fingerprint == key.fingerprint == fingerprint(SEED_KEY, "signing-secret")
    with pytest.raises(AttributeError):
        key.no_such_field  # type: ignore[attr-defined]  # noqa: B018
