"""The key-document validation as it was before it was made fast for large stores:
the reference the test of :mod:`flask_mcp_auth.keys.schema` compares keys and every
error message against (a verbatim copy but for its imports; never used by the package).

The ``MCP_API_KEYS`` schema: parsing and validating a key document.

Every problem is a :class:`~flask_mcp_auth.errors.ConfigError` naming the entry
(by its ``name`` or position) and the field, never the key id, which in
plain-key mode is the secret.
"""

from __future__ import annotations

import contextlib
import difflib
import gc
import json
import re
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from flask_mcp_auth import _time
from flask_mcp_auth.errors import ConfigError
from flask_mcp_auth.keys.model import APIKey, fingerprint
from flask_mcp_auth.roles import check_role

SOURCE = "MCP_API_KEYS"

ENTRY_FIELDS = ("name", "userId", "role", "permissions", "rateLimit", "expiresAt")
# \s is str.isspace's set; a key id may hold neither it nor C0 control characters.
# A key id travels in an HTTP header (ISO-8859-1 on the wire) or a URL: printable
# ASCII only, or a key that works in ?api_key= would fail in X-API-Key.
_NOT_PRINTABLE_ASCII = re.compile(r"[^\x21-\x7e]")
RATE_LIMIT_FIELDS = ("requestsPerMinute", "requestsPerHour")

#: Builds the ConfigError for a field of the entry being parsed.
Fail = Callable[[str | None, str], ConfigError]


def parse_keys(
    raw: Any, secret: str | bytes | None = None, source: str = SOURCE
) -> dict[str, APIKey]:
    """Validate ``raw`` and return {key id: APIKey}; raise ConfigError naming entry and field."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return {}
    with _collector_paused():
        return _parse_document(raw, secret, source)


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector: a large store allocates millions of small
    objects, which trigger full collections again and again (nearly half the load
    time of 100,000 keys), and none of them is part of a cycle."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _parse_document(raw: Any, secret: str | bytes | None, source: str) -> dict[str, APIKey]:
    document = _decode_json(raw, source) if isinstance(raw, (str, bytes)) else raw
    if not isinstance(document, Mapping):
        raise ConfigError(
            f"{source}: the top level must be a JSON object mapping key ids to key "
            f"definitions, got {_json_type(document)}"
        )
    repeated = getattr(document, "repeated", None)
    if repeated is not None:
        position, _, entry = repeated
        raise ConfigError(
            f"{source}: {_entry_label(entry, position)} repeats a key id that appears "
            "earlier; each key id must appear once"
        )
    keys: dict[str, APIKey] = {}
    # Keys share equal permission sets: one frozenset each, not one per key.
    permission_sets: dict[frozenset[str], frozenset[str]] = {}
    for position, (key_id, entry) in enumerate(document.items(), start=1):
        keys[key_id] = _parse_entry(key_id, entry, position, secret, source, permission_sets)
    return keys


class _JSONObject(dict[str, Any]):
    """A decoded JSON object that remembers the first member name it saw twice.

    Validation reports the repeat where it knows which entry and field it is in.
    """

    repeated: tuple[int, str, Any] | None = None  # (position, member name, later value)


def _remember_repeats(pairs: list[tuple[str, Any]]) -> _JSONObject:
    result = _JSONObject(pairs)
    if len(result) == len(pairs):
        return result  # no name twice: the common case, built in C
    result = _JSONObject()
    for position, (name, value) in enumerate(pairs, start=1):
        if name in result and result.repeated is None:
            result.repeated = (position, name, value)
        result[name] = value
    return result


def _decode_json(raw: str | bytes, source: str) -> Any:
    try:
        return json.loads(raw, object_pairs_hook=_remember_repeats)
    except json.JSONDecodeError as exc:
        # exc.doc holds the whole document (key ids included): report position only.
        problem = _trailing_comma(exc) or exc.msg
        raise ConfigError(
            f"{source} is not valid JSON: {problem} at line {exc.lineno}, column {exc.colno}"
        ) from None
    except (ValueError, RecursionError) as exc:
        raise ConfigError(f"{source} is not valid JSON: {type(exc).__name__}") from None


def _trailing_comma(exc: json.JSONDecodeError) -> str | None:
    """The usual hand-editing slip, named as such: a comma after the last member."""
    closing = exc.doc[exc.pos :].lstrip()[:1]
    before = exc.doc[: exc.pos].rstrip()
    if closing in ("}", "]") and before.endswith(","):
        return f"a trailing comma before '{closing}' (JSON allows no comma after the last item)"
    return None


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (list, tuple)):
        return "an array"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__


def _entry_label(entry: Any, position: int) -> str:
    name = entry.get("name") if isinstance(entry, Mapping) else None
    if isinstance(name, str) and name.strip():
        return f'entry "{name}"'
    return f"entry #{position} (no name)"


def _suggest(field_name: str, valid: tuple[str, ...]) -> str:
    lowered = {v.lower(): v for v in valid}
    match = lowered.get(field_name.lower()) or next(
        iter(difflib.get_close_matches(field_name, valid, n=1, cutoff=0.6)), None
    )
    hint = f"; did you mean '{match}'?" if match else ""
    return f"unknown field '{field_name}'{hint} Valid fields: {', '.join(valid)}"


def _parse_entry(
    key_id: Any,
    entry: Any,
    position: int,
    secret: str | bytes | None,
    source: str,
    permission_sets: dict[frozenset[str], frozenset[str]],
) -> APIKey:
    label = _entry_label(entry, position)

    def fail(field_name: str | None, problem: str) -> ConfigError:
        where = f'{label}, field "{field_name}"' if field_name else label
        return ConfigError(f"{source}: {where}: {problem}")

    if not isinstance(key_id, str) or not key_id.strip():
        raise fail(None, "the key id must be a non-empty string")
    if _NOT_PRINTABLE_ASCII.search(key_id):
        raise fail(
            None,
            "the key id must be printable ASCII without whitespace or control characters "
            "(it is sent in an HTTP header)",
        )
    if not isinstance(entry, Mapping):
        raise fail(None, f"the key definition must be a JSON object, got {_json_type(entry)}")
    repeated = getattr(entry, "repeated", None)
    if repeated is not None:
        raise fail(str(repeated[1]), "appears more than once in this entry")

    for field_name in entry:
        if field_name not in ENTRY_FIELDS:
            raise fail(str(field_name), _suggest(str(field_name), ENTRY_FIELDS))

    name = _optional_string(entry, "name", fail)
    user_id = _optional_string(entry, "userId", fail)

    try:
        role = check_role(entry.get("role", "guest"))
    except ValueError as exc:
        raise fail("role", str(exc)) from None

    permissions = entry.get("permissions", [])
    if not isinstance(permissions, list) or not all(
        isinstance(p, str) and p.strip() for p in permissions
    ):
        raise fail("permissions", 'must be a list of non-empty strings, e.g. ["read", "write"]')

    per_minute, per_hour = _parse_rate_limit(entry.get("rateLimit"), fail)
    expires_at = _parse_expiry(entry.get("expiresAt"), fail)

    granted = frozenset(p.strip() for p in permissions)
    return APIKey(
        key_id=key_id,
        name=name,
        user_id=user_id,
        role=role,
        permissions=permission_sets.setdefault(granted, granted),
        requests_per_minute=per_minute,
        requests_per_hour=per_hour,
        expires_at=expires_at,
        fingerprint=fingerprint(key_id, secret),
    )


def _optional_string(entry: Mapping[str, Any], field_name: str, fail: Fail) -> str | None:
    value = entry.get(field_name)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise fail(field_name, f"must be a non-empty string, got {_json_type(value)}")
    return value


def _parse_rate_limit(value: Any, fail: Fail) -> tuple[int | None, int | None]:
    if value is None:
        return None, None
    if not isinstance(value, Mapping):
        raise fail("rateLimit", f"must be an object with {' and/or '.join(RATE_LIMIT_FIELDS)}")
    repeated = getattr(value, "repeated", None)
    if repeated is not None:
        raise fail(f"rateLimit.{repeated[1]}", "appears more than once")
    for field_name in value:
        if field_name not in RATE_LIMIT_FIELDS:
            raise fail(f"rateLimit.{field_name}", _suggest(str(field_name), RATE_LIMIT_FIELDS))
    limits: list[int | None] = []
    for field_name in RATE_LIMIT_FIELDS:
        limit = value.get(field_name)
        if limit is not None and (
            not isinstance(limit, int) or isinstance(limit, bool) or limit <= 0
        ):
            raise fail(f"rateLimit.{field_name}", f"must be a positive integer, got {limit!r}")
        limits.append(limit)
    return limits[0], limits[1]


def _parse_expiry(value: Any, fail: Fail) -> datetime | None:
    if value is None:
        return None
    # The example is always in the future, so that it can be copied as it is.
    example = f"{_time.now().year + 1}-12-31T23:59:59Z"
    problem = f"must be an ISO 8601 date-time with a timezone, e.g. {example}"
    if not isinstance(value, str):
        raise fail("expiresAt", problem)
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise fail("expiresAt", f"{problem}; got {value!r}") from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise fail("expiresAt", f"{problem}; {value!r} has no timezone")
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00 is before year 1 in UTC
        raise fail("expiresAt", f"{value!r} is out of range in UTC") from None


__all__ = ["ENTRY_FIELDS", "RATE_LIMIT_FIELDS", "SOURCE", "parse_keys"]
