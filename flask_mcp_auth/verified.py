"""Principals of the credentials this process has already verified.

Resolving a presented credential costs a signature check, a key-store lookup
and a new :class:`Principal`.  With a fixed key store and secret, a credential
that resolved once resolves to the same key every time, so the principal is
kept, per credential source, under a SHA-256 digest of the presented value;
before a hit is used the stored value is compared with the presented one in
constant time, as :meth:`KeyStore.find` does.

Only credentials that resolved to a key are kept, so the table holds at most a
few entries per key in use; it is emptied when it reaches ``limit`` entries
(with more keys in use than that, hits only become rarer).  Expiry is not
cached: the caller checks it on every request.  A table belongs to one key
store; the extension starts a new one when its store is replaced.
"""

from __future__ import annotations

import hashlib
import hmac

from .credentials import Credential
from .keystore import KeyStore, _secret_bytes
from .principal import Principal

DEFAULT_LIMIT = 10_000


class VerifiedCredentials:
    def __init__(self, store: KeyStore, limit: int = DEFAULT_LIMIT) -> None:
        self.store = store
        self._limit = limit
        self._principals: dict[tuple[str, bytes], tuple[bytes, Principal]] = {}

    def __len__(self) -> int:
        return len(self._principals)

    def get(self, credential: Credential) -> Principal | None:
        presented = _secret_bytes(credential.value)
        entry = self._principals.get((credential.source, hashlib.sha256(presented).digest()))
        if entry is not None and hmac.compare_digest(entry[0], presented):
            return entry[1]
        return None

    def add(self, credential: Credential, principal: Principal) -> None:
        if len(self._principals) >= self._limit:
            self._principals.clear()
        presented = _secret_bytes(credential.value)
        digest = hashlib.sha256(presented).digest()
        self._principals[(credential.source, digest)] = (presented, principal)
