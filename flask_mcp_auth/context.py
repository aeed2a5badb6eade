"""The per-request context: one typed object on ``flask.g``, like flask-limiter's.

The request hook creates it first thing; everything later in the request
(decorators, error rendering, the audit line, ``current_principal``) reads it,
and nothing else is kept on ``g``.  A fresh object per request means nothing
carries over when an app context outlives a request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from flask import g, has_request_context
from werkzeug.local import LocalProxy

from .credentials import CredentialPolicy
from .keys.model import APIKey
from .principal import NOBODY, Principal

_ATTRIBUTE = "_flask_mcp_auth"


class Refusal(Protocol):
    """What the audit line needs of the error that refused a request."""

    @property
    def code(self) -> int | None: ...

    @property
    def reason(self) -> str: ...

    @property
    def key(self) -> APIKey | None: ...


@dataclass(slots=True, eq=False)
class RequestContext:
    #: How this app accepts keys: what a 401 tells the client.
    policy: CredentialPolicy
    #: Who the request acts as (anonymous until a credential is resolved).
    principal: Principal
    #: "header", "bearer" or "query" once a credential was presented, even a refused one.
    credential_source: str | None = None
    #: The extension's error that refused the request, if one did.
    error: Refusal | None = None
    #: For the audit line: X-Request-ID and the start of the request (perf_counter).
    request_id: str | None = None
    started: float | None = None


def begin(context: RequestContext) -> RequestContext:
    """Make ``context`` the current request's."""
    setattr(g._get_current_object(), _ATTRIBUTE, context)
    return context


def current() -> RequestContext | None:
    """The current request's context; None outside a request or before the hook ran."""
    if not has_request_context():
        return None
    context: RequestContext | None = g.get(_ATTRIBUTE)
    return context


def record_refusal(error: Refusal) -> None:
    """Remember the error refusing the current request (for the audit line)."""
    context = current()
    if context is not None:
        context.error = error


def principal() -> Principal:
    """The current request's principal (anonymous without a role outside a request)."""
    context = current()
    return NOBODY if context is None else context.principal


#: :func:`principal` as a proxy: ``current_principal.role`` and so on.
current_principal: Principal = LocalProxy(principal)  # type: ignore[assignment]

__all__ = ["RequestContext", "begin", "current", "current_principal", "principal", "record_refusal"]
