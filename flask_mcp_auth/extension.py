"""The MCPAuth extension: ``init_app`` builds one app's state and installs its hooks."""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar
from weakref import WeakKeyDictionary

from flask import Blueprint, Flask, current_app, has_app_context

from .audit import audit_enabled, configure_audit_output, finish_request
from .authorization import Authorizer, Rule, check_permissions, mark_exempt
from .cli import mcp_auth_cli
from .config import check_options, resolve_settings
from .debug import configure_debug
from .decorators import require_permission, require_role
from .guard import RequestGuard
from .keys.signing import KeySigner
from .keys.source import StoreSource, install_sighup_handler
from .keys.store import KeyStore
from .ratelimit.limiter import RateLimits
from .redaction import install_redaction
from .roles import check_role
from .state import EXTENSION_KEY, AppState
from .status import make_status_blueprint

if TYPE_CHECKING:
    from flask_limiter import Limiter

F = TypeVar("F", bound=Callable[..., Any])


class MCPAuth:
    """API-key authentication for a Flask MCP service.

    ``MCPAuth(app, **options)`` or ``auth = MCPAuth(**options)`` then
    ``auth.init_app(app)``.  Options are the lowercase names in
    :mod:`flask_mcp_auth.config` (``default_role=``, ``api_keys=`` ...); they
    beat ``app.config``, which beats the environment.  ``limiter=`` is a
    flask-limiter ``Limiter`` already initialised on the app, whose storage the
    rate limits then share; without it MCPAuth creates its own.

    One instance may serve several apps; what it derived from each app's
    configuration is kept per app, and the properties below answer for the
    current app (inside an application or request context).
    """

    #: Also available as methods, Flask-HTTPAuth style: ``@auth.require_permission("read")``.
    require_permission = staticmethod(require_permission)
    require_role = staticmethod(require_role)

    def __init__(
        self, app: Flask | None = None, *, limiter: Limiter | None = None, **options: Any
    ) -> None:
        check_options(options)
        self._options = options
        self._limiter = limiter
        self._states: WeakKeyDictionary[Flask, AppState] = WeakKeyDictionary()
        self._rules: list[Rule] = []
        if app is not None:
            self.init_app(app)

    # -- set-up ---------------------------------------------------------------

    def init_app(self, app: Flask) -> None:
        """Validate the configuration, load the keys and install the request hooks.

        Raises :class:`ConfigError` when the configuration is invalid, so a
        broken ``MCP_API_KEYS`` stops start-up, and RuntimeError when the app
        already has an MCPAuth.
        """
        if EXTENSION_KEY in app.extensions:
            raise RuntimeError(
                f"MCPAuth is already initialised on the app {app.name!r}; call init_app once "
                "per app (one MCPAuth instance may serve several apps)"
            )
        settings = resolve_settings(self._options, app.config)
        # Before the key store loads, so DEBUG=auth:keys shows the loading.
        configure_debug(settings["MCP_DEBUG"])
        state = AppState(app, settings, self._limiter)
        audit = audit_enabled(settings["MCP_AUDIT_LOG"])

        # Nothing below can fail on the configuration: the app is changed only now.
        self._states[app] = state
        app.extensions[EXTENSION_KEY] = self
        install_redaction(state.policy.query_param, state.policy.header)
        if state.keys.path is not None and settings["MCP_API_KEYS_RELOAD_ON_SIGHUP"]:
            install_sighup_handler()
        if audit:
            configure_audit_output(settings["MCP_AUDIT_LOG"], settings["MCP_AUDIT_FLUSH_MS"])
        app.before_request(
            RequestGuard(state, Authorizer(app, self._rules, state.exempt_endpoints), audit)
        )
        if audit:
            app.after_request(finish_request)
        app.cli.add_command(mcp_auth_cli)
        if state.status_url:
            app.register_blueprint(make_status_blueprint(state))
        if state.oauth is not None:
            # Imported here: Authlib is an optional extra, needed only with the sign-in on.
            from .oauth.blueprint import make_oauth_blueprint

            app.register_blueprint(make_oauth_blueprint(state, state.oauth))

    # -- per-app state ------------------------------------------------------------

    def state_for(self, app: Flask) -> AppState:
        """What ``init_app(app)`` derived; RuntimeError if this instance was not initialised
        on ``app``."""
        state = self._states.get(app)
        if state is None:
            raise RuntimeError(
                f"this MCPAuth instance is not initialised on the app {app.name!r}: call "
                "auth.init_app(app) first"
            )
        return state

    def _state(self) -> AppState:
        if not has_app_context():
            raise RuntimeError(
                "MCPAuth's per-app properties need an application context: use them inside a "
                "request or 'with app.app_context():', or call auth.state_for(app)"
            )
        return self.state_for(current_app._get_current_object())  # type: ignore[attr-defined]

    @property
    def settings(self) -> dict[str, Any]:
        return self._state().settings

    @property
    def store(self) -> KeyStore:
        return self._state().store

    @property
    def keys(self) -> StoreSource:
        """Where the store comes from; ``keys.request_reload()`` re-reads MCP_API_KEYS_FILE."""
        return self._state().keys

    @property
    def secret(self) -> str | bytes | None:
        return self._state().secret

    @property
    def signer(self) -> KeySigner | None:
        return self._state().signer

    @property
    def default_role(self) -> str | None:
        return self._state().default_role

    @property
    def realm(self) -> str:
        return self._state().realm

    @property
    def rate_limits(self) -> RateLimits:
        return self._state().rate_limits

    # -- authorization without decorating every view ----------------------------

    def exempt(self, view: F) -> F:
        """Mark a view as reachable without a key, whatever ``protect`` or
        ``MCP_DEFAULT_ROLE`` would otherwise require."""
        return mark_exempt(view)

    def protect(
        self,
        target: Flask | Blueprint | None = None,
        *,
        permissions: Iterable[str] = (),
        role: str | None = None,
        exempt: Iterable[str] = (),
    ) -> None:
        """Require ``permissions`` (all of them) and/or ``role`` on every view of a
        blueprint, of one app (``target`` is the app), or of every app this instance
        serves (``target`` is None).

        ``exempt`` names endpoints (``"bp.health"``) left open; views marked with
        :meth:`exempt` and the status route are always open.
        """
        names = check_permissions(permissions) if permissions else []
        if role is not None:
            check_role(role)
        if not names and role is None:
            raise ValueError("protect() needs permissions=..., role=..., or both")
        blueprint = target.name if isinstance(target, Blueprint) else None
        app = weakref.ref(target) if isinstance(target, Flask) else None
        self._rules.append(Rule(blueprint, tuple(names), role, frozenset(exempt), app))


__all__ = ["MCPAuth"]
