"""From an OAuth access token to the principal of the API key it was issued for.

The token names its key by fingerprint; the key is looked up in the store in
force at every resolution, so a key removed from the environment or the key
file, or one that expired, ends its tokens at once.  The resolver keeps the
principal like any verified credential and checks the token's expiry and
audience on every request.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from ..errors import AccessTokenExpired, InvalidAccessToken
from ..keys.store import KeyStore
from ..principal import Principal
from ..roles import permission_granted
from .tokens import TokenCodec, TokenExpired, TokenInvalid, looks_like_jwt
from .urls import resource_within

log = logging.getLogger("flask_mcp_auth.request")

OAUTH = "oauth"


class AccessTokenVerifier:
    """Verifies access tokens of one issuer (see :class:`flask_mcp_auth.resolve.Resolver`)."""

    def __init__(self, codec: TokenCodec) -> None:
        self._codec = codec
        self._issuer = codec.issuer

    def accepts(self, value: str) -> bool:
        """True if ``value`` should be verified as an access token, not looked up as a key."""
        return looks_like_jwt(value)

    def principal(self, token: str, store: KeyStore) -> Principal:
        """The principal the token stands for; InvalidAccessToken or AccessTokenExpired."""
        try:
            claims = self._codec.verify_access(token)
        except TokenExpired:
            log.debug("access token expired: 401")
            raise AccessTokenExpired() from None
        except TokenInvalid as exc:
            log.debug("access token refused (%s): 401", exc)
            raise InvalidAccessToken() from None
        key = store.by_fingerprint(claims.key_fingerprint)
        if key is None:
            log.debug("access token for a key no longer in the store: 401")
            raise InvalidAccessToken()
        audience_path = claims.audience[len(self._issuer) :]
        if not resource_within(claims.audience, self._issuer):
            raise InvalidAccessToken()  # signed by a service sharing the secret, for another host
        permissions = key.permissions
        if claims.scope is not None:
            # Narrowed at sign-in; still only what the key grants now.
            permissions = frozenset(
                s for s in claims.scope if permission_granted(key.permissions, s)
            )
        return replace(
            Principal.from_key(key, OAUTH),
            permissions=permissions,
            oauth_client_id=claims.client_id,
            token_expires_at=claims.expires_at,
            token_audience_path=audience_path or "/",
        )


__all__ = ["OAUTH", "AccessTokenVerifier"]
