"""The sign-in's endpoints, as one blueprint bound to one app's state.

======================================================  ==================
``/.well-known/oauth-authorization-server``             RFC 8414
``/.well-known/oauth-protected-resource[/<path>]``      RFC 9728
``/register``                                           RFC 7591
``/authorize`` (GET: the sign-in page, POST: decision)  RFC 6749, 7636, 9207, 8707
``/token`` (code and refresh grants)                    RFC 6749, 7636, 8707
======================================================  ==================

The request hook lets these through without reading a credential (a stale
token sent to the metadata must not turn it into a 401); the sign-in form's
key goes through the same resolver, lockout and rate limits as a key sent to
any other route, and is audited with ``credential_source`` ``signin``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from authlib.common.urls import add_params_to_uri
from authlib.oauth2.rfc6749 import InvalidRequestError, OAuth2Error
from flask import Blueprint, request
from werkzeug.wrappers import Response

from ..authorization import mark_exempt
from ..context import current, record_refusal
from ..credentials import Credential
from ..errors import AuthenticationError, InvalidAPIKey, RateLimitExceeded
from ..state import OAUTH_BLUEPRINT, AppState
from .cimd import ClientMetadataError
from .marks import MarksUnavailable
from .metadata import (
    AUTHORIZATION_SERVER_PATH,
    AUTHORIZE_PATH,
    PROTECTED_RESOURCE_PATH,
    REGISTER_PATH,
    TOKEN_PATH,
    protected_resource_metadata,
)
from .registration import read_document
from .setup import OAuthSetup
from .signin import CARRIED, CsrfGuard, page_headers, render_error, render_form

log = logging.getLogger("flask_mcp_auth.oauth")

SIGNIN = "signin"
_WRONG_KEY = "That API key was not accepted. Check it and try again."
#: Authlib raises ValueError (not an OAuth2Error) when the description it builds would
#: echo a character RFC 6749 forbids there (a quote, a backslash, non-ASCII), e.g. from
#: a hostile redirect_uri or response_type: answered as this, never as a 500.
_FORBIDDEN_CHARACTERS = "The request contains characters an OAuth request may not contain."


def _json(body: dict[str, Any], status: int = 200) -> Response:
    response = Response(json.dumps(body), status, mimetype="application/json")
    response.headers["Cache-Control"] = "no-store"
    return response


def _allow_cross_origin(response: Response) -> Response:
    """CORS on the metadata, registration and token endpoints (preflights included).

    Browser-based clients (the MCP Inspector) call them from another origin; they
    use no cookies, so any origin may.  Never on the sign-in page.
    """
    if request.endpoint != f"{OAUTH_BLUEPRINT}.authorize":
        response.headers["Access-Control-Allow-Origin"] = "*"
        response.headers["Access-Control-Allow-Headers"] = (
            "Authorization, Content-Type, MCP-Protocol-Version"
        )
        response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
    return response


def _oauth_error(error: OAuth2Error) -> Response:
    body: dict[str, Any] = {"error": error.error}
    if error.description:
        body["error_description"] = error.description
    return _json(body, error.status_code or 400)


def _described() -> dict[str, str]:
    return {"error_description": _FORBIDDEN_CHARACTERS}


class _Endpoints:
    def __init__(self, state: AppState, oauth: OAuthSetup) -> None:
        self.state = state
        self.oauth = oauth
        self.service = oauth.service
        self.server = oauth.service.server
        self.issuer = oauth.service.issuer
        self.csrf = CsrfGuard(
            state.secret or "", self.issuer.startswith("https://"), AUTHORIZE_PATH
        )

    # -- metadata --------------------------------------------------------------------

    def authorization_server(self) -> Response:
        return _json(self.oauth.metadata)

    def protected_resource(self, resource_path: str = "") -> Response:
        path = f"/{resource_path}" if resource_path else ""
        return _json(protected_resource_metadata(self.issuer, path, self.oauth.scopes))

    # -- registration and tokens ---------------------------------------------------------

    def register(self) -> Response:
        try:
            document = read_document(request)
            return _json(self.oauth.registration.register(document), 201)
        except OAuth2Error as error:
            return _oauth_error(error)
        except ValueError:
            return _json({"error": "invalid_client_metadata"} | _described(), 400)

    def token(self) -> Response:
        try:
            response: Response = self.server.create_token_response(request)
        except MarksUnavailable:
            return _json(
                {
                    "error": "temporarily_unavailable",
                    "error_description": "The shared storage is unavailable; try again shortly.",
                },
                503,
            )
        except ValueError:
            return _json({"error": "invalid_request"} | _described(), 400)
        return response

    # -- the sign-in page --------------------------------------------------------------

    def authorize(self) -> Response:
        try:
            grant = self.server.get_consent_grant(request)
            # RFC 8707, checked before anyone is asked for a key.
            self.service.audience(grant.request.payload.data.get("resource"))
        except OAuth2Error as error:
            return self._refuse(error)
        except ValueError:
            return self._refuse(InvalidRequestError(_FORBIDDEN_CHARACTERS))
        if request.method == "GET":
            return self._form(grant)
        if not self.csrf.check(request) or not self._same_origin():
            log.warning("sign-in POST without a valid CSRF value or from another origin: refused")
            return page_headers(
                Response(
                    render_error(
                        "Sign-in refused",
                        "This form expired or was sent from another site. Start the "
                        "connection again from your application.",
                    ),
                    403,
                    mimetype="text/html",
                ),
                None,
            )
        if request.form.get("decision") != "approve":
            return self._finish(grant, None)
        return self._sign_in(grant)

    def _sign_in(self, grant: Any) -> Response:
        value = (request.form.get("api_key") or "").strip()
        context = current()
        if context is not None:
            context.credential_source = SIGNIN
        try:
            principal = self.state.resolver.resolve(Credential(value, SIGNIN))
        except AuthenticationError as refused:
            try:
                self.state.rate_limits.failed_attempt(isinstance(refused, InvalidAPIKey), value)
            except RateLimitExceeded as locked:
                return self._form(grant, str(locked.description), locked.code or 429, locked)
            message = _WRONG_KEY if isinstance(refused, InvalidAPIKey) else refused.message
            return self._form(grant, message, 401, refused)
        if context is not None:
            context.principal = principal
        assert principal.key is not None
        try:
            self.state.rate_limits.check_key(principal.key)
        except RateLimitExceeded as limited:
            return self._form(grant, str(limited.description), 429, limited)
        try:
            user = self.service.new_grant(principal.key, grant.client, grant.request.payload)
        except OAuth2Error as error:
            return self._refuse(error)
        return self._finish(grant, user)

    def _finish(self, grant: Any, user: Any) -> Response:
        """The redirect back to the client: a code, or ``access_denied`` (``iss`` in both)."""
        response: Response = self.server.create_authorization_response(
            request, grant_user=user, grant=grant
        )
        response.headers["Cache-Control"] = "no-store"
        return response

    def _form(
        self, grant: Any, message: str | None = None, status: int = 200, refusal: Any = None
    ) -> Response:
        payload = grant.request.payload
        fields = {name: payload.data.get(name) or "" for name in CARRIED}
        redirect_uri = grant.redirect_uri or payload.redirect_uri
        csrf_value, fresh_cookie = self.csrf.issue(request)
        html = render_form(
            AUTHORIZE_PATH,
            fields,
            csrf_value,
            grant.client.client_name,
            grant.client.client_id,
            redirect_uri,
            payload.data.get("scope") or "",
            message,
        )
        response = page_headers(Response(html, status, mimetype="text/html"), redirect_uri)
        if fresh_cookie is not None:
            self.csrf.set_cookie(response, fresh_cookie)
        if refusal is not None:
            record_refusal(refusal, status)  # the audit line names the refusal
        return response

    def _refuse(self, error: OAuth2Error) -> Response:
        """Redirect an error to the client only if its redirect URI is verified; else a page."""
        redirect_uri = self._verified_redirect()
        if redirect_uri is None:
            html = render_error(
                "This sign-in request is not valid", error.get_error_description() or error.error
            )
            return page_headers(Response(html, 400, mimetype="text/html"), None)
        params = [("error", error.error)]
        if error.description:
            params.append(("error_description", error.description))
        state = request.values.get("state")
        if state:
            params.append(("state", state))
        params.append(("iss", self.issuer))
        response = Response("", 302)
        response.headers["Location"] = add_params_to_uri(redirect_uri, params)
        response.headers["Cache-Control"] = "no-store"
        return response

    def _verified_redirect(self) -> str | None:
        client_id = request.values.get("client_id")
        if not client_id:
            return None
        try:
            client = self.service.clients.find(client_id)
        except ClientMetadataError:  # an unusable metadata document: nowhere verified to send it
            return None
        if client is None:
            return None
        requested = request.values.get("redirect_uri")
        # Only the exact URI the request names and the client registered (no default).
        return requested if requested and client.check_redirect_uri(requested) else None

    def _same_origin(self) -> bool:
        origin = request.headers.get("Origin")
        site = request.headers.get("Sec-Fetch-Site")
        if site is not None and site not in ("same-origin", "none"):
            return False
        return origin is None or origin == self.issuer


def _open_view(method: Callable[..., Response]) -> Callable[..., Response]:
    """A plain function for ``method``, marked exempt from the app's protect rules."""

    def view(**kwargs: Any) -> Response:
        return method(**kwargs)

    view.__name__ = method.__name__
    return mark_exempt(view)


def make_oauth_blueprint(state: AppState, oauth: OAuthSetup) -> Blueprint:
    """The sign-in's routes for one app's state."""
    endpoints = _Endpoints(state, oauth)
    blueprint = Blueprint(OAUTH_BLUEPRINT, __name__)
    routes = (
        (
            AUTHORIZATION_SERVER_PATH,
            "authorization_server",
            endpoints.authorization_server,
            ["GET"],
        ),
        (PROTECTED_RESOURCE_PATH, "protected_resource", endpoints.protected_resource, ["GET"]),
        (
            PROTECTED_RESOURCE_PATH + "/<path:resource_path>",
            "protected_resource_path",
            endpoints.protected_resource,
            ["GET"],
        ),
        (REGISTER_PATH, "register", endpoints.register, ["POST"]),
        (AUTHORIZE_PATH, "authorize", endpoints.authorize, ["GET", "POST"]),
        (TOKEN_PATH, "token", endpoints.token, ["POST"]),
    )
    for rule, name, view, methods in routes:
        blueprint.add_url_rule(rule, name, _open_view(view), methods=methods)
    blueprint.after_request(_allow_cross_origin)
    return blueprint


__all__ = ["SIGNIN", "make_oauth_blueprint"]
