"""The two discovery documents: RFC 8414 authorization-server and RFC 9728 protected-resource."""

from __future__ import annotations

from typing import Any

from authlib.oauth2.rfc8414 import AuthorizationServerMetadata

from ..credentials import PROTECTED_RESOURCE_PATH
from .server import TOKEN_AUTH_METHODS

AUTHORIZATION_SERVER_PATH = "/.well-known/oauth-authorization-server"
AUTHORIZE_PATH = "/authorize"
TOKEN_PATH = "/token"
REGISTER_PATH = "/register"


def authorization_server_metadata(issuer: str, scopes: tuple[str, ...]) -> dict[str, Any]:
    """RFC 8414 metadata, checked by Authlib's model (a mistake here stops start-up)."""
    document: dict[str, Any] = {
        "issuer": issuer,
        "authorization_endpoint": issuer + AUTHORIZE_PATH,
        "token_endpoint": issuer + TOKEN_PATH,
        "registration_endpoint": issuer + REGISTER_PATH,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_methods_supported": list(TOKEN_AUTH_METHODS),
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": True,
        "client_id_metadata_document_supported": True,
    }
    # Only scopes the operator chose: the official client requests scopes_supported verbatim.
    if scopes:
        document["scopes_supported"] = list(scopes)
    AuthorizationServerMetadata(document).validate()
    return document


def protected_resource_metadata(
    issuer: str, resource_path: str, scopes: tuple[str, ...]
) -> dict[str, Any]:
    """RFC 9728 metadata for ``issuer + resource_path`` (it must name the resource asked for)."""
    document: dict[str, Any] = {
        "resource": issuer + resource_path,
        "authorization_servers": [issuer],
        "bearer_methods_supported": ["header"],
    }
    if scopes:
        document["scopes_supported"] = list(scopes)
    return document


__all__ = [
    "AUTHORIZATION_SERVER_PATH",
    "AUTHORIZE_PATH",
    "PROTECTED_RESOURCE_PATH",
    "REGISTER_PATH",
    "TOKEN_PATH",
    "authorization_server_metadata",
    "protected_resource_metadata",
]
