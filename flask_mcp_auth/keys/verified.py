"""Principals of the credentials this process has already verified.

Resolving a presented credential costs a signature check, a key-store lookup
and a new :class:`Principal`.  With a fixed key store and secret, a credential
that resolved once resolves to the same key every time, so the principal is
kept, per credential source, in a :class:`~flask_mcp_auth.keys.model.SecretIndex`,
the constant-time lookup :class:`KeyStore` uses too.

Only credentials that resolved to a key are kept, so the table holds at most a
few entries per key in use; it is emptied when it reaches ``limit`` entries
(with more keys in use than that, hits only become rarer).  Expiry is not
cached: the caller checks it on every request.  A table belongs to one key
store; the resolver (:mod:`flask_mcp_auth.resolve`) starts a new one when the store is
replaced.
"""

from __future__ import annotations

from ..credentials import Credential
from ..principal import Principal
from .model import SecretIndex
from .store import KeyStore

DEFAULT_LIMIT = 10_000

#: (presented value, principal)
_Entry = tuple[str, Principal]


def _presented(entry: _Entry) -> str:
    return entry[0]


class VerifiedCredentials:
    def __init__(self, store: KeyStore, limit: int = DEFAULT_LIMIT) -> None:
        self.store = store
        self._limit = limit
        self._size = 0
        # One index per credential source: a key accepted in the header is not
        # thereby known to be accepted in the query.
        self._by_source: dict[str, SecretIndex[_Entry]] = {}

    def __len__(self) -> int:
        return self._size

    def get(self, credential: Credential) -> Principal | None:
        index = self._by_source.get(credential.source)
        entry = index.get(credential.value) if index is not None else None
        return entry[1] if entry is not None else None

    def add(self, credential: Credential, principal: Principal) -> None:
        if self._size >= self._limit:
            self._by_source.clear()
            self._size = 0
        index = self._by_source.get(credential.source)
        if index is None:
            index = self._by_source[credential.source] = SecretIndex(_presented)
        before = len(index)
        index.add((credential.value, principal))
        self._size += len(index) - before
