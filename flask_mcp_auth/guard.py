"""The request hook: extract the credential, resolve the principal, throttle, authorize.

One ``before_request`` hook per app, bound to that app's :class:`AppState`, so a
request looks nothing up.  It creates the request context first; the view, its
decorators, the error rendering and the audit line read it afterwards.
"""

from __future__ import annotations

import logging

from flask import Request, request
from werkzeug.wrappers import Response

from .audit import begin_request
from .authorization import Authorizer
from .context import RequestContext, begin, record_refusal
from .credentials import Credential
from .discovery import DiscoveryAnswers
from .errors import AuthenticationError, InvalidAPIKey
from .principal import Principal
from .state import OAUTH_BLUEPRINT, AppState

log = logging.getLogger("flask_mcp_auth.request")


class RequestGuard:
    """The ``before_request`` hook of one app."""

    def __init__(self, state: AppState, authorizer: Authorizer, audit: bool) -> None:
        self._state = state
        self._authorizer = authorizer
        self._audit = audit

    def __call__(self) -> Response | None:
        state = self._state
        # The request object once, instead of one context lookup per attribute.
        current_request: Request = request._get_current_object()  # type: ignore[attr-defined]
        environ = current_request.environ
        context = begin(RequestContext(state.policy, state.anonymous), environ)
        if self._audit:
            begin_request(context, environ)
        discovery = state.discovery
        if current_request.url_rule is None and discovery is not None:
            kind = discovery.kind_of(current_request)  # an OAuth URL the app does not serve
            if kind is not None:
                return self._answer_discovery(discovery, kind, current_request, context)
        if current_request.method == "OPTIONS":
            return None  # CORS preflight: anonymous, never refused
        if state.oauth is not None and current_request.blueprint == OAUTH_BLUEPRINT:
            # The sign-in's own endpoints read no credential here (a stale token sent to
            # the metadata must not make it a 401); the sign-in form checks its key itself.
            state.rate_limits.check_anonymous()
            return None
        credential = state.policy.extract(current_request)
        if credential is None:
            log.debug("no credential: anonymous, role %s", context.principal.role)
            state.rate_limits.check_anonymous()
        else:
            principal = self._authenticate(credential, context, current_request.path)
            state.rate_limits.check_key(principal.key)  # type: ignore[arg-type]
        self._authorizer.authorize(current_request, context.principal)
        return None

    def _authenticate(
        self, credential: Credential, context: RequestContext, path: str
    ) -> Principal:
        """Resolve ``credential`` into the context, or raise its 401 (or the lockout's 429)
        after counting it as a failed attempt."""
        context.credential_source = credential.source  # for the audit line, even on failure
        try:
            principal = self._state.resolver.resolve(credential, path)
        except AuthenticationError as refused:
            counted = isinstance(refused, InvalidAPIKey)
            self._state.rate_limits.failed_attempt(counted, credential.value)
            raise
        context.principal = principal
        context.credential_source = principal.credential_source  # "oauth" for a token
        return principal

    def _answer_discovery(
        self,
        discovery: DiscoveryAnswers,
        kind: str,
        current_request: Request,
        context: RequestContext,
    ) -> Response:
        """The discovery answer, saying whether a credential sent with it was accepted.

        The credential is checked (and audited) as on any route, and a wrong one counts
        toward the failed-attempt lockout, but it is not counted against the key's
        rate limits.
        """
        credential = self._state.policy.extract(current_request)
        if credential is None:
            return discovery.respond(kind)
        try:
            self._authenticate(credential, context, current_request.path)
        except AuthenticationError as refused:
            response = discovery.respond(kind, refusal=refused)
            record_refusal(refused, response.status_code)  # the audit line names the refusal
            return response
        return discovery.respond(kind, accepted=True)


__all__ = ["RequestGuard"]
