"""The MCPAuth extension: configuration, the key store, and the request hook."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar
from weakref import WeakKeyDictionary

from flask import Blueprint, Flask, current_app, g, has_app_context, request

from .audit import install_audit
from .config import SETTINGS, check_options, resolve_settings
from .credentials import Credential, KeySigner, extract_credential, looks_signed
from .debug import configure_debug
from .decorators import check_permissions, enforce, require_permission, require_role
from .discovery import discovery_responder
from .errors import APIKeyExpired, AuthenticationError, ConfigError, InvalidAPIKey, MissingAPIKey
from .keystore import KeyStore
from .principal import ROLES, Principal, check_role
from .ratelimit import RateLimits
from .redaction import install_redaction
from .reload import StoreSource
from .verified import VerifiedCredentials

if TYPE_CHECKING:
    from flask_limiter import Limiter
    from werkzeug.sansio.response import Response

log = logging.getLogger("flask_mcp_auth")
request_log = logging.getLogger("flask_mcp_auth.request")

F = TypeVar("F", bound=Callable[..., Any])

EXTENSION_KEY = "mcp_auth"
_EXEMPT_ATTR = "_mcp_auth_exempt"


@dataclass(frozen=True)
class _Rule:
    """A requirement on every view of one blueprint (or of the app: None)."""

    blueprint: str | None
    permissions: tuple[str, ...]
    role: str | None
    exempt: frozenset[str]


class MCPAuth:
    """API-key authentication for a Flask MCP service.

    ``MCPAuth(app, **options)`` or ``auth = MCPAuth(**options)`` then
    ``auth.init_app(app)``.  Options are the lowercase names in
    :mod:`flask_mcp_auth.config` (``default_role=``, ``api_keys=`` ...); they
    beat ``app.config``, which beats the environment.  ``limiter=`` is a
    flask-limiter ``Limiter`` already initialised on the app, whose storage the
    rate limits then share; without it MCPAuth creates its own.
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
        # One instance may serve several apps (factory pattern, tests): what init_app
        # derives from an app's configuration is kept per app, never on the instance.
        self._states: WeakKeyDictionary[Flask, _AppState] = WeakKeyDictionary()
        self._last_state = _AppState({s.name: s.default for s in SETTINGS}, None, StoreSource())
        self._exempt_endpoints: set[str] = set()
        self._rules: list[_Rule] = []
        if app is not None:
            self.init_app(app)

    # -- set-up ---------------------------------------------------------------

    def init_app(self, app: Flask) -> None:
        """Validate the configuration, load the keys and install the request hook.

        Raises :class:`ConfigError` when the configuration is invalid, so a
        broken ``MCP_API_KEYS`` stops start-up.
        """
        settings = resolve_settings(self._options, app.config)
        # Before the key store loads, so DEBUG=auth:keys shows the loading.
        configure_debug(settings["MCP_DEBUG"])
        default_role = settings["MCP_DEFAULT_ROLE"]
        if default_role and default_role not in ROLES:
            raise ConfigError(
                f"MCP_DEFAULT_ROLE: unknown role {default_role!r}; "
                f"expected one of {', '.join(ROLES)} (or empty for no anonymous access)"
            )
        secret = settings["JWT_SECRET"] or app.config.get("SECRET_KEY") or None
        if secret is not None and not isinstance(secret, (str, bytes)):
            raise ConfigError(
                f"SECRET_KEY: expected a string or bytes, got {type(secret).__name__}"
            )
        if settings["MCP_REQUIRE_SIGNED_KEYS"] and not secret:
            raise ConfigError(
                "MCP_REQUIRE_SIGNED_KEYS is on but there is no secret to verify signatures: "
                "set JWT_SECRET (or the app's SECRET_KEY)"
            )
        keys = StoreSource.from_settings(settings, secret)

        rate_limits = RateLimits.from_settings(app, settings, self._limiter)
        rate_limits.preload(keys.current())
        state = _AppState(settings, secret, keys, rate_limits)
        self._states[app] = self._last_state = state

        app.extensions[EXTENSION_KEY] = self
        install_redaction(state.query_param, state.header)
        # Before the authentication hook, so the audit timing covers it.
        install_audit(app, settings["MCP_AUDIT_LOG"])
        # Called by the authentication hook first: OAuth discovery answers need no key.
        state.answer_discovery = discovery_responder(self)
        # The hook is bound to this app's state: no per-request lookup.
        app.before_request(functools.partial(self._authenticate_request, state))

        from .cli import mcp_auth_cli  # the CLI imports this module

        app.cli.add_command(mcp_auth_cli)

        if settings["MCP_STATUS_URL"]:
            from .blueprint import make_status_blueprint

            app.register_blueprint(make_status_blueprint(settings["MCP_STATUS_URL"]))
            self._exempt_endpoints.add("mcp_auth.status")

    # -- per-app state: the current app's inside a request or app context ---------

    def _state(self) -> _AppState:
        if has_app_context():
            state = self._states.get(_current_app())
            if state is not None:
                return state
        return self._last_state

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
        setattr(view, _EXEMPT_ATTR, True)
        return view

    def protect(
        self,
        target: Flask | Blueprint | None = None,
        *,
        permissions: Iterable[str] = (),
        role: str | None = None,
        exempt: Iterable[str] = (),
    ) -> None:
        """Require ``permissions`` (all of them) and/or ``role`` on every view of a
        blueprint, or of the whole app when ``target`` is the app or None.

        ``exempt`` names endpoints (``"bp.health"``) left open; views marked with
        :meth:`exempt` and the status route are always open.
        """
        names = check_permissions(permissions) if permissions else []
        if role is not None:
            check_role(role)
        if not names and role is None:
            raise ValueError("protect() needs permissions=..., role=..., or both")
        blueprint = target.name if isinstance(target, Blueprint) else None
        self._rules.append(_Rule(blueprint, tuple(names), role, frozenset(exempt)))

    def _is_exempt(self) -> bool:
        endpoint = request.endpoint
        if endpoint is None:
            return False  # unknown URL: the 404 path, authorize like anything else
        if endpoint in self._exempt_endpoints:
            return True
        view = current_app.view_functions.get(endpoint)
        return bool(getattr(view, _EXEMPT_ATTR, False))

    def _authorize(self, principal: Principal) -> None:
        """Apply MCP_DEFAULT_ROLE="" and the ``protect`` rules before the view runs."""
        if principal.role is None and not self._is_exempt():
            request_log.debug("no credential and anonymous access is off: 401")
            raise MissingAPIKey()
        if not self._rules:
            return
        blueprints = request.blueprints
        for rule in self._rules:
            if rule.blueprint is not None and rule.blueprint not in blueprints:
                continue
            if request.endpoint in rule.exempt or self._is_exempt():
                continue
            enforce(principal, rule.permissions, rule.role)

    # -- per request ------------------------------------------------------------

    def _authenticate_request(self, state: _AppState) -> Response | None:
        # extract -> resolve -> throttle -> authorize; the view and its decorators follow.
        # One context lookup each for the request and g, instead of one per attribute
        # through their proxies (g's attributes are its __dict__).
        current_request = request._get_current_object()  # type: ignore[attr-defined]
        if current_request.url_rule is None and state.answer_discovery is not None:
            answer = state.answer_discovery()  # an OAuth URL the app does not serve
            if answer is not None:
                return answer
        request_globals = vars(g._get_current_object())
        if current_request.method == "OPTIONS":
            request_globals["mcp_principal"] = state.anonymous
            return None
        credential = extract_credential(
            current_request, state.header, state.accept_bearer, state.query_param
        )
        if credential is None:
            principal = request_globals["mcp_principal"] = state.anonymous
            request_log.debug("no credential: anonymous, role %s", principal.role)
            state.rate_limits.check_anonymous()
        else:
            # For the audit log, even on failure.
            request_globals["mcp_credential_source"] = credential.source
            try:
                principal = self._resolve(credential, state)
            except AuthenticationError as refused:
                state.rate_limits.failed_attempt(counted=isinstance(refused, InvalidAPIKey))
                raise
            request_globals["mcp_principal"] = principal
            state.rate_limits.check_key(principal.key)
        self._authorize(principal)
        return None

    def authenticate(self, credential: Credential) -> Principal:
        """Resolve a presented credential to a principal, or raise a 401 error."""
        return self._resolve(credential, self._state())

    def _resolve(self, credential: Credential, state: _AppState) -> Principal:
        store = state.store
        verified = state.verified
        if verified.store is not store:  # the key store was reloaded: forget the old one
            verified = state.verified = VerifiedCredentials(store)
        principal = verified.get(credential)
        if principal is None:
            key_id = self._key_id_of(credential.value, state)
            key = store.find(key_id) if key_id is not None else None
            if key is None:
                request_log.debug(
                    "credential from %s: unknown or badly signed key: 401", credential.source
                )
                raise InvalidAPIKey()
            principal = Principal.from_key(key, credential.source)
            verified.add(credential, principal)
        key = principal.key
        assert key is not None  # a principal built from a key
        if key.is_expired():
            request_log.debug(
                "credential from %s: key %s expired: 401", credential.source, key.label
            )
            raise APIKeyExpired(key=key)
        request_log.debug(
            "credential from %s: key %s, role %s", credential.source, key.label, key.role
        )
        return principal

    def _key_id_of(self, presented: str, state: _AppState) -> str | None:
        """The key id a presented value claims, checking a signature if it has one."""
        if not presented:
            return None
        if state.signer is not None and looks_signed(presented):
            key_id = state.signer.unsign(presented)
            if key_id is not None:
                return key_id
        return presented if state.plain_allowed else None


class _AppState:
    """What ``init_app`` derived from one app's configuration."""

    def __init__(
        self,
        settings: dict[str, Any],
        secret: str | bytes | None,
        keys: StoreSource,
        rate_limits: RateLimits | None = None,
    ) -> None:
        self.settings = settings
        self.rate_limits = rate_limits
        self.secret = secret
        self.signer = KeySigner(secret) if secret else None
        self.keys = keys
        #: Principals of credentials already verified against the store in force;
        #: replaced (in _resolve) when the store is.
        self.verified = VerifiedCredentials(keys.current())
        self.default_role: str | None = settings["MCP_DEFAULT_ROLE"] or None
        self.realm: str = settings["MCP_AUTH_REALM"]
        self.header: str = settings["MCP_API_KEY_HEADER"]
        self.accept_bearer: bool = settings["MCP_ACCEPT_BEARER"]
        self.query_param: str = settings["MCP_API_KEY_QUERY_PARAM"]
        self.plain_allowed: bool = not settings["MCP_REQUIRE_SIGNED_KEYS"]
        self.anonymous = Principal.anonymous(self.default_role)
        #: Answers OAuth URLs the app does not serve (None: switched off).
        self.answer_discovery: Callable[[], Response | None] | None = None

    @property
    def store(self) -> KeyStore:
        """The key store in force now; it changes when MCP_API_KEYS_FILE does.

        Read it once per request and keep the object, so that one request
        never sees two different stores.
        """
        return self.keys.current()


def _current_app() -> Flask:
    return current_app._get_current_object()  # type: ignore[attr-defined]
