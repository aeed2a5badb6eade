"""The ``MCP_API_KEYS`` schema: parsing and validating a key document.

Every problem is a :class:`~flask_mcp_auth.errors.ConfigError` naming the entry
(by its ``name`` or position) and the field, never the key id, which in
plain-key mode is the secret.
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import gc
import json
import operator
import re
from collections.abc import Hashable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from .. import _time
from ..errors import ConfigError
from ..roles import check_role
from .model import APIKey, fingerprint, new_key

SOURCE = "MCP_API_KEYS"

ENTRY_FIELDS = ("name", "userId", "role", "permissions", "rateLimit", "expiresAt")
# \s is str.isspace's set; a key id may hold neither it nor C0 control characters.
# A key id travels in an HTTP header (ISO-8859-1 on the wire) or a URL: printable
# ASCII only, or a key that works in ?api_key= would fail in X-API-Key.
_NOT_PRINTABLE_ASCII = re.compile(r"[^\x21-\x7e]")
RATE_LIMIT_FIELDS = ("requestsPerMinute", "requestsPerHour")

_ENTRY_FIELD_SET = frozenset(ENTRY_FIELDS)


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
    if type(document) is _Members:
        members: Iterable[tuple[Any, Any]] = document
    elif isinstance(document, Mapping):
        members = document.items()
    else:
        raise ConfigError(
            f"{source}: the top level must be a JSON object mapping key ids to key "
            f"definitions, got {_json_type(document)}"
        )
    # One search over all key ids instead of one per key; only if it finds a wrong one
    # are they checked entry by entry, so that the first wrong entry is reported.
    check_key_ids = not _all_key_ids_valid(members)
    shared = _Shared(secret)
    keys: dict[str, APIKey] = {}
    for position, (key_id, entry) in enumerate(members, start=1):
        try:
            if check_key_ids:
                _check_key_id(key_id)
            key = _parse_entry(key_id, entry, shared)
        except _Invalid as invalid:
            _refuse_repeated_key_ids(document, source)  # reported before any entry's problem
            # The entry's label is built only now: a valid entry never needs it.
            where = _entry_label(entry, position)
            if invalid.field_name:
                where = f'{where}, field "{invalid.field_name}"'
            raise ConfigError(f"{source}: {where}: {invalid.problem}") from None
        keys[key.key_id] = key
    if len(keys) != len(document):
        _refuse_repeated_key_ids(document, source)
    return keys


def _refuse_repeated_key_ids(document: Any, source: str) -> None:
    repeated = _object(document).repeated if type(document) is _Members else None
    if repeated is not None:
        position, _, entry = repeated
        raise ConfigError(
            f"{source}: {_entry_label(entry, position)} repeats a key id that appears "
            "earlier; each key id must appear once"
        )


class _Members(tuple[tuple[str, Any], ...]):
    """A JSON object as decoded from text: its members in order.

    The decoder builds it in C, with no call per object, and without a hash table:
    a big store's top level is never made a dict (whose table, freed, would stay in
    the process as fragments).  Validation makes each object it reads a
    :class:`_JSONObject` (:func:`_object`).
    """


class _JSONObject(dict[str, Any]):
    """A decoded JSON object that remembers the first member name it saw twice.

    Validation reports the repeat where it knows which entry and field it is in.
    """

    repeated: tuple[int, str, Any] | None = None  # (position, member name, later value)


def _remember_repeats(pairs: Sequence[tuple[str, Any]]) -> _JSONObject:
    result = _JSONObject(pairs)
    if len(result) == len(pairs):
        return result  # no name twice: the common case, built in C
    result = _JSONObject()
    for position, (name, value) in enumerate(pairs, start=1):
        if name in result and result.repeated is None:
            result.repeated = (position, name, value)
        result[name] = value
    return result


def _object(value: Any) -> Any:
    """``value`` with a decoded object made a :class:`_JSONObject` (anything else as is)."""
    if type(value) is not _Members:
        return value
    return _remember_repeats(value)


def _plain(value: Any) -> Any:
    """``value`` with its objects made dicts, at any depth: how messages show it."""
    if type(value) is _Members:
        return _remember_repeats([(name, _plain(member)) for name, member in value])
    if type(value) is list:
        return [_plain(item) for item in value]
    return value


def _decode_json(raw: str | bytes, source: str) -> Any:
    try:
        return json.loads(raw, object_pairs_hook=_Members)
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
    if type(value) is _Members or isinstance(value, Mapping):
        return "an object"
    if isinstance(value, (list, tuple)):
        return "an array"
    return type(value).__name__


def _entry_label(entry: Any, position: int) -> str:
    entry = _object(entry)
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


class _Invalid(Exception):
    """A problem with a field (or, with no field, the whole) of the entry being parsed.

    :func:`_parse_document` turns it into the ConfigError naming the entry.
    """

    def __init__(self, field_name: str | None, problem: str) -> None:
        super().__init__(problem)
        self.field_name = field_name
        self.problem = problem


def _all_key_ids_valid(members: Iterable[tuple[Any, Any]]) -> bool:
    """True if no key id needs a message (:func:`_check_key_id` would pass them all)."""
    try:
        joined = "".join(map(_first, members))
    except TypeError:  # a key id that is not a string
        return False
    return "" not in map(_first, members) and _NOT_PRINTABLE_ASCII.search(joined) is None


_first = operator.itemgetter(0)


def _check_key_id(key_id: Any) -> None:
    if not isinstance(key_id, str) or not key_id.strip():
        raise _Invalid(None, "the key id must be a non-empty string")
    if _NOT_PRINTABLE_ASCII.search(key_id):
        raise _Invalid(
            None,
            "the key id must be printable ASCII without whitespace or control characters "
            "(it is sent in an HTTP header)",
        )


class _Shared:
    """What the keys of one document share: each distinct value of a field is
    validated once, by the same function as every other, and one result object
    serves every key that has it.

    A cache is keyed by the decoded value *with its type* wherever the type matters:
    JSON's ``1``, ``1.0`` and ``true`` are equal in Python, and an invalid value must
    never find a valid one's result.
    """

    def __init__(self, secret: str | bytes | None) -> None:
        self.strings: dict[str, str] = {}
        self.roles: dict[str, str] = {}
        self.permissions: dict[tuple[str, ...], frozenset[str]] = {}
        self.permission_sets: dict[frozenset[str], frozenset[str]] = {}
        self.rate_limits: dict[Hashable, tuple[int | None, int | None]] = {}
        self.expiries: dict[str, datetime] = {}
        self.fingerprint_of = functools.partial(fingerprint, secret=secret)


def _parse_entry(key_id: Any, entry: Any, shared: _Shared) -> APIKey:
    if type(entry) is _Members:
        pairs, entry = entry, _JSONObject(entry)  # as _remember_repeats would, without a call
        if len(entry) != len(pairs):
            entry = _remember_repeats(pairs)
    elif not isinstance(entry, Mapping):
        raise _Invalid(None, f"the key definition must be a JSON object, got {_json_type(entry)}")
    repeated = getattr(entry, "repeated", None)
    if repeated is not None:
        raise _Invalid(str(repeated[1]), "appears more than once in this entry")
    if not entry.keys() <= _ENTRY_FIELD_SET:
        for field_name in entry:
            if field_name not in ENTRY_FIELDS:
                raise _Invalid(str(field_name), _suggest(str(field_name), ENTRY_FIELDS))

    # A value seen before (a string: no other JSON value equals one) is looked up here,
    # without a call; any other goes to the function that checks it.
    get = entry.get
    strings = shared.strings
    name = get("name")
    if name is not None:
        name = (strings.get(name) if type(name) is str else None) or _kept_string(
            name, "name", strings
        )
    user_id = get("userId")
    if user_id is not None:
        user_id = (strings.get(user_id) if type(user_id) is str else None) or _kept_string(
            user_id, "userId", strings
        )
    role = get("role", "guest")
    role = (shared.roles.get(role) if type(role) is str else None) or _role(role, shared.roles)
    permissions = get("permissions", [])
    rate_limit = get("rateLimit")
    try:
        granted = shared.permissions.get(tuple(permissions)) if type(permissions) is list else None
    except TypeError:  # an unhashable member: refused by _permissions
        granted = None
    if granted is None:
        granted = _permissions(permissions, shared)
    try:
        limits = shared.rate_limits.get(_rate_limit_key(rate_limit))
    except TypeError:  # an unhashable value: refused by _rate_limit
        limits = None
    if limits is None:
        limits = _rate_limit(rate_limit, shared.rate_limits)
    expires_at = get("expiresAt")
    if expires_at is not None:
        expires_at = (
            shared.expiries.get(expires_at) if type(expires_at) is str else None
        ) or _expiry(expires_at, shared.expiries)

    return new_key(
        key_id.encode().decode(),  # a copy, as name and user id are (see _kept_string)
        name,
        user_id,
        role,
        granted,
        limits[0],
        limits[1],
        expires_at,
        shared.fingerprint_of,
    )


def _kept_string(value: Any, field_name: str, strings: dict[str, str]) -> str:
    """The name or user id ``value``, checked, as keys keep it: a copy, one for all keys
    that have it.

    The copy is out of the decoded document: memory goes back to the system only by
    whole arenas, and one string kept from the document would keep its arena, with
    all the document's other objects there, in memory (about twice the size of the
    store itself).
    """
    if not isinstance(value, str) or not value.strip():
        raise _Invalid(field_name, f"must be a non-empty string, got {_json_type(value)}")
    kept = strings[value] = value.encode("utf-8", "surrogatepass").decode("utf-8", "surrogatepass")
    return kept


def _role(value: Any, roles: dict[str, str]) -> str:
    try:
        role = roles[value] = check_role(_plain(value))
    except ValueError as exc:
        raise _Invalid("role", str(exc)) from None
    return role


def _permissions(value: Any, shared: _Shared) -> frozenset[str]:
    granted = _permission_set(value)
    # Lists differing in order or spacing share one set; the list is cached by its
    # members (strings only: no other JSON value equals a string).
    granted = shared.permission_sets.setdefault(granted, granted)
    shared.permissions[tuple(value)] = granted
    return granted


def _permission_set(value: Any) -> frozenset[str]:
    if not isinstance(value, list) or not all(isinstance(p, str) and p.strip() for p in value):
        raise _Invalid("permissions", 'must be a list of non-empty strings, e.g. ["read", "write"]')
    return frozenset(p.strip() for p in value)


def _rate_limit_key(value: Any) -> Hashable:
    """What :func:`_rate_limit`'s result for ``value`` is cached under: the object's
    members with the types of their values (a repeated member is in it too).

    No key (None) for anything but an object as decoded, a plain dict or no limit.
    """
    if value is None:
        return _NO_LIMIT
    if type(value) is _Members:
        return (*value, *map(type, map(_second, value)))
    if type(value) is dict:
        return (*value.items(), *map(type, value.values()))
    return None


_NO_LIMIT = ()


def _rate_limit(
    value: Any, cache: dict[Hashable, tuple[int | None, int | None]]
) -> tuple[int | None, int | None]:
    limits = (None, None) if value is None else _parse_rate_limit(_object(value))
    cache_key = _rate_limit_key(value)  # hashable: valid limits are integers
    if cache_key is not None:
        cache[cache_key] = limits
    return limits


_second = operator.itemgetter(1)


def _parse_rate_limit(value: Any) -> tuple[int | None, int | None]:
    if not isinstance(value, Mapping):
        raise _Invalid("rateLimit", f"must be an object with {' and/or '.join(RATE_LIMIT_FIELDS)}")
    repeated = getattr(value, "repeated", None)
    if repeated is not None:
        raise _Invalid(f"rateLimit.{repeated[1]}", "appears more than once")
    for field_name in value:
        if field_name not in RATE_LIMIT_FIELDS:
            raise _Invalid(f"rateLimit.{field_name}", _suggest(str(field_name), RATE_LIMIT_FIELDS))
    limits: list[int | None] = []
    for field_name in RATE_LIMIT_FIELDS:
        limit = value.get(field_name)
        if limit is not None and (
            not isinstance(limit, int) or isinstance(limit, bool) or limit <= 0
        ):
            raise _Invalid(
                f"rateLimit.{field_name}", f"must be a positive integer, got {_plain(limit)!r}"
            )
        limits.append(limit)
    return limits[0], limits[1]


def _expiry(value: Any, expiries: dict[str, datetime]) -> datetime:
    expires_at = _parse_expiry(value)
    assert expires_at is not None
    expiries[value] = expires_at
    return expires_at


def _parse_expiry(value: Any) -> datetime | None:
    if value is None:
        return None
    # The example is always in the future, so that it can be copied as it is.
    example = f"{_time.now().year + 1}-12-31T23:59:59Z"
    problem = f"must be an ISO 8601 date-time with a timezone, e.g. {example}"
    if not isinstance(value, str):
        raise _Invalid("expiresAt", problem)
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise _Invalid("expiresAt", f"{problem}; got {value!r}") from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise _Invalid("expiresAt", f"{problem}; {value!r} has no timezone")
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00 is before year 1 in UTC
        raise _Invalid("expiresAt", f"{value!r} is out of range in UTC") from None


__all__ = ["ENTRY_FIELDS", "RATE_LIMIT_FIELDS", "SOURCE", "parse_keys"]
