"""TEMPORARY STUB (replaced by the helper's module)."""
from __future__ import annotations
from dataclasses import dataclass
class ClientMetadataError(Exception):
    pass
@dataclass(frozen=True)
class ClientMetadata:
    client_id: str
    client_name: str | None
    redirect_uris: tuple[str, ...]
    token_endpoint_auth_method: str = "none"
    grant_types: tuple[str, ...] = ("authorization_code",)
    response_types: tuple[str, ...] = ("code",)
def is_metadata_document_url(client_id: str, allow_private: bool) -> bool:
    return client_id.startswith("https://")
class MetadataDocuments:
    def __init__(self, allow_private: bool = False, timeout: float = 5.0, max_bytes: int = 5120, cache_ttl: float = 300.0, max_entries: int = 1024) -> None:
        pass
    def get(self, client_id: str) -> ClientMetadata:
        raise ClientMetadataError("stub")
