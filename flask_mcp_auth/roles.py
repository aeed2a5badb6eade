"""Roles and permissions: the one definition of what a role is and what a permission grants.

Roles are ordered ``guest < user < developer < admin``.  Permissions are
independent of roles: ``*`` grants every permission, ``prefix:*`` every
permission under ``prefix:``, any other name only itself.
"""

from __future__ import annotations

ROLES: tuple[str, ...] = ("guest", "user", "developer", "admin")
ROLE_RANK: dict[str, int] = {role: rank for rank, role in enumerate(ROLES)}


def check_role(role: object) -> str:
    """Return ``role`` if it is a known role name, else raise ValueError saying which are."""
    if not isinstance(role, str) or role not in ROLE_RANK:
        raise ValueError(f"unknown role {role!r}; expected one of {', '.join(ROLES)}")
    return ROLES[ROLE_RANK[role]]  # the canonical string: one object per role, not per key


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


__all__ = ["ROLES", "ROLE_RANK", "check_role", "permission_granted"]
