"""The key store: parsing and validating ``MCP_API_KEYS``, and looking keys up.

In plain-key mode the key id *is* the secret, so nothing here ever puts a key
id into a message: entries are named by their ``name`` (or their position) and
by a fingerprint, a short keyed hash that is stable across workers and restarts.
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import gc
import hashlib
import hmac
import json
import logging
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .errors import ConfigError
from .principal import ROLES

log = logging.getLogger("flask_mcp_auth.keys")

SOURCE = "MCP_API_KEYS"

ENTRY_FIELDS = ("name", "userId", "role", "permissions", "rateLimit", "expiresAt")
# \s is str.isspace's set; a key id may hold neither it nor C0 control characters.
# A key id travels in an HTTP header (ISO-8859-1 on the wire) or a URL: printable
# ASCII only, or a key that works in ?api_key= would fail in X-API-Key.
_NOT_PRINTABLE_ASCII = re.compile(r"[^\x21-\x7e]")
RATE_LIMIT_FIELDS = ("requestsPerMinute", "requestsPerHour")
_CANONICAL_ROLES = {role: role for role in ROLES}


def _now() -> datetime:
    """The current instant (UTC); one place, so tests can pin the clock."""
    return datetime.now(UTC)


def _secret_bytes(text: str | bytes) -> bytes:
    # Header values arrive as latin-1 decoded str and may hold anything; never raise.
    # A Flask SECRET_KEY may be bytes (the Flask quickstart's example is).
    if isinstance(text, bytes):
        return text
    return text.encode("utf-8", "surrogatepass")


@functools.lru_cache(maxsize=4)
def _keyed_hmac(secret: str | bytes) -> hmac.HMAC:
    # Keying an HMAC costs more than hashing a key id: key it once per secret
    # (a store of 100,000 keys fingerprints them all at start-up), copy per key.
    return hmac.new(_secret_bytes(secret), digestmod=hashlib.sha256)


def fingerprint(key_id: str, secret: str | bytes | None = None) -> str:
    """A short, non-secret identifier for a key id, the same in every process.

    With a secret it is an HMAC, so a log reader cannot test guesses of a
    plain key id against it.
    """
    data = _secret_bytes(key_id)
    if secret:
        mac = _keyed_hmac(secret).copy()
        mac.update(data)
        digest = mac.hexdigest()
    else:
        digest = hashlib.sha256(b"flask-mcp-auth:" + data).hexdigest()
    return digest[:12]


@dataclass(frozen=True, slots=True)
class APIKey:
    """One validated entry of the key store."""

    key_id: str = field(repr=False)
    name: str | None
    user_id: str | None
    role: str
    permissions: frozenset[str]
    requests_per_minute: int | None
    requests_per_hour: int | None
    expires_at: datetime | None
    fingerprint: str

    @property
    def label(self) -> str:
        """How messages refer to this key: its name and fingerprint, never its id."""
        return f"{self.name or 'unnamed key'} [{self.fingerprint}]"

    def is_expired(self, now: datetime | None = None) -> bool:
        if self.expires_at is None:
            return False
        return (now or _now()) >= self.expires_at


class KeyStore:
    """An immutable set of API keys, looked up by the presented key id."""

    def __init__(self, keys: Mapping[str, APIKey] | None = None) -> None:
        # Indexed by a digest of the key id: the lookup hashes the presented
        # value, so timing reveals nothing about how much of a key id matched.
        self._by_digest: dict[bytes, APIKey] = {
            hashlib.sha256(_secret_bytes(k)).digest(): v for k, v in (keys or {}).items()
        }

    def __len__(self) -> int:
        return len(self._by_digest)

    def __iter__(self) -> Iterator[APIKey]:
        return iter(self._by_digest.values())

    def find(self, key_id: str) -> APIKey | None:
        presented = _secret_bytes(key_id)
        key = self._by_digest.get(hashlib.sha256(presented).digest())
        if key is not None and hmac.compare_digest(_secret_bytes(key.key_id), presented):
            return key
        return None

    def contains(self, key_id: str) -> bool:
        return self.find(key_id) is not None

    @classmethod
    def load(cls, raw: Any, secret: str | bytes | None = None, source: str = SOURCE) -> KeyStore:
        """Parse and validate a key store (JSON text, or an already-decoded mapping)."""
        return cls(parse_keys(raw, secret, source))


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
        raise ConfigError(
            f"{source} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
        ) from None
    except (ValueError, RecursionError) as exc:
        raise ConfigError(f"{source} is not valid JSON: {type(exc).__name__}") from None


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

    role = entry.get("role", "guest")
    if role not in ROLES:
        raise fail("role", f"unknown role {role!r}; expected one of {', '.join(ROLES)}")

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
        role=_CANONICAL_ROLES[role],  # one string per role, not one per key
        permissions=permission_sets.setdefault(granted, granted),
        requests_per_minute=per_minute,
        requests_per_hour=per_hour,
        expires_at=expires_at,
        fingerprint=fingerprint(key_id, secret),
    )


def _optional_string(entry: Mapping[str, Any], field_name: str, fail: Any) -> str | None:
    value = entry.get(field_name)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise fail(field_name, f"must be a non-empty string, got {_json_type(value)}")
    return value


def _parse_rate_limit(value: Any, fail: Any) -> tuple[int | None, int | None]:
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


def _parse_expiry(value: Any, fail: Any) -> datetime | None:
    if value is None:
        return None
    problem = "must be an ISO 8601 date-time with a timezone, e.g. 2025-12-31T23:59:59Z"
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


def warn_about_store(store: KeyStore, source: str = SOURCE) -> None:
    """Start-up warnings: an empty store, keys that have already expired."""
    if len(store) == 0:
        log.warning("%s is unset or empty: no API keys are configured", source)
        return
    now = _now()
    for key in store:
        if key.is_expired(now):
            log.warning("API key %s expired at %s", key.label, key.expires_at.isoformat())
    log.debug("loaded %d API key(s) from %s", len(store), source)
