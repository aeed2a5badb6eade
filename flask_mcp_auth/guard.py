"""The request hook: extract the credential, resolve the principal, throttle, authorize.

One ``before_request`` hook per app, bound to that app's :class:`AppState`, so a
request looks nothing up.  It creates the request context first; the view, its
decorators, the error rendering and the audit line read it afterwards.
"""

from __future__ import annotations

import logging

from flask import Flask, Request, request
from werkzeug.wrappers import Response

from .audit import begin_request
from .authorization import Authorizer
from .context import RequestContext, begin
from .discovery import DiscoveryAnswers
from .errors import AuthenticationError, InvalidAPIKey, MCPAuthError
from .state import AppState

log = logging.getLogger("flask_mcp_auth.request")


class RequestGuard:
    """The ``before_request`` hook of one app."""

    def __init__(self, app: Flask, state: AppState, authorizer: Authorizer, audit: bool) -> None:
        self._app = app
        self._state = state
        self._authorizer = authorizer
        self._audit = audit

    def __call__(self) -> Response | None:
        state = self._state
        # The request object once, instead of one context lookup per attribute.
        current_request: Request = request._get_current_object()  # type: ignore[attr-defined]
        context = begin(RequestContext(state.policy, state.anonymous))
        if self._audit:
            begin_request(context, current_request.environ)
        try:
            return self._check(state, current_request, context)
        except MCPAuthError as refused:
            context.error = refused  # for the audit line, whatever renders the response
            raise

    def _check(
        self, state: AppState, current_request: Request, context: RequestContext
    ) -> Response | None:
        discovery = state.discovery
        if current_request.url_rule is None and discovery is not None:
            kind = discovery.kind_of(current_request)  # an OAuth URL the app does not serve
            if kind is not None:
                return self._answer_discovery(state, discovery, current_request, kind)
        if current_request.method == "OPTIONS":
            return None  # CORS preflight: anonymous, never refused
        credential = state.policy.extract(current_request)
        if credential is None:
            log.debug("no credential: anonymous, role %s", context.principal.role)
            state.rate_limits.check_anonymous()
        else:
            context.credential_source = credential.source  # for the audit log, even on failure
            try:
                principal = state.resolver.resolve(credential)
            except AuthenticationError as refused:
                counted = isinstance(refused, InvalidAPIKey)
                state.rate_limits.failed_attempt(counted, credential.value)
                raise
            context.principal = principal
            state.rate_limits.check_key(principal.key)  # type: ignore[arg-type]
        self._authorizer.authorize(self._app, current_request, context.principal)
        return None

    @staticmethod
    def _answer_discovery(
        state: AppState, discovery: DiscoveryAnswers, current_request: Request, kind: str
    ) -> Response:
        """The discovery answer, saying whether a credential sent with it was accepted.

        The credential is checked as on any route (a wrong one counts toward the
        failed-attempt lockout) but not counted against the key's rate limits.
        """
        credential = state.policy.extract(current_request)
        if credential is None:
            return discovery.respond(kind)
        try:
            state.resolver.resolve(credential)
        except AuthenticationError as refused:
            state.rate_limits.failed_attempt(isinstance(refused, InvalidAPIKey), credential.value)
            return discovery.respond(kind, refusal=refused)
        return discovery.respond(kind, accepted=True)


__all__ = ["RequestGuard"]
