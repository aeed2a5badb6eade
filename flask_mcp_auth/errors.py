"""Exceptions: configuration errors and the HTTP errors the extension raises.

Every HTTP error subclasses the matching Werkzeug exception, so an
application can replace the body with ``app.errorhandler(401)`` (or 403, 429,
503) as for any Flask error.  The default body is JSON:
``{"error": REASON, "message": TEXT}``; when the request is a JSON-RPC message
(an MCP POST), it is a JSON-RPC 2.0 error response instead, echoing the
request id, with ``error.data.reason`` set to REASON, so that MCP clients show
the message rather than a generic failure.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from flask import has_request_context, request
from werkzeug.exceptions import (
    Forbidden,
    HTTPException,
    ServiceUnavailable,
    TooManyRequests,
    Unauthorized,
)
from werkzeug.wrappers import Response

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment
    from werkzeug.wrappers import Request as WSGIRequest

from . import context
from .credentials import CredentialPolicy
from .keys.model import APIKey


class ConfigError(ValueError):
    """The configuration is invalid; raised at start-up (``init_app``)."""


# JSON-RPC error codes in the implementation-defined server range (-32000..-32099).
JSONRPC_UNAUTHORIZED = -32001
JSONRPC_FORBIDDEN = -32003
JSONRPC_RATE_LIMITED = -32029
JSONRPC_UNAVAILABLE = -32050

#: Largest body read to find a JSON-RPC id for an error response.  An MCP message
#: is far smaller; without a bound, an unauthenticated client could make every
#: 401 or 429 buffer and parse a body of any size.  Larger bodies get plain JSON.
JSONRPC_PEEK_LIMIT = 1024 * 1024


class MCPAuthError(HTTPException):
    """Base of every HTTP error raised by flask-mcp-auth."""

    reason: str = "error"
    jsonrpc_code: int = -32000

    def __init__(
        self,
        message: str | None = None,
        *,
        headers: Iterable[tuple[str, str]] | None = None,
        data: dict[str, Any] | None = None,
        key: APIKey | None = None,
    ) -> None:
        super().__init__(message or self.description)
        self.extra_headers: list[tuple[str, str]] = list(headers or ())
        self.data: dict[str, Any] = dict(data or {})
        #: The key involved when known (e.g. an expired key): named in the audit
        #: log by its fingerprint, never put in the response body.
        self.key = key
        # Every 401/403/429/503 is created where it is raised, in a request: recording it
        # here is the one place that sees them all, whoever raises it (the extension or the
        # application) and whatever renders it (the default or an app.errorhandler).
        context.record_refusal(self)

    @property
    def message(self) -> str:
        return str(self.description)

    def body(self) -> tuple[dict[str, Any], bool]:
        """Return (JSON body, whether it is a JSON-RPC response)."""
        rpc = _jsonrpc_request_id()
        if rpc is None:
            return {"error": self.reason, "message": self.message, **self.data}, False
        return {
            "jsonrpc": "2.0",
            "id": rpc[0],
            "error": {
                "code": self.jsonrpc_code,
                "message": f"{self.name} ({self.reason}): {self.message}",
                "data": {"reason": self.reason, "status": self.code, **self.data},
            },
        }, True

    def get_headers(
        self, environ: WSGIEnvironment | None = None, scope: dict[str, Any] | None = None
    ) -> list[tuple[str, str]]:
        return [("Content-Type", "application/json"), *self.extra_headers]

    def get_response(
        self,
        environ: WSGIEnvironment | WSGIRequest | None = None,
        scope: dict[str, Any] | None = None,
    ) -> Response:
        payload, _ = self.body()
        return Response(
            json.dumps(payload, separators=(",", ":")),
            self.code,
            self.get_headers(),
        )


def _jsonrpc_request_id() -> tuple[Any] | None:
    """(id,) when the current request is a JSON-RPC message, else None.

    A batch or a message without an id (a notification) gets id null.
    """
    if not has_request_context() or request.method != "POST":
        return None
    length = request.content_length
    if length is None or length > JSONRPC_PEEK_LIMIT:
        return None  # unknown (chunked) or too long: not worth reading for an error
    try:
        body = request.get_json(silent=True)
    except (RecursionError, HTTPException):
        # silent=True only covers ValueError: a deeply nested body, one over
        # MAX_CONTENT_LENGTH or a dropped connection must still get this error, not a 500.
        return None
    if isinstance(body, dict) and body.get("jsonrpc") == "2.0":
        msg_id = body.get("id")
        valid_id = isinstance(msg_id, (str, int)) and not isinstance(msg_id, bool)
        return (msg_id if valid_id else None,)
    if isinstance(body, list) and any(isinstance(m, dict) and "jsonrpc" in m for m in body):
        return (None,)
    return None


class AuthenticationError(MCPAuthError, Unauthorized):
    """401: no usable credential."""

    code = 401
    jsonrpc_code = JSONRPC_UNAUTHORIZED
    #: RFC 6750 error code for the challenge; None when no credential was sent.
    challenge_error: str | None = "invalid_token"

    def get_headers(
        self, environ: WSGIEnvironment | None = None, scope: dict[str, Any] | None = None
    ) -> list[tuple[str, str]]:
        return [*super().get_headers(environ, scope), ("WWW-Authenticate", self.challenge())]

    def challenge(self) -> str:
        """One challenge per accepted scheme, saying only what this server does.

        With the OAuth sign-in on, the Bearer challenge names the protected-resource
        metadata (``resource_metadata``); off, it names none, because the discovery URLs
        then answer 404 (:mod:`flask_mcp_auth.discovery`).
        """
        return _policy().challenge(self.challenge_error, self.reason)


def _policy() -> CredentialPolicy:
    """The current app's credential policy, from the request context; the defaults outside."""
    current = context.current()
    return current.policy if current is not None else _DEFAULT_POLICY


_DEFAULT_POLICY = CredentialPolicy()


class MissingAPIKey(AuthenticationError):
    reason = "missing_api_key"
    challenge_error = None
    description = (
        "This endpoint requires an API key. Send it in the X-API-Key header, "
        "as 'Authorization: Bearer <key>', or in the api_key query parameter."
    )

    @property
    def message(self) -> str:
        if self.description != type(self).description:
            return str(self.description)  # a message given by the caller
        # Name the header, scheme and parameter this app really accepts.
        return f"This endpoint requires an API key. Send it {_policy().how}."


class InvalidAPIKey(AuthenticationError):
    reason = "invalid_api_key"
    # Only what can be true of a running server: a malformed key document stops
    # start-up, so it is never the cause here.
    description = (
        "The API key was not recognised: it is not one this server holds. Check that the "
        "key ID matches exactly (a typo, or a key revoked since it was issued); if it does, "
        "the server may have been started without the keys it was meant to have."
    )


class APIKeyExpired(AuthenticationError):
    reason = "api_key_expired"
    description = "The API key has expired. Ask the operator for a new key or a later expiresAt."


class InvalidAccessToken(InvalidAPIKey):
    """401 for an OAuth access token that is not valid here (RFC 6750 ``invalid_token``)."""

    reason = "invalid_token"
    description = (
        "The access token is not valid here: not issued by this server, for another "
        "resource, tampered with, or the API key it was issued for was revoked. Sign in again."
    )


class AccessTokenExpired(APIKeyExpired):
    reason = "token_expired"
    description = "The access token has expired. Refresh it, or sign in again."


class InsufficientPermissions(MCPAuthError, Forbidden):
    """403: authenticated, but the key lacks a permission or role."""

    code = 403
    reason = "insufficient_permissions"
    jsonrpc_code = JSONRPC_FORBIDDEN
    description = "The API key does not allow this operation."

    def __init__(
        self,
        message: str | None = None,
        *,
        missing_permissions: Iterable[str] = (),
        required_role: str | None = None,
        headers: Iterable[tuple[str, str]] | None = None,
    ) -> None:
        self.missing_permissions = list(missing_permissions)
        self.required_role = required_role
        data: dict[str, Any] = {}
        if self.missing_permissions:
            data["missing_permissions"] = self.missing_permissions
        if required_role:
            data["required_role"] = required_role
        super().__init__(message, headers=headers, data=data)

    # No WWW-Authenticate here. RFC 6750's insufficient_scope challenge tells an
    # OAuth client to fetch a token with more scope; this server issues no tokens,
    # and MCP clients built on the TypeScript SDK (mcp-remote) answer that
    # challenge by starting OAuth step-up instead of showing the missing
    # permission. The body says what is missing.


class RateLimitExceeded(MCPAuthError, TooManyRequests):
    """429: a rate limit was hit."""

    code = 429
    reason = "rate_limit_exceeded"
    jsonrpc_code = JSONRPC_RATE_LIMITED
    description = "Rate limit exceeded. Wait for the window to reset."


class TooManyFailedAttempts(RateLimitExceeded):
    reason = "too_many_failed_attempts"
    description = "Too many failed authentication attempts from this address. Try again later."


class AuthServiceUnavailable(MCPAuthError, ServiceUnavailable):
    """503: the rate-limit storage is down and the extension is set to fail closed."""

    code = 503
    reason = "service_unavailable"
    jsonrpc_code = JSONRPC_UNAVAILABLE
    description = "The rate-limit storage is unavailable. Try again shortly."


__all__ = [
    "APIKeyExpired",
    "AccessTokenExpired",
    "AuthServiceUnavailable",
    "AuthenticationError",
    "ConfigError",
    "InsufficientPermissions",
    "InvalidAPIKey",
    "InvalidAccessToken",
    "MCPAuthError",
    "MissingAPIKey",
    "RateLimitExceeded",
    "TooManyFailedAttempts",
]
