"""The MCPAuth extension: configuration, the key store, and the request hook."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, g, request

from .audit import install_audit
from .config import check_options, resolve_settings
from .credentials import Credential, KeySigner, extract_credential, looks_signed
from .debug import configure_debug
from .errors import APIKeyExpired, ConfigError, InvalidAPIKey, MissingAPIKey
from .keystore import KeyStore, warn_about_store
from .principal import ROLES, Principal
from .redaction import install_redaction

log = logging.getLogger("flask_mcp_auth")
request_log = logging.getLogger("flask_mcp_auth.request")

F = TypeVar("F", bound=Callable[..., Any])

EXTENSION_KEY = "mcp_auth"
_EXEMPT_ATTR = "_mcp_auth_exempt"


class MCPAuth:
    """API-key authentication for a Flask MCP service.

    ``MCPAuth(app, **options)`` or ``auth = MCPAuth(**options)`` then
    ``auth.init_app(app)``.  Options are the lowercase names in
    :mod:`flask_mcp_auth.config` (``default_role=``, ``api_keys=`` ...); they
    beat ``app.config``, which beats the environment.
    """

    def __init__(self, app: Flask | None = None, **options: Any) -> None:
        check_options(options)
        self._options = options
        self.settings: dict[str, Any] = {}
        self.store = KeyStore()
        self.signer: KeySigner | None = None
        self._exempt_endpoints: set[str] = set()
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
        if settings["MCP_REQUIRE_SIGNED_KEYS"] and not secret:
            raise ConfigError(
                "MCP_REQUIRE_SIGNED_KEYS is on but there is no secret to verify signatures: "
                "set JWT_SECRET (or the app's SECRET_KEY)"
            )
        store = KeyStore.load(settings["MCP_API_KEYS"], secret)
        warn_about_store(store)

        self.settings = settings
        self.secret: str | None = secret
        self.signer = KeySigner(secret) if secret else None
        self.store = store
        self.default_role: str | None = default_role or None
        self.realm: str = settings["MCP_AUTH_REALM"]
        self._header: str = settings["MCP_API_KEY_HEADER"]
        self._accept_bearer: bool = settings["MCP_ACCEPT_BEARER"]
        self._query_param: str = settings["MCP_API_KEY_QUERY_PARAM"]
        self._plain_allowed = not settings["MCP_REQUIRE_SIGNED_KEYS"]

        app.extensions[EXTENSION_KEY] = self
        install_redaction(self._query_param, self._header)
        # Before the authentication hook, so the audit timing covers it.
        install_audit(app, settings["MCP_AUDIT_LOG"])
        app.before_request(self._authenticate_request)

        if settings["MCP_STATUS_URL"]:
            from .blueprint import make_status_blueprint

            app.register_blueprint(make_status_blueprint(settings["MCP_STATUS_URL"]))
            self._exempt_endpoints.add("mcp_auth.status")

    # -- exemptions -----------------------------------------------------------

    def exempt(self, view: F) -> F:
        """Mark a view as reachable without a key even when anonymous access is off."""
        setattr(view, _EXEMPT_ATTR, True)
        return view

    def _is_exempt(self, app: Flask) -> bool:
        endpoint = request.endpoint
        if endpoint is None:
            return False  # unknown URL: the 404 path, authenticate like anything else
        if endpoint in self._exempt_endpoints:
            return True
        view = app.view_functions.get(endpoint)
        return bool(getattr(view, _EXEMPT_ATTR, False))

    # -- per request ------------------------------------------------------------

    def _authenticate_request(self) -> None:
        if request.method == "OPTIONS":
            g.mcp_principal = Principal.anonymous(self.default_role)
            return
        credential = extract_credential(
            request, self._header, self._accept_bearer, self._query_param
        )
        if credential is None:
            principal = Principal.anonymous(self.default_role)
            g.mcp_principal = principal
            if principal.role is None and not self._is_exempt(_current_app()):
                request_log.debug("no credential and anonymous access is off: 401")
                raise MissingAPIKey()
            request_log.debug("no credential: anonymous, role %s", principal.role)
            return
        g.mcp_credential_source = credential.source  # for the audit log, even on failure
        g.mcp_principal = self.authenticate(credential)

    def authenticate(self, credential: Credential) -> Principal:
        """Resolve a presented credential to a principal, or raise a 401 error."""
        key_id = self._key_id_of(credential.value)
        key = self.store.find(key_id) if key_id is not None else None
        if key is None:
            request_log.debug(
                "credential from %s: unknown or badly signed key: 401", credential.source
            )
            raise InvalidAPIKey()
        if key.is_expired():
            request_log.debug(
                "credential from %s: key %s expired: 401", credential.source, key.label
            )
            raise APIKeyExpired(key=key)
        request_log.debug(
            "credential from %s: key %s, role %s", credential.source, key.label, key.role
        )
        return Principal.from_key(key, credential.source)

    def _key_id_of(self, presented: str) -> str | None:
        """The key id a presented value claims, checking a signature if it has one."""
        if not presented:
            return None
        if self.signer is not None and looks_signed(presented):
            key_id = self.signer.unsign(presented)
            if key_id is not None:
                return key_id
        return presented if self._plain_allowed else None


def _current_app() -> Flask:
    from flask import current_app

    return current_app._get_current_object()  # type: ignore[attr-defined]
