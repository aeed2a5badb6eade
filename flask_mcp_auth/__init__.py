"""API-key authentication, authorization and per-key rate limiting for Flask MCP services."""

from ._version import __version__
from .context import current_principal
from .decorators import require_permission, require_role
from .errors import (
    APIKeyExpired,
    AuthenticationError,
    AuthServiceUnavailable,
    ConfigError,
    InsufficientPermissions,
    InvalidAPIKey,
    MCPAuthError,
    MissingAPIKey,
    RateLimitExceeded,
    TooManyFailedAttempts,
)
from .extension import MCPAuth
from .keys.model import APIKey
from .keys.signing import generate_api_key
from .keys.store import KeyStore
from .logs import install_stderr_fallback
from .principal import Principal
from .roles import ROLES

# Instead of a NullHandler: WARNING and above reach stderr while the application
# configured no handler that would write them (flask_mcp_auth/logs.py).
install_stderr_fallback()

__all__ = [
    "APIKey",
    "APIKeyExpired",
    "AuthServiceUnavailable",
    "AuthenticationError",
    "ConfigError",
    "InsufficientPermissions",
    "InvalidAPIKey",
    "KeyStore",
    "MCPAuth",
    "MCPAuthError",
    "MissingAPIKey",
    "Principal",
    "ROLES",
    "RateLimitExceeded",
    "TooManyFailedAttempts",
    "__version__",
    "current_principal",
    "generate_api_key",
    "require_permission",
    "require_role",
]
