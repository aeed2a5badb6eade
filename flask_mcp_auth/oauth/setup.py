"""Everything the sign-in needs for one app, built once at start-up from its settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from limits.storage import Storage

from ..keys.source import StoreSource
from .cimd import MetadataDocuments
from .clients import ClientDirectory
from .marks import UsedMarks
from .metadata import authorization_server_metadata
from .registration import Registration
from .server import OAuthService
from .tokens import TokenCodec
from .verifier import AccessTokenVerifier


@dataclass(frozen=True)
class OAuthSetup:
    service: OAuthService
    verifier: AccessTokenVerifier
    registration: Registration
    metadata: dict[str, Any]
    scopes: tuple[str, ...]


def build_oauth(
    settings: dict[str, Any],
    secret: str | bytes,
    keys: StoreSource,
    storage: Storage,
    storage_prefix: str,
) -> OAuthSetup:
    """The sign-in of ``settings["MCP_OAUTH_ISSUER"]`` (validated by the settings registry)."""
    issuer: str = settings["MCP_OAUTH_ISSUER"]
    scopes: tuple[str, ...] = settings["MCP_OAUTH_SCOPES"]
    codec = TokenCodec(issuer, secret)
    allow_private: bool = settings["MCP_OAUTH_CIMD_ALLOW_PRIVATE"]
    clients = ClientDirectory(
        codec,
        settings["MCP_OAUTH_REDIRECT_URIS"],
        MetadataDocuments(allow_private=allow_private),
        allow_private,
    )
    service = OAuthService(
        issuer,
        codec,
        clients,
        UsedMarks(storage, storage_prefix),
        keys,
        settings["MCP_OAUTH_ACCESS_TOKEN_TTL"],
        settings["MCP_OAUTH_REFRESH_TOKEN_TTL"],
    )
    metadata = authorization_server_metadata(issuer, scopes)
    return OAuthSetup(
        service, AccessTokenVerifier(codec), Registration(clients, metadata), metadata, scopes
    )


__all__ = ["OAuthSetup", "build_oauth"]
