"""OAuth clients: registered ones (a signed, self-contained client id) and metadata documents.

Nothing is stored.  A client registered through ``/register`` (RFC 7591) gets
a client id that *is* its registration, signed; a confidential client's secret
is derived from the id.  A client id that is an ``https://`` URL is a client-id
metadata document, fetched by :mod:`flask_mcp_auth.oauth.cimd`.  Either way the
redirect URIs are checked against the operator's allow-list every time, so
narrowing ``MCP_OAUTH_REDIRECT_URIS`` takes effect for clients registered before.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any

from authlib.oauth2.rfc6749 import ClientMixin

from .cimd import ClientMetadataError, MetadataDocuments, is_metadata_document_url
from .tokens import TokenCodec, TokenInvalid, new_id
from .urls import RedirectRules

PUBLIC = "none"
SECRET_METHODS = ("client_secret_post", "client_secret_basic")
GRANT_TYPES = ("authorization_code", "refresh_token")


@dataclass(frozen=True)
class OAuthClient(ClientMixin):  # type: ignore[misc]
    """One client, as Authlib's grants ask about it."""

    client_id: str
    client_name: str | None
    redirect_uris: tuple[str, ...]
    auth_method: str
    grant_types: tuple[str, ...]
    rules: RedirectRules
    #: A metadata document (its name is whatever the document says) or a registration.
    from_metadata_document: bool = False
    secret: str | None = None

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> None:
        # No default: every authorization request names its exact registered redirect URI.
        return None

    def get_allowed_scope(self, scope: str | None) -> str:
        return scope or ""  # scopes narrow to the key's permissions at sign-in

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.redirect_uris and self.rules.admits(redirect_uri)

    def check_client_secret(self, client_secret: str) -> bool:
        if self.secret is None or not isinstance(client_secret, str):
            return False
        return hmac.compare_digest(self.secret.encode(), client_secret.encode("utf-8", "replace"))

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if endpoint != "token":
            return True
        if self.auth_method in SECRET_METHODS:
            # RFC 7591 names one method; accept either secret method for it, as
            # clients that registered client_secret_post sometimes send Basic.
            return method in SECRET_METHODS
        return method == self.auth_method

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.grant_types


class ClientDirectory:
    """Finds the client a ``client_id`` names; nothing is stored."""

    def __init__(
        self,
        codec: TokenCodec,
        rules: RedirectRules,
        documents: MetadataDocuments,
        allow_private: bool,
    ) -> None:
        self._codec = codec
        self.rules = rules
        self._documents = documents
        self._allow_private = allow_private

    def register(self, metadata: dict[str, Any]) -> dict[str, Any]:
        """The client information (RFC 7591 3.2.1) of a validated registration."""
        method = metadata.get("token_endpoint_auth_method") or PUBLIC
        record = {
            "n": metadata.get("client_name"),
            "r": list(metadata["redirect_uris"]),
            "m": method,
            "g": [g for g in metadata.get("grant_types") or GRANT_TYPES if g in GRANT_TYPES],
            # Unique per registration: identical documents must not get the same client id,
            # since a confidential client's secret is derived from it.
            "i": new_id(),
        }
        client_id = self._codec.issue_client_id(record)
        info: dict[str, Any] = {"client_id": client_id, "token_endpoint_auth_method": method}
        if method in SECRET_METHODS:
            info["client_secret"] = self._codec.client_secret(client_id)
            info["client_secret_expires_at"] = 0
        return info

    def find(self, client_id: str) -> OAuthClient | None:
        """The client, or None; ClientMetadataError when its metadata document is unusable."""
        if not isinstance(client_id, str) or not client_id:
            return None
        if is_metadata_document_url(client_id, self._allow_private):
            document = self._documents.get(client_id)
            return OAuthClient(
                client_id,
                document.client_name,
                document.redirect_uris,
                PUBLIC,
                tuple(g for g in document.grant_types if g in GRANT_TYPES) or GRANT_TYPES[:1],
                self.rules,
                from_metadata_document=True,
            )
        try:
            record = self._codec.verify_client_id(client_id)
            method = str(record["m"])
            client = OAuthClient(
                client_id,
                str(record["n"]) if record.get("n") is not None else None,
                tuple(str(uri) for uri in record["r"]),
                method,
                tuple(str(g) for g in record["g"]),
                self.rules,
                secret=self._codec.client_secret(client_id) if method in SECRET_METHODS else None,
            )
        except (TokenInvalid, KeyError, TypeError):
            return None
        return client


__all__ = ["ClientDirectory", "ClientMetadataError", "OAuthClient"]
