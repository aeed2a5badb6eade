"""Principals of the credentials this process has already verified.

Resolving a presented credential costs a signature check, a key-store lookup
and a new :class:`Principal`.  With a fixed key store and secret, a credential
that resolved once resolves to the same key every time, so the principal is
kept, per credential source, in a dict keyed by the presented value.

Timing: a dict lookup compares the presented string with a stored one only
when their 64-bit hashes are equal (Python's string hash is SipHash, keyed per
process), so for any value other than a stored credential no comparison with a
secret runs, and which slots are probed depends on hashes no caller can
compute.  That is the property the constant-time comparison of
:meth:`KeyStore.find` protects, without a SHA-256 per request, which cost
about 2 us a request here.

Only credentials that resolved to a key are kept, so the table holds at most a
few entries per key in use; it is emptied when it reaches ``limit`` entries
(with more keys in use than that, hits only become rarer).  Expiry is not
cached: the caller checks it on every request.  A table belongs to one key
store; the extension starts a new one when its store is replaced.
"""

from __future__ import annotations

from .credentials import Credential
from .keystore import KeyStore
from .principal import Principal

DEFAULT_LIMIT = 10_000


class VerifiedCredentials:
    def __init__(self, store: KeyStore, limit: int = DEFAULT_LIMIT) -> None:
        self.store = store
        self._limit = limit
        self._principals: dict[tuple[str, str], Principal] = {}

    def __len__(self) -> int:
        return len(self._principals)

    def get(self, credential: Credential) -> Principal | None:
        return self._principals.get((credential.source, credential.value))

    def add(self, credential: Credential, principal: Principal) -> None:
        if len(self._principals) >= self._limit:
            self._principals.clear()
        self._principals[(credential.source, credential.value)] = principal
