"""``@require_permission`` and ``@require_role``: gate views and plain functions.

The decorators work on Flask views (sync or async) and on any function called
while a request is being handled, such as the tool handlers of a JSON-RPC
dispatcher.  What they refuse, and with which status, is
:func:`flask_mcp_auth.authorization.enforce`'s to decide.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from flask import has_request_context

from . import context
from .authorization import check_permissions, enforce
from .principal import Principal
from .roles import check_role

F = TypeVar("F", bound=Callable[..., Any])


def _current() -> Principal:
    if not has_request_context():
        raise RuntimeError(
            "flask-mcp-auth: a function guarded by require_permission/require_role was "
            "called outside a request"
        )
    return context.principal()


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


__all__ = ["require_permission", "require_role"]
