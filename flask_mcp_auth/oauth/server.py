"""The authorization server: Authlib's OAuth 2.1 machinery over the API-key store.

Authlib does the protocol (RFC 6749 code and refresh grants, RFC 7636 PKCE,
RFC 7591 registration, RFC 9207 ``iss``, client authentication).  Written here,
what Authlib leaves to its users: stateless codes, refresh tokens and clients
(:mod:`~flask_mcp_auth.oauth.tokens`), one-time use through the shared storage
(:mod:`~flask_mcp_auth.oauth.marks`), S256 as the only PKCE method, the RFC 8707
``resource`` as the token's audience, and scopes as permission names.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any, ClassVar

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import (
    InvalidClientError,
    InvalidGrantError,
    InvalidRequestError,
    OAuth2Error,
)
from authlib.oauth2.rfc6749.grants import AuthorizationCodeGrant, RefreshTokenGrant
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc9207 import IssuerParameter

from ..keys.model import APIKey
from ..keys.source import StoreSource
from ..roles import permission_granted
from .cimd import ClientMetadataError
from .clients import SECRET_METHODS, ClientDirectory, OAuthClient
from .marks import UsedMarks
from .tokens import Grant, TokenCodec, TokenInvalid, new_id
from .urls import resource_within

#: An authorization code lives at most this long (seconds) and works once.
CODE_TTL = 60
#: How long (seconds) a "used" mark outlives the code or refresh token it marks.
MARK_MARGIN = 60
TOKEN_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]


class InvalidTargetError(OAuth2Error):  # type: ignore[misc]
    """RFC 8707: the ``resource`` is not this server (or not below the grant's)."""

    error = "invalid_target"


class TemporarilyUnavailableError(OAuth2Error):  # type: ignore[misc]
    """The shared storage is down: codes and refresh tokens cannot be spent safely."""

    error = "temporarily_unavailable"
    status_code = 503


@dataclass(frozen=True)
class SignedIn:
    """Authlib's "user": the key someone signed in with, and what the grant allows."""

    key: APIKey
    grant: Grant

    @property
    def scope(self) -> frozenset[str] | None:
        return frozenset(self.grant.scope.split()) if self.grant.scope else None


def narrow_scope(key: APIKey, requested: str | None) -> str:
    """The requested scopes the key grants, space-separated; the rest are ignored.

    ``""`` when none remains: the token then carries the key's own permissions.
    """
    names = sorted({s for s in (requested or "").split() if permission_granted(key.permissions, s)})
    return " ".join(names)


class _Code:
    """A verified authorization code, as Authlib's grant reads it."""

    def __init__(self, grant: Grant) -> None:
        self.grant = grant
        self.code_challenge = grant.code_challenge
        self.code_challenge_method = "S256"

    def get_redirect_uri(self) -> str:
        return self.grant.redirect_uri

    def get_scope(self) -> str:
        return self.grant.scope


class _Refresh:
    """A verified refresh token, as Authlib's grant reads it."""

    def __init__(self, grant: Grant) -> None:
        self.grant = grant

    def check_client(self, client: OAuthClient) -> bool:
        return client.client_id == self.grant.client_id

    def get_scope(self) -> str:
        return self.grant.scope


class S256Only(CodeChallenge):  # type: ignore[misc]
    """PKCE is required, with S256 (no ``plain``), for every client."""

    SUPPORTED_CODE_CHALLENGE_METHOD: ClassVar[list[str]] = ["S256"]
    DEFAULT_CODE_CHALLENGE_METHOD = "S256"

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("PKCE is required: send code_challenge (S256).")
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("Only code_challenge_method=S256 is supported.")
        super().validate_code_challenge(grant, redirect_uri)

    def validate_code_verifier(self, grant: Any, result: Any) -> None:
        if not grant.request.form.get("code_verifier"):
            raise InvalidRequestError("Missing 'code_verifier'.")
        super().validate_code_verifier(grant, result)


class OAuthService:
    """Everything the sign-in's endpoints need, for one app."""

    def __init__(
        self,
        issuer: str,
        codec: TokenCodec,
        clients: ClientDirectory,
        marks: UsedMarks,
        keys: StoreSource,
        access_ttl: int,
        refresh_ttl: int,
    ) -> None:
        self.issuer = issuer
        self.codec = codec
        self.clients = clients
        self.marks = marks
        self.keys = keys
        self.access_ttl = access_ttl
        self.refresh_ttl = refresh_ttl
        self.server = _Server(self)

    # -- what the grants ask -------------------------------------------------------

    def audience(self, resource: str | None, within: str | None = None) -> str:
        """The audience for an RFC 8707 ``resource`` (the issuer when none is named)."""
        if not resource:
            return within or self.issuer
        if not resource_within(resource, self.issuer) or (
            within is not None and not resource_within(resource, within)
        ):
            raise InvalidTargetError(f"The resource must be {within or self.issuer} or below it.")
        return resource

    def signed_in(self, grant: Grant) -> SignedIn:
        """The key behind a code or refresh token, if it is still valid."""
        key = self.keys.current().by_fingerprint(grant.key_fingerprint)
        if key is None or key.is_expired():
            raise InvalidGrantError("The API key used to sign in was revoked or has expired.")
        return SignedIn(key, grant)

    def new_grant(self, key: APIKey, client: OAuthClient, payload: Any) -> SignedIn:
        """What a successful sign-in grants (called with the validated request)."""
        data = payload.data
        grant = Grant(
            key_fingerprint=key.fingerprint,
            client_id=client.client_id,
            audience=self.audience(data.get("resource")),
            scope=narrow_scope(key, data.get("scope")),
            family=new_id(),
            token_id="",
            expires_at=0.0,
            redirect_uri=data.get("redirect_uri") or "",
            code_challenge=data.get("code_challenge") or "",
        )
        return SignedIn(key, grant)

    def generate_tokens(
        self,
        grant_type: str,
        client: OAuthClient,
        user: SignedIn,
        scope: str | None,
        expires_in: int | None,
        include_refresh_token: bool,
    ) -> dict[str, Any]:
        """Authlib's token generator: a JWT access token and a rotating refresh token."""
        access, ttl = self.codec.issue_access(user.grant, user.scope, self.access_ttl)
        token: dict[str, Any] = {"access_token": access, "token_type": "Bearer", "expires_in": ttl}
        if include_refresh_token:
            token["refresh_token"] = self.codec.issue_refresh(user.grant, self.refresh_ttl)
        if user.grant.scope:
            token["scope"] = user.grant.scope
        return token

    def spend(self, grant: Grant, what: str) -> None:
        """Use a code or refresh token once; a second use ends its family."""
        # The mark must outlive the value it marks, no longer (a code's mark goes after
        # about two minutes, not with the family); the margin covers clock skew between hosts.
        lifetime = grant.expires_at - time.time() + MARK_MARGIN
        if not self.marks.spend(grant.token_id, lifetime):
            self.marks.end_family(grant.family, self.refresh_ttl)
            raise InvalidGrantError(f"This {what} was already used; sign in again.")


class _Server(AuthorizationServer):  # type: ignore[misc]
    def __init__(self, service: OAuthService) -> None:
        super().__init__()
        self.service = service
        self.register_token_generator("default", service.generate_tokens)
        self.register_grant(_CodeGrant, [S256Only(required=True)])
        self.register_grant(_RefreshGrant)
        self.register_extension(_Issuer(service.issuer))

    def query_client(self, client_id: str) -> OAuthClient | None:
        try:
            return self.service.clients.find(client_id)
        except ClientMetadataError as exc:
            raise InvalidClientError(description=f"Client metadata document: {exc}") from None

    def save_token(self, token: dict[str, Any], request: Any) -> None:
        """Nothing to store: tokens are self-contained."""


class _Issuer(IssuerParameter):  # type: ignore[misc]
    def __init__(self, issuer: str) -> None:
        self._issuer = issuer

    def get_issuer(self) -> str:
        return self._issuer


class _CodeGrant(AuthorizationCodeGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = TOKEN_AUTH_METHODS

    @property
    def service(self) -> OAuthService:
        return self.server.service  # type: ignore[no-any-return]

    def generate_authorization_code(self) -> str:
        user: SignedIn = self.request.user
        return self.service.codec.issue_code(user.grant, CODE_TTL)

    def save_authorization_code(self, code: str, request: Any) -> None:
        """Nothing to store: the code is self-contained."""

    def query_authorization_code(self, code: str, client: OAuthClient) -> _Code | None:
        try:
            grant = self.service.codec.verify_code(code)
        except TokenInvalid:
            return None
        if grant.client_id != client.client_id:
            return None
        return _Code(grant)

    def authenticate_user(self, code: _Code) -> SignedIn:
        user = self.service.signed_in(code.grant)
        audience = self.service.audience(self.request.form.get("resource"), code.grant.audience)
        return replace(user, grant=replace(user.grant, audience=audience))

    def delete_authorization_code(self, code: _Code) -> None:
        self.service.spend(code.grant, "authorization code")


class _RefreshGrant(RefreshTokenGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = TOKEN_AUTH_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True

    @property
    def service(self) -> OAuthService:
        return self.server.service  # type: ignore[no-any-return]

    def _validate_request_client(self) -> OAuthClient:
        # A public client may leave client_id out of a refresh: the token names it.
        form = self.request.form
        if not form.get("client_id") and "Authorization" not in self.request.headers:
            refresh = self.authenticate_refresh_token(form.get("refresh_token") or "")
            named: OAuthClient | None = (
                self.server.query_client(refresh.grant.client_id) if refresh else None
            )
            if named is None or named.auth_method in SECRET_METHODS:
                raise InvalidClientError(description="Send client_id (and its secret, if any).")
            self.request.auth_method = "none"
            return named
        authenticated: OAuthClient = super()._validate_request_client()
        return authenticated

    def _validate_token_scope(self, token: _Refresh) -> None:
        """Any scope may be asked: it narrows to what the grant and the key allow."""

    def authenticate_refresh_token(self, refresh_token: str) -> _Refresh | None:
        try:
            grant = self.service.codec.verify_refresh(refresh_token)
        except TokenInvalid:
            return None
        if self.service.marks.family_ended(grant.family):
            return None
        return _Refresh(grant)

    def authenticate_user(self, refresh: _Refresh) -> SignedIn:
        user = self.service.signed_in(refresh.grant)
        grant = refresh.grant
        requested = self.request.payload.scope
        scope = grant.scope
        if requested:
            narrowed = narrow_scope(user.key, requested)
            if grant.scope:
                narrowed = " ".join(sorted(set(narrowed.split()) & set(grant.scope.split())))
            scope = narrowed or grant.scope
        audience = self.service.audience(self.request.form.get("resource"), grant.audience)
        return replace(user, grant=replace(grant, audience=audience, scope=scope))

    def revoke_old_credential(self, refresh: _Refresh) -> None:
        self.service.spend(refresh.grant, "refresh token")


__all__ = [
    "CODE_TTL",
    "InvalidTargetError",
    "OAuthService",
    "SignedIn",
    "TemporarilyUnavailableError",
    "narrow_scope",
]
