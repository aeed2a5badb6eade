"""From a presented credential to the principal it stands for, or a 401."""

from __future__ import annotations

import logging
import time
from typing import Protocol

from .credentials import BEARER, Credential
from .errors import AccessTokenExpired, APIKeyExpired, InvalidAccessToken, InvalidAPIKey
from .keys.signing import KeySigner, looks_signed
from .keys.source import StoreSource
from .keys.store import KeyStore
from .keys.verified import VerifiedCredentials
from .oauth.urls import path_within
from .principal import Principal

log = logging.getLogger("flask_mcp_auth.request")


class TokenVerifier(Protocol):
    """Turns an OAuth access token into a principal (flask_mcp_auth.oauth.verifier)."""

    def accepts(self, value: str) -> bool: ...

    def principal(self, token: str, store: KeyStore) -> Principal: ...


class Resolver:
    """Resolves credentials against the store in force, plain or signed, or access tokens.

    ``signer`` checks signed keys (None: no secret, so none are accepted);
    ``plain_allowed`` is false under ``MCP_REQUIRE_SIGNED_KEYS``; ``tokens``
    verifies OAuth access tokens sent as Bearer (None: the sign-in is off).
    """

    def __init__(
        self,
        keys: StoreSource,
        signer: KeySigner | None,
        plain_allowed: bool,
        tokens: TokenVerifier | None = None,
    ) -> None:
        self.keys = keys
        self.signer = signer
        self.plain_allowed = plain_allowed
        self.tokens = tokens
        #: Principals of credentials already verified against the store in force;
        #: replaced when the store is.
        self._verified = VerifiedCredentials(keys.current())

    def resolve(self, credential: Credential, path: str = "/") -> Principal:
        """The principal of ``credential`` at the request ``path``; a 401 error if none."""
        store = self.keys.current()  # once per request: one request never sees two stores
        verified = self._verified
        if verified.store is not store:  # the key store was reloaded: forget the old one
            verified = self._verified = VerifiedCredentials(store)
        principal = verified.get(credential)
        if principal is None and (
            self.tokens is not None
            and credential.source == BEARER
            and self.tokens.accepts(credential.value)
        ):
            principal = self.tokens.principal(credential.value, store)
            verified.add(credential, principal)
        if principal is not None and principal.token_expires_at is not None:
            self._check_token(principal, path)
        elif principal is None:
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
        if log.isEnabledFor(logging.DEBUG):  # key.label is built only for a line written
            log.debug("credential from %s: key %s, role %s", credential.source, key.label, key.role)
        return principal

    @staticmethod
    def _check_token(principal: Principal, path: str) -> None:
        """What a cached token principal must still satisfy: its expiry and audience."""
        assert principal.token_expires_at is not None
        if time.time() >= principal.token_expires_at:
            raise AccessTokenExpired(key=principal.key)
        if not path_within(path, principal.token_audience_path or "/"):
            log.debug("access token for %s used at %s: 401", principal.token_audience_path, path)
            raise InvalidAccessToken(key=principal.key)

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
