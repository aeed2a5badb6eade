"""Dynamic Client Registration (RFC 7591): Authlib validates, the client id is the record."""

from __future__ import annotations

import json
from typing import Any

from authlib.oauth2.rfc7591 import ClientRegistrationEndpoint
from authlib.oauth2.rfc7591.errors import InvalidClientMetadataError, InvalidRedirectURIError
from werkzeug.wrappers import Request

from .clients import ClientDirectory

#: Largest registration document read; MCP clients send well under 2 KiB.
MAX_DOCUMENT_BYTES = 16 * 1024
MAX_DEPTH = 4
MAX_REDIRECT_URIS = 20
MAX_NAME_LENGTH = 200


def read_document(request: Request) -> dict[str, Any]:
    """The JSON object of a registration request; InvalidClientMetadataError if it is not one."""
    if request.mimetype != "application/json":
        raise InvalidClientMetadataError("Send the client metadata as application/json.")
    if (request.content_length or 0) > MAX_DOCUMENT_BYTES:
        raise InvalidClientMetadataError("The registration document is too large.")
    body = request.stream.read(MAX_DOCUMENT_BYTES + 1)
    if len(body) > MAX_DOCUMENT_BYTES:
        raise InvalidClientMetadataError("The registration document is too large.")
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        raise InvalidClientMetadataError("The registration document is not valid JSON.") from None
    if not isinstance(document, dict):
        raise InvalidClientMetadataError("The registration document must be a JSON object.")
    if _depth(document) > MAX_DEPTH:
        raise InvalidClientMetadataError("The registration document is nested too deeply.")
    uris = document.get("redirect_uris")
    if not isinstance(uris, list) or not uris or not all(isinstance(u, str) for u in uris):
        raise InvalidRedirectURIError("redirect_uris must be a non-empty list of URIs.")
    if len(uris) > MAX_REDIRECT_URIS:
        raise InvalidRedirectURIError(f"At most {MAX_REDIRECT_URIS} redirect_uris.")
    name = document.get("client_name")
    # Shown on the sign-in page: a short string or nothing.
    if name is not None and (not isinstance(name, str) or len(name) > MAX_NAME_LENGTH):
        raise InvalidClientMetadataError(
            f"client_name must be a string of at most {MAX_NAME_LENGTH} characters."
        )
    return document


def _depth(value: Any, level: int = 0) -> int:
    if level > MAX_DEPTH:
        return level
    if isinstance(value, dict):
        return max((_depth(v, level + 1) for v in value.values()), default=level + 1)
    if isinstance(value, list):
        return max((_depth(v, level + 1) for v in value), default=level + 1)
    return level


class _Payload:
    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data


class _JsonRequest:
    """What Authlib's endpoint reads: the already-validated document."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.payload = _Payload(data)


class Registration(ClientRegistrationEndpoint):  # type: ignore[misc]
    """Open registration of public and confidential clients, checked against the allow-list."""

    def __init__(self, clients: ClientDirectory, server_metadata: dict[str, Any]) -> None:
        super().__init__()
        self._clients = clients
        self._server_metadata = server_metadata

    def register(self, document: dict[str, Any]) -> dict[str, Any]:
        """The RFC 7591 client information response body."""
        # Authlib's RFC 7591 claims check (types, URIs, methods against the metadata);
        # fields it does not know, such as application_type, are dropped.
        metadata = self.extract_client_metadata(_JsonRequest(document))
        refused = [uri for uri in metadata["redirect_uris"] if not self._clients.rules.admits(uri)]
        if refused:
            # error_description admits printable ASCII without '"' and '\\' only (RFC 6749).
            shown = "".join(c if " " <= c <= "~" and c not in '"\\' else "?" for c in refused[0])
            raise InvalidRedirectURIError(
                f"Redirect URI not allowed on this server: {shown[:200]} "
                "(the operator's MCP_OAUTH_REDIRECT_URIS decides)."
            )
        # RFC 7591 2: the default method is client_secret_basic.
        metadata.setdefault("token_endpoint_auth_method", "client_secret_basic")
        metadata.setdefault("grant_types", ["authorization_code", "refresh_token"])
        metadata.setdefault("response_types", ["code"])
        info = self._clients.register(metadata)
        return {**metadata, **info}

    def get_server_metadata(self) -> dict[str, Any]:
        return self._server_metadata

    def authenticate_token(self, request: Any) -> bool:
        return True  # open registration: a registration grants nothing without a key

    def resolve_public_key(self, request: Any) -> None:
        return None

    def save_client(self, client_info: Any, client_metadata: Any, request: Any) -> None:
        """Nothing to store: the client id is the record."""


__all__ = ["MAX_DOCUMENT_BYTES", "Registration", "read_document"]
