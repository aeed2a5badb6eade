"""From a presented credential to the principal it stands for, or a 401."""

from __future__ import annotations

import logging

from .credentials import Credential
from .errors import APIKeyExpired, InvalidAPIKey
from .keys.signing import KeySigner, looks_signed
from .keys.source import StoreSource
from .keys.verified import VerifiedCredentials
from .principal import Principal

log = logging.getLogger("flask_mcp_auth.request")


class Resolver:
    """Resolves credentials against the store in force, plain or signed.

    ``signer`` checks signed keys (None: no secret, so none are accepted);
    ``plain_allowed`` is false under ``MCP_REQUIRE_SIGNED_KEYS``.
    """

    def __init__(self, keys: StoreSource, signer: KeySigner | None, plain_allowed: bool) -> None:
        self.keys = keys
        self.signer = signer
        self.plain_allowed = plain_allowed
        #: Principals of credentials already verified against the store in force;
        #: replaced when the store is.
        self._verified = VerifiedCredentials(keys.current())

    def resolve(self, credential: Credential) -> Principal:
        """The principal of ``credential``; InvalidAPIKey or APIKeyExpired (401) if none."""
        store = self.keys.current()  # once per request: one request never sees two stores
        verified = self._verified
        if verified.store is not store:  # the key store was reloaded: forget the old one
            verified = self._verified = VerifiedCredentials(store)
        principal = verified.get(credential)
        if principal is None:
            key_id = self.key_id_of(credential.value)
            key = store.find(key_id) if key_id is not None else None
            if key is None:
                log.debug("credential from %s: unknown or badly signed key: 401", credential.source)
                raise InvalidAPIKey()
            principal = Principal.from_key(key, credential.source)
            verified.add(credential, principal)
        key = principal.key
        assert key is not None  # a principal built from a key
        if key.is_expired():
            log.debug("credential from %s: key %s expired: 401", credential.source, key.label)
            raise APIKeyExpired(key=key)
        log.debug("credential from %s: key %s, role %s", credential.source, key.label, key.role)
        return principal

    def key_id_of(self, presented: str) -> str | None:
        """The key id a presented value claims, checking a signature if it has one."""
        if not presented:
            return None
        if self.signer is not None and looks_signed(presented):
            key_id = self.signer.unsign(presented)
            if key_id is not None:
                return key_id
        return presented if self.plain_allowed else None


__all__ = ["Resolver"]
