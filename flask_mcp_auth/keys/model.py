"""An API key as the store holds it, its fingerprint, and the constant-time lookup.

In plain-key mode the key id *is* the secret, so nothing here ever puts a key
id into a message: keys are named by their ``name`` and by a fingerprint, a
short keyed hash that is stable across workers and restarts.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

from .. import _time
from .._time import utc_iso

V = TypeVar("V")


def secret_bytes(text: str | bytes) -> bytes:
    """A presented or configured secret as bytes; never raises.

    Header values arrive as latin-1 decoded str and may hold anything; a Flask
    SECRET_KEY may be bytes (the Flask quickstart's example is).
    """
    if isinstance(text, bytes):
        return text
    return text.encode("utf-8", "surrogatepass")


@functools.lru_cache(maxsize=4)
def _keyed_hmac(secret: str | bytes) -> hmac.HMAC:
    # Keying an HMAC costs more than hashing a key id: key it once per secret,
    # copy per key.
    return hmac.new(secret_bytes(secret), digestmod=hashlib.sha256)


def fingerprint(key_id: str, secret: str | bytes | None = None) -> str:
    """A short, non-secret identifier for a key id, the same in every process.

    With a secret it is an HMAC, so a log reader cannot test guesses of a
    plain key id against it.
    """
    data = secret_bytes(key_id)
    if secret:
        mac = _keyed_hmac(secret).copy()
        mac.update(data)
        digest = mac.hexdigest()
    else:
        digest = hashlib.sha256(b"flask-mcp-auth:" + data).hexdigest()
    return digest[:12]


class SecretIndex(Generic[V]):
    """Values looked up by the secret each one holds, in constant time.

    Indexed by a SHA-256 digest of the secret: the lookup hashes the presented
    value, so timing reveals nothing about how much of a stored secret matched;
    a hit is then confirmed against the value's own secret (``secret_of``) with
    ``hmac.compare_digest``.  The value keeps the secret, the index only its digest.
    """

    __slots__ = ("_by_digest", "_secret_of")

    def __init__(self, secret_of: Callable[[V], str | bytes], values: Iterable[V] = ()) -> None:
        self._secret_of = secret_of
        sha256 = hashlib.sha256
        self._by_digest: dict[bytes, V] = {
            sha256(secret_bytes(secret_of(value))).digest(): value for value in values
        }

    def __len__(self) -> int:
        return len(self._by_digest)

    def __iter__(self) -> Iterator[V]:
        return iter(self._by_digest.values())

    def get(self, secret: str) -> V | None:
        presented = secret_bytes(secret)
        value = self._by_digest.get(hashlib.sha256(presented).digest())
        if value is not None and hmac.compare_digest(
            secret_bytes(self._secret_of(value)), presented
        ):
            return value
        return None

    def add(self, value: V) -> None:
        self._by_digest[_digest(self._secret_of(value))] = value

    def clear(self) -> None:
        self._by_digest.clear()


def _digest(secret: str | bytes) -> bytes:
    return hashlib.sha256(secret_bytes(secret)).digest()


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
    #: Set by :func:`new_key`, which leaves ``fingerprint`` unset: it is computed the
    #: first time it is read (a store of 100,000 keys loads without 100,000 HMACs).
    _fingerprint_of: Callable[[str], str] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    if not TYPE_CHECKING:  # for mypy, every attribute stays checked

        def __getattr__(self, name: str) -> str:
            # Reached only for an attribute that is not set: the fingerprint of a
            # key from new_key, stored on first use (then read like any field).
            fingerprint_of = self._fingerprint_of
            if name != "fingerprint" or fingerprint_of is None:
                raise AttributeError(f"'APIKey' object has no attribute {name!r}")
            value = fingerprint_of(self.key_id)
            object.__setattr__(self, "fingerprint", value)
            return value

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled as APIKey(...) with its fingerprint: _fingerprint_of is not picklable.
        return (APIKey, tuple(getattr(self, f.name) for f in fields(self) if f.init))

    @property
    def label(self) -> str:
        """How messages refer to this key: its name and fingerprint, never its id."""
        return f"{self.name or 'unnamed key'} [{self.fingerprint}]"

    def is_expired(self, now: datetime | None = None) -> bool:
        if self.expires_at is None:
            return False
        return (now or _time.now()) >= self.expires_at

    def reference(self) -> dict[str, Any]:
        """Which key this is, for reports: name and fingerprint."""
        return {"name": self.name, "fingerprint": self.fingerprint}

    def public_view(self) -> dict[str, Any]:
        """Everything about the key but its id (the secret): for listings and tools."""
        return {
            **self.reference(),
            "user_id": self.user_id,
            "role": self.role,
            "permissions": sorted(self.permissions),
            "rate_limit": {
                "requests_per_minute": self.requests_per_minute,
                "requests_per_hour": self.requests_per_hour,
            },
            "expires_at": utc_iso(self.expires_at) if self.expires_at else None,
        }


class _NewKey:
    """:class:`APIKey`'s slots without its frozen ``__setattr__``: :data:`new_key`.

    A frozen dataclass sets each field through ``object.__setattr__``, which costs
    more than validating the entry; this class stores them directly, then the
    object becomes the APIKey it is laid out as (``__class__`` assignment between
    classes with the same slots).
    """

    __slots__ = APIKey.__slots__

    def __init__(
        self,
        key_id: str,
        name: str | None,
        user_id: str | None,
        role: str,
        permissions: frozenset[str],
        requests_per_minute: int | None,
        requests_per_hour: int | None,
        expires_at: datetime | None,
        fingerprint_of: Callable[[str], str],
    ) -> None:
        self.key_id = key_id
        self.name = name
        self.user_id = user_id
        self.role = role
        self.permissions = permissions
        self.requests_per_minute = requests_per_minute
        self.requests_per_hour = requests_per_hour
        self.expires_at = expires_at
        self._fingerprint_of = fingerprint_of
        object.__setattr__(self, "__class__", APIKey)


#: ``new_key(key_id, name, user_id, role, permissions, requests_per_minute,
#: requests_per_hour, expires_at, fingerprint_of)``: the APIKey of these fields whose
#: fingerprint is ``fingerprint_of(key_id)``, computed when first read.  Equal to
#: ``APIKey(...)`` with that fingerprint, at a third of the cost.
new_key = cast(
    Callable[
        [
            str,
            str | None,
            str | None,
            str,
            frozenset[str],
            int | None,
            int | None,
            datetime | None,
            Callable[[str], str],
        ],
        APIKey,
    ],
    _NewKey,
)


__all__ = ["APIKey", "SecretIndex", "fingerprint", "new_key", "secret_bytes"]
