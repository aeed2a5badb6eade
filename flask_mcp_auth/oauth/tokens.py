"""Everything the sign-in issues, as signed, self-contained values: no database.

* **Access tokens** are HS256 JWTs (RFC 9068 shape, ``typ: at+jwt``) keyed by
  the signing secret itself, so another service holding ``JWT_SECRET`` can
  verify them.
* **Refresh tokens, authorization codes and registered client ids** are
  itsdangerous-signed values, each with its own salt, so none of them is ever
  accepted as another (or as an access token).

None of them holds a key id, readable or encoded: only the key's fingerprint
(in plain-key mode the key id *is* the secret).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import warnings
from dataclasses import dataclass
from typing import Any

from itsdangerous import BadData, URLSafeSerializer
from joserfc import jwt
from joserfc.jwk import OctKey

from ..keys.model import secret_bytes

#: Longest value accepted anywhere a token is presented: refuses huge inputs cheaply.
MAX_TOKEN_LENGTH = 8192


class TokenInvalid(Exception):
    """A presented token, code or client id is not one this server issued (or is spent)."""


class TokenExpired(TokenInvalid):
    """A token this server issued, past its expiry."""


@dataclass(frozen=True)
class AccessClaims:
    """What a verified access token says."""

    key_fingerprint: str
    client_id: str
    audience: str
    #: Permission names the token is narrowed to; None: the key's own.
    scope: frozenset[str] | None
    expires_at: float
    token_id: str


@dataclass(frozen=True)
class Grant:
    """What a code or refresh token carries: who signed in, for which client and audience."""

    key_fingerprint: str
    client_id: str
    audience: str
    scope: str
    #: All tokens descending from one sign-in share it: a replayed code or a reused
    #: refresh token ends the family.
    family: str
    token_id: str
    expires_at: float
    redirect_uri: str = ""
    code_challenge: str = ""


def new_id() -> str:
    return secrets.token_urlsafe(16)


class TokenCodec:
    """Signs and verifies the sign-in's values for one issuer and secret."""

    def __init__(self, issuer: str, secret: str | bytes) -> None:
        self.issuer = issuer
        with warnings.catch_warnings():
            # joserfc warns on secrets under 112 bits; the secret is the operator's
            # JWT_SECRET, which `flask mcp-auth check` judges, not each token.
            warnings.simplefilter("ignore")
            self._jwk = OctKey.import_key(secret_bytes(secret))
        raw = secret_bytes(secret)
        self._secret_key = hashlib.sha256(b"flask-mcp-auth.oauth.client-secret:" + raw).digest()
        self._refresh = URLSafeSerializer(raw, salt="flask-mcp-auth.oauth.refresh")
        self._code = URLSafeSerializer(raw, salt="flask-mcp-auth.oauth.code")
        self._client = URLSafeSerializer(raw, salt="flask-mcp-auth.oauth.client")

    # -- access tokens -------------------------------------------------------------

    def issue_access(self, grant: Grant, scope: frozenset[str] | None, ttl: int) -> tuple[str, int]:
        """A new access token for ``grant`` and its lifetime in seconds."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": grant.audience,
            "sub": grant.key_fingerprint,
            "client_id": grant.client_id,
            "iat": now,
            "exp": now + ttl,
            "jti": new_id(),
        }
        if scope is not None:
            claims["scope"] = " ".join(sorted(scope))
        token = jwt.encode({"alg": "HS256", "typ": "at+jwt"}, claims, self._jwk)
        return token, ttl

    def verify_access(self, token: str) -> AccessClaims:
        """The claims of an access token this issuer signed; TokenInvalid otherwise."""
        if len(token) > MAX_TOKEN_LENGTH or token.count(".") != 2:
            raise TokenInvalid("not a JWT")
        try:
            decoded = jwt.decode(token, self._jwk, algorithms=["HS256"])
        except Exception as exc:  # any JOSE or decoding error: not our token
            raise TokenInvalid(type(exc).__name__) from None
        claims = decoded.claims
        if decoded.header.get("typ") != "at+jwt" or claims.get("iss") != self.issuer:
            raise TokenInvalid("wrong type or issuer")
        try:
            audience, subject = claims["aud"], claims["sub"]
            client_id, expires_at = claims["client_id"], float(claims["exp"])
            token_id = str(claims["jti"])
            scope = claims.get("scope")
        except (KeyError, TypeError, ValueError):
            raise TokenInvalid("missing claims") from None
        if not (isinstance(audience, str) and isinstance(subject, str)):
            raise TokenInvalid("bad claims")
        if not isinstance(client_id, str) or not (scope is None or isinstance(scope, str)):
            raise TokenInvalid("bad claims")
        if time.time() >= expires_at:
            raise TokenExpired("expired")
        return AccessClaims(
            subject,
            client_id,
            audience,
            frozenset(scope.split()) if scope is not None else None,
            expires_at,
            token_id,
        )

    # -- refresh tokens and codes ----------------------------------------------------

    def issue_refresh(self, grant: Grant, ttl: int) -> str:
        return self._dump(self._refresh, grant, time.time() + ttl, "")

    def verify_refresh(self, token: str) -> Grant:
        return self._load(self._refresh, token)

    def issue_code(self, grant: Grant, ttl: int) -> str:
        return self._dump(self._code, grant, time.time() + ttl, grant.code_challenge)

    def verify_code(self, code: str) -> Grant:
        return self._load(self._code, code)

    @staticmethod
    def _dump(serializer: URLSafeSerializer, grant: Grant, expires: float, challenge: str) -> str:
        return serializer.dumps(
            [
                grant.key_fingerprint,
                grant.client_id,
                grant.audience,
                grant.scope,
                grant.family,
                new_id(),
                round(expires, 3),
                grant.redirect_uri,
                challenge,
            ]
        )

    @staticmethod
    def _load(serializer: URLSafeSerializer, value: str) -> Grant:
        if not isinstance(value, str) or len(value) > MAX_TOKEN_LENGTH:
            raise TokenInvalid("too long")
        try:
            fields = serializer.loads(value)
            grant = Grant(
                key_fingerprint=str(fields[0]),
                client_id=str(fields[1]),
                audience=str(fields[2]),
                scope=str(fields[3]),
                family=str(fields[4]),
                token_id=str(fields[5]),
                expires_at=float(fields[6]),
                redirect_uri=str(fields[7]),
                code_challenge=str(fields[8]),
            )
        except (BadData, TypeError, ValueError, IndexError, KeyError):
            raise TokenInvalid("not issued here") from None
        if time.time() >= grant.expires_at:
            raise TokenExpired("expired")
        return grant

    # -- registered clients ---------------------------------------------------------

    def issue_client_id(self, metadata: dict[str, Any]) -> str:
        """A self-contained client id: the registration, signed."""
        return "mcpc_" + self._client.dumps(metadata)

    def verify_client_id(self, client_id: str) -> dict[str, Any]:
        if not client_id.startswith("mcpc_") or len(client_id) > MAX_TOKEN_LENGTH:
            raise TokenInvalid("not a client id issued here")
        try:
            metadata = self._client.loads(client_id[5:])
        except BadData:
            raise TokenInvalid("not a client id issued here") from None
        if not isinstance(metadata, dict):
            raise TokenInvalid("not a client id issued here")
        return metadata

    def client_secret(self, client_id: str) -> str:
        """The secret of a confidential registered client: derived, so never stored."""
        message = b"client-secret:" + client_id.encode("utf-8", "surrogatepass")
        return hmac.new(self._secret_key, message, hashlib.sha256).hexdigest()


def looks_like_jwt(value: str) -> bool:
    """Cheap test before a verification: a JWS compact serialization starts with ``eyJ``."""
    return value.startswith("eyJ") and value.count(".") == 2


__all__ = [
    "AccessClaims",
    "Grant",
    "TokenCodec",
    "TokenExpired",
    "TokenInvalid",
    "looks_like_jwt",
    "new_id",
]
