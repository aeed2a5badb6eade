"""The principal a request acts as: an API key's holder, or an anonymous caller."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from ._time import utc_iso
from .keys.model import APIKey
from .roles import ROLE_RANK, check_role, permission_granted


@dataclass(frozen=True)
class Principal:
    """Who the current request acts as: an API key's holder, or an anonymous caller."""

    is_authenticated: bool
    role: str | None
    permissions: frozenset[str] = frozenset()
    name: str | None = None
    user_id: str | None = None
    expires_at: datetime | None = None
    #: Stable, non-secret identifier of the key (None for anonymous callers).
    key_fingerprint: str | None = None
    #: Where the credential came from: "header", "bearer", "query" or "oauth" (an access
    #: token); None if anonymous.
    credential_source: str | None = None
    key: APIKey | None = field(default=None, repr=False, compare=False)
    #: For an OAuth access token: the client it was issued to, when it expires (epoch
    #: seconds) and the path of the resource it was issued for.
    oauth_client_id: str | None = None
    token_expires_at: float | None = None
    token_audience_path: str | None = None

    @classmethod
    def from_key(cls, key: APIKey, credential_source: str) -> Principal:
        return cls(
            is_authenticated=True,
            role=key.role,
            permissions=key.permissions,
            name=key.name,
            user_id=key.user_id,
            expires_at=key.expires_at,
            key_fingerprint=key.fingerprint,
            credential_source=credential_source,
            key=key,
        )

    @classmethod
    def anonymous(cls, role: str | None) -> Principal:
        return cls(is_authenticated=False, role=role or None)

    def has_permission(self, *permissions: str) -> bool:
        """True if every listed permission is granted."""
        return all(permission_granted(self.permissions, p) for p in permissions)

    def missing_permissions(self, permissions: Iterable[str]) -> list[str]:
        return [p for p in permissions if not permission_granted(self.permissions, p)]

    def has_role(self, role: str) -> bool:
        """True if this principal's role is ``role`` or ranks above it."""
        if self.role is None:
            return False
        return ROLE_RANK[self.role] >= ROLE_RANK[check_role(role)]

    def to_dict(self) -> dict[str, object]:
        """Public, non-secret view (used by /mcp/status)."""
        return {
            "name": self.name,
            "user_id": self.user_id,
            "role": self.role,
            "permissions": sorted(self.permissions),
            "expires_at": utc_iso(self.expires_at) if self.expires_at else None,
        }


#: Who a request is when nothing authenticated it and there is no default role.
NOBODY = Principal.anonymous(None)

__all__ = ["NOBODY", "Principal"]
