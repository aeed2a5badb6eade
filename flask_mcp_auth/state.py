"""What ``init_app`` derives from one app's configuration, computed once.

:class:`AppState` is built from resolved settings without the extension, so the
CLI can build one for the environment alone; :func:`state_of` finds the state
of an app the extension was initialised on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from flask import Flask

from .config import signing_secret
from .credentials import CredentialPolicy
from .discovery import DiscoveryAnswers, authentication_info
from .keys.signing import KeySigner
from .keys.source import StoreSource
from .keys.store import KeyStore
from .principal import Principal
from .ratelimit.limiter import RateLimits, failed_attempt_secret
from .ratelimit.storage import warn_if_memory_under_workers
from .resolve import Resolver

if TYPE_CHECKING:
    from flask_limiter import Limiter

    from .oauth.setup import OAuthSetup

#: Where the extension instance lives: ``app.extensions[EXTENSION_KEY]``.
EXTENSION_KEY = "mcp_auth"
#: The status route's endpoint (its blueprint is named after the extension).
STATUS_ENDPOINT = f"{EXTENSION_KEY}.status"
#: The blueprint of the OAuth sign-in's endpoints (flask_mcp_auth.oauth.blueprint).
OAUTH_BLUEPRINT = f"{EXTENSION_KEY}_oauth"


class AppState:
    """One app's settings and everything derived from them."""

    def __init__(
        self, app: Flask, settings: dict[str, Any], limiter: Limiter | None = None
    ) -> None:
        """Load the keys and set up the rate limits; raise ConfigError on any problem.

        ``settings`` are resolved and validated (:func:`flask_mcp_auth.config.resolve_settings`).
        """
        self.settings = settings
        self.secret: str | bytes | None = signing_secret(settings, app.config)
        self.signer = KeySigner(self.secret) if self.secret else None
        self.keys = StoreSource.from_settings(settings, self.secret)
        keys = self.keys.current()
        self.rate_limits = RateLimits.from_settings(
            app,
            settings,
            limiter,
            keys,
            mark_secret=failed_attempt_secret(self.secret, (key.key_id for key in keys)),
        )
        #: The OAuth sign-in (None: MCP_OAUTH_ISSUER is unset).
        self.oauth: OAuthSetup | None = None
        if settings["MCP_OAUTH_ISSUER"]:
            self.oauth = self._build_oauth(app, settings)
        self.resolver = Resolver(
            self.keys,
            self.signer,
            not settings["MCP_REQUIRE_SIGNED_KEYS"],
            self.oauth.verifier if self.oauth is not None else None,
        )
        self.policy = CredentialPolicy.from_settings(settings)
        self.default_role: str | None = settings["MCP_DEFAULT_ROLE"] or None
        self.anonymous = Principal.anonymous(self.default_role)
        #: How to authenticate here: shared by /mcp/status and the discovery answers.
        self.authentication_info = authentication_info(
            self.policy,
            self.signer is not None,
            self.resolver.plain_allowed,
            settings["MCP_OAUTH_ISSUER"],
        )
        self.status_url: str = settings["MCP_STATUS_URL"]
        self.exempt_endpoints = frozenset({STATUS_ENDPOINT} if self.status_url else ())
        #: Answers OAuth URLs the app does not serve (None: switched off).
        self.discovery = DiscoveryAnswers.from_settings(
            settings, self.policy, self.authentication_info
        )

    def _build_oauth(self, app: Flask, settings: dict[str, Any]) -> OAuthSetup:
        # Imported here: Authlib is an optional extra, needed only with the sign-in on
        # (the settings registry has checked it is installed).
        from .oauth.setup import build_oauth

        assert self.secret  # the settings registry requires one with an issuer
        storage = self.rate_limits.strategy.storage
        warn_if_memory_under_workers(storage, oauth=True)
        prefix = str(app.config.get("RATELIMIT_KEY_PREFIX") or "")
        return build_oauth(settings, self.secret, self.keys, storage, prefix)

    @property
    def realm(self) -> str:
        return self.policy.realm

    @property
    def store(self) -> KeyStore:
        """The key store in force now; it changes when MCP_API_KEYS_FILE does.

        Read it once per request and keep the object, so that one request
        never sees two different stores.
        """
        return self.keys.current()


class _HasAppState(Protocol):
    def state_for(self, app: Flask) -> AppState: ...


def state_of(app: Flask) -> AppState | None:
    """The state of an app the extension was initialised on; None if it was not."""
    extension: _HasAppState | None = app.extensions.get(EXTENSION_KEY)
    return extension.state_for(app) if extension is not None else None


__all__ = ["EXTENSION_KEY", "OAUTH_BLUEPRINT", "STATUS_ENDPOINT", "AppState", "state_of"]
