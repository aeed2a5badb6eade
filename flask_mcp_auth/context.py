"""The per-request context: one typed object per request, like flask-limiter's.

The request hook creates it first thing; everything later in the request
(decorators, error rendering, the audit line, ``current_principal``) reads it.
It is kept in the request's WSGI environ, not on ``flask.g``: ``g`` belongs to
the app context, which may outlive a request (tests, a CLI pushing one context
around several requests), and a request whose hook never ran (an earlier
``before_request`` hook answered) must not see the previous request's context.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from flask import has_request_context, request
from werkzeug.local import LocalProxy

from .credentials import CredentialPolicy
from .keys.model import APIKey
from .principal import NOBODY, Principal

_ENVIRON_KEY = "flask_mcp_auth.context"


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
    #: The extension's error that refused the request, if one did, and the status it was
    #: answered with (a refused key at an OAuth discovery URL is answered with a 404).
    error: Refusal | None = None
    error_status: int | None = None
    #: For the audit line: X-Request-ID and the start of the request (perf_counter).
    request_id: str | None = None
    started: float | None = None


def begin(context: RequestContext, environ: dict[str, object]) -> RequestContext:
    """Make ``context`` the context of the request whose WSGI environ is ``environ``."""
    environ[_ENVIRON_KEY] = context
    return context


def current() -> RequestContext | None:
    """The current request's context; None outside a request or before the hook ran."""
    if not has_request_context():
        return None
    return of(request.environ)


def of(environ: dict[str, Any]) -> RequestContext | None:
    """The context of the request whose WSGI environ is ``environ``, if the hook ran."""
    context: RequestContext | None = environ.get(_ENVIRON_KEY)
    return context


def record_refusal(error: Refusal, status: int | None = None) -> None:
    """Remember the error refusing the current request, and the status it is answered
    with (by default its own), for the audit line."""
    context = current()
    if context is not None:
        context.error = error
        context.error_status = error.code if status is None else status


def principal() -> Principal:
    """The current request's principal (anonymous without a role outside a request)."""
    context = current()
    return NOBODY if context is None else context.principal


#: :func:`principal` as a proxy: ``current_principal.role`` and so on.
current_principal: Principal = LocalProxy(principal)  # type: ignore[assignment]

__all__ = [
    "RequestContext",
    "begin",
    "current",
    "of",
    "current_principal",
    "principal",
    "record_refusal",
]
