"""The key store: an immutable set of validated API keys, looked up by the presented key id."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from operator import attrgetter
from typing import Any

from .model import APIKey, SecretIndex
from .schema import SOURCE, parse_keys


class KeyStore:
    """An immutable set of API keys, looked up by the presented key id in constant time."""

    def __init__(self, keys: Mapping[str, APIKey] | None = None) -> None:
        self._index = SecretIndex(attrgetter("key_id"), (keys or {}).values())
        # Built on first use only (OAuth tokens name keys by fingerprint): a store of
        # 100,000 keys that never sees a token pays nothing for it.
        self._by_fingerprint: dict[str, APIKey] | None = None

    def __len__(self) -> int:
        return len(self._index)

    def __iter__(self) -> Iterator[APIKey]:
        return iter(self._index)

    def find(self, key_id: str) -> APIKey | None:
        return self._index.get(key_id)

    def by_fingerprint(self, fingerprint: str) -> APIKey | None:
        """The key with this fingerprint (not a secret: no constant-time lookup needed)."""
        table = self._by_fingerprint
        if table is None:
            table = self._by_fingerprint = {key.fingerprint: key for key in self._index}
        return table.get(fingerprint)

    def contains(self, key_id: str) -> bool:
        return self.find(key_id) is not None

    @classmethod
    def load(cls, raw: Any, secret: str | bytes | None = None, source: str = SOURCE) -> KeyStore:
        """Parse and validate a key store (JSON text, or an already-decoded mapping)."""
        return cls(parse_keys(raw, secret, source))


__all__ = ["KeyStore"]
