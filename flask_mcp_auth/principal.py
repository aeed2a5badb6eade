"""Roles, permissions and the principal a request acts as.

Roles are ordered ``guest < user < developer < admin``; ``has_role("developer")``
is true for developer and admin.  Permissions are independent of roles: ``*``
grants every permission, ``prefix:*`` every permission under ``prefix:``, any
other name only itself.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from flask import g, has_request_context
from werkzeug.local import LocalProxy

from ._time import utc_iso

if TYPE_CHECKING:
    from .keystore import APIKey

ROLES: tuple[str, ...] = ("guest", "user", "developer", "admin")
ROLE_RANK: dict[str, int] = {role: rank for rank, role in enumerate(ROLES)}


def check_role(role: str) -> str:
    """Return ``role`` if it is a known role name, else raise ValueError."""
    if role not in ROLE_RANK:
        raise ValueError(f"unknown role {role!r}; expected one of {', '.join(ROLES)}")
    return role


def permission_granted(granted: frozenset[str], wanted: str) -> bool:
    """True if the permission set ``granted`` includes ``wanted``."""
    if "*" in granted or wanted in granted:
        return True
    # 'tools:*' grants 'tools:echo' and 'tools:admin:x'; walk each ':' prefix.
    end = wanted.rfind(":")
    while end > 0:
        if wanted[: end + 1] + "*" in granted:
            return True
        end = wanted.rfind(":", 0, end)
    return False


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
    #: Where the credential came from: "header", "bearer" or "query" (None if anonymous).
    credential_source: str | None = None
    key: APIKey | None = field(default=None, repr=False, compare=False)

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


_NO_REQUEST = Principal.anonymous(None)


def _get_principal() -> Principal:
    if not has_request_context():
        return _NO_REQUEST
    return g.get("mcp_principal", _NO_REQUEST)


#: The principal of the current request (anonymous outside a request).
current_principal: Principal = LocalProxy(_get_principal)  # type: ignore[assignment]
