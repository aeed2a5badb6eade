"""``@require_permission`` and ``@require_role``: gate views and plain functions.

The decorators work on Flask views (sync or async) and on any function called
while a request is being handled, such as the tool handlers of a JSON-RPC
dispatcher.  An anonymous caller that lacks what is required gets 401
(``missing_api_key``): presenting a key might help.  An authenticated caller
gets 403 (``insufficient_permissions``): a different key is needed.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from flask import has_request_context

from .errors import InsufficientPermissions, MissingAPIKey
from .principal import Principal, _get_principal, check_role

F = TypeVar("F", bound=Callable[..., Any])

log = logging.getLogger("flask_mcp_auth.request")


def check_permissions(permissions: Iterable[str]) -> list[str]:
    """Validate permission names given to a decorator; return them as a list."""
    names = list(permissions)
    if not names:
        raise ValueError("require_permission() needs at least one permission name")
    for name in names:
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"permission names must be non-empty strings, got {name!r}")
    return names


def enforce(principal: Principal, permissions: Iterable[str] = (), role: str | None = None) -> None:
    """Raise 401 or 403 unless ``principal`` has every permission and the role."""
    missing = principal.missing_permissions(permissions)
    role_ok = role is None or principal.has_role(role)
    if not missing and role_ok:
        return
    if not principal.is_authenticated:
        log.debug("anonymous caller lacks %s: 401", missing or f"role {role}")
        raise MissingAPIKey()
    needs = []
    if missing:
        noun = "permission" if len(missing) == 1 else "permissions"
        needs.append(f"the {noun} {', '.join(repr(p) for p in missing)}")
    if not role_ok:
        needs.append(f"the role {role!r} or higher (the key has {principal.role!r})")
    log.debug("key %s lacks %s: 403", principal.key_fingerprint, " and ".join(needs))
    raise InsufficientPermissions(
        f"This operation requires {' and '.join(needs)}. Check the role and permissions "
        "assigned to the key.",
        missing_permissions=missing,
        required_role=None if role_ok else role,
    )


def _current() -> Principal:
    if not has_request_context():
        raise RuntimeError(
            "flask-mcp-auth: a function guarded by require_permission/require_role was "
            "called outside a request"
        )
    return _get_principal()


def _guard(fn: F, permissions: list[str], role: str | None) -> F:
    if inspect.iscoroutinefunction(fn):
        # An async wrapper keeps the function async, so Flask still runs the
        # view through app.ensure_sync and async dispatchers can await it.
        @functools.wraps(fn)
        async def async_guarded(*args: Any, **kwargs: Any) -> Any:
            enforce(_current(), permissions, role)
            return await fn(*args, **kwargs)

        return async_guarded  # type: ignore[return-value]

    @functools.wraps(fn)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        enforce(_current(), permissions, role)
        return fn(*args, **kwargs)

    return guarded  # type: ignore[return-value]


def require_permission(*permissions: str) -> Callable[[F], F]:
    """Require every listed permission: ``@require_permission("read", "write")``."""
    names = check_permissions(permissions)
    return lambda fn: _guard(fn, names, None)


def require_role(role: str) -> Callable[[F], F]:
    """Require ``role`` or a higher one: ``@require_role("developer")`` admits admins too."""
    check_role(role)
    return lambda fn: _guard(fn, [], role)
