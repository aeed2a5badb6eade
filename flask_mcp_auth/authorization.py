"""Deciding whether a principal may go on: permissions, roles, and app-wide rules.

An anonymous caller that lacks what is required gets 401 (``missing_api_key``):
presenting a key might help.  An authenticated caller gets 403
(``insufficient_permissions``): a different key is needed."""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from flask import Flask, Request

from .errors import InsufficientPermissions, MissingAPIKey
from .principal import Principal

F = TypeVar("F", bound=Callable[..., Any])

log = logging.getLogger("flask_mcp_auth.request")

_EXEMPT_ATTRIBUTE = "_mcp_auth_exempt"


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


def mark_exempt(view: F) -> F:
    setattr(view, _EXEMPT_ATTRIBUTE, True)
    return view


@dataclass(frozen=True)
class Rule:
    """A requirement on every view of one blueprint, one app, or every app (both None)."""

    blueprint: str | None
    permissions: tuple[str, ...]
    role: str | None
    exempt: frozenset[str]
    #: The app ``protect`` named (weakly held); None: every app the extension serves.
    app: weakref.ref[Flask] | None = None


class Authorizer:
    """Applies ``MCP_DEFAULT_ROLE=""`` and the ``protect`` rules before a view of one app runs.

    ``rules`` is the extension's list, shared, so rules added after ``init_app``
    apply too; ``exempt_endpoints`` are this app's always-open endpoints.
    """

    def __init__(self, app: Flask, rules: list[Rule], exempt_endpoints: frozenset[str]) -> None:
        self._app = app
        self._rules = rules
        self._exempt_endpoints = exempt_endpoints

    def _is_exempt(self, endpoint: str | None) -> bool:
        if endpoint is None:
            return False  # unknown URL: the 404 path, authorize like anything else
        if endpoint in self._exempt_endpoints:
            return True
        view = self._app.view_functions.get(endpoint)
        return bool(getattr(view, _EXEMPT_ATTRIBUTE, False))

    def authorize(self, request: Request, principal: Principal) -> None:
        anonymous_refused = principal.role is None
        if not anonymous_refused and not self._rules:
            return  # the common case: nothing to decide, nothing looked up
        endpoint = request.endpoint
        exempt = self._is_exempt(endpoint)
        if anonymous_refused and not exempt:
            log.debug("no credential and anonymous access is off: 401")
            raise MissingAPIKey()
        if exempt:
            return
        blueprints = request.blueprints
        for rule in self._rules:
            if rule.app is not None and rule.app() is not self._app:
                continue
            if rule.blueprint is not None and rule.blueprint not in blueprints:
                continue
            if endpoint not in rule.exempt:
                enforce(principal, rule.permissions, rule.role)


__all__ = ["Authorizer", "Rule", "check_permissions", "enforce", "mark_exempt"]
