"""Answers at the OAuth discovery URLs that connectors probe, instead of an HTML 404.

A client set up for OAuth (a ChatGPT-style connector, the MCP Inspector with a
TTY) that meets a 401 goes looking for OAuth: the protected resource metadata
of RFC 9728 (``/.well-known/oauth-protected-resource``, also with the resource
path appended), authorization server metadata (RFC 8414, OpenID Connect
discovery), dynamic client registration (``/register``) and login, authorize or
token endpoints.  This server has none of them: it takes API keys.

Each such URL gets a **404** whose JSON body says so and says how to send a
key.  404 because it is the truth (nothing is published there) and because it
is the status every client's fallback chain is built on: the MCP Python SDK
moves on to the next candidate URL on any 4xx and gives up with the body in its
error message when ``/register`` fails, while a 5xx or 429 aborts with a bare
status and a 200 would have to be a metadata document.  A 200 is not possible:
the MCP authorization specification requires ``authorization_servers`` to list
at least one authorization server, and an API-key server has none.  A 401
would send the client back into discovery.  See docs/operators.md.

The answers come from the extension's ``before_request`` hook, which gives them
only when no route of the application matched the URL, so an application that
does serve one of these paths keeps it.  They need no key; a key sent with one
is checked (and audited, and a wrong one counted toward the failed-attempt
lockout) so that the answer can say whether it was accepted and why not.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flask import Request
from werkzeug.exceptions import NotFound
from werkzeug.wrappers import Response

from .credentials import PROTECTED_RESOURCE_PATH, CredentialPolicy
from .errors import AuthenticationError, MCPAuthError

PROTECTED_RESOURCE = "protected-resource"
AUTHORIZATION_SERVER = "authorization-server"
OPENID_CONFIGURATION = "openid-configuration"
REGISTER = "register"
LOGIN = "login"

_PRM_PATH = PROTECTED_RESOURCE_PATH
_ASM_PATH = "/.well-known/oauth-authorization-server"
_OIDC_PATH = "/.well-known/openid-configuration"

_WHAT_IS_MISSING = {
    PROTECTED_RESOURCE: "publishes no OAuth protected resource metadata",
    AUTHORIZATION_SERVER: "is not an OAuth authorization server",
    OPENID_CONFIGURATION: "is not an OpenID Connect provider",
    REGISTER: "offers no OAuth client registration",
    LOGIN: "has no OAuth login, authorize or token endpoint",
}


def authentication_info(
    policy: CredentialPolicy, signed_keys: bool, plain_keys: bool, oauth_issuer: str = ""
) -> dict[str, Any]:
    """How to authenticate to this server; shared by /mcp/status and the discovery answers."""
    formats = []
    if signed_keys:
        formats.append("mcp_<keyId>_<signature>")
    if plain_keys:
        formats.append("<keyId>")
    oauth: dict[str, str] | bool = False
    if oauth_issuer:
        oauth = {
            "issuer": oauth_issuer,
            "authorization_server_metadata": f"{oauth_issuer}{_ASM_PATH}",
            "protected_resource_metadata": policy.resource_metadata,
        }
    return {
        "type": "api_key",
        "oauth": oauth,
        "methods": policy.methods,
        "key_formats": formats,
    }


class OAuthNotSupported(MCPAuthError, NotFound):
    """404 at an OAuth URL: this server authenticates with API keys, not OAuth."""

    code = 404
    reason = "oauth_not_supported"
    description = "This MCP server does not use OAuth; it authenticates with API keys."


def answer_kind(path: str, answers: frozenset[str], login_paths: Iterable[str]) -> str | None:
    """Which discovery answer ``path`` asks for, or None if it is not an OAuth URL we answer."""

    def at(base: str) -> bool:
        return path == base or path.startswith(base + "/")

    if PROTECTED_RESOURCE in answers and at(_PRM_PATH):
        return PROTECTED_RESOURCE
    if AUTHORIZATION_SERVER in answers and at(_ASM_PATH):
        return AUTHORIZATION_SERVER
    # RFC 8414 inserts the well-known segment before an issuer's path; OpenID
    # Connect Discovery appends it after the path: answer both forms.
    if OPENID_CONFIGURATION in answers and (at(_OIDC_PATH) or path.endswith(_OIDC_PATH)):
        return OPENID_CONFIGURATION
    if REGISTER in answers and path == "/register":
        return REGISTER
    if path in login_paths:
        return LOGIN
    return None


def discovery_answer(
    kind: str,
    policy: CredentialPolicy,
    info: dict[str, Any],
    status_url: str,
    refusal: AuthenticationError | None = None,
    accepted: bool = False,
) -> OAuthNotSupported:
    """The 404 error for an OAuth URL of the given kind, telling how to send a key.

    When the request carried a credential, the answer says whether it was accepted
    and, if not, why (``refusal``): clients that probe discovery after a refused key
    (mcp-remote, the TypeScript SDK) then show the real reason instead of "use OAuth".
    """
    issuer = info["oauth"]["issuer"] if info.get("oauth") else ""
    if issuer:
        message = (
            f"Nothing is published at this URL. This server's OAuth authorization server "
            f"metadata is at {issuer}{_ASM_PATH} (the issuer has no path); or send an API "
            f"key {policy.how}."
        )
    else:
        message = (
            f"This MCP server {_WHAT_IS_MISSING[kind]}: it does not use OAuth. It authenticates "
            f"with API keys. Configure the connector for API-key (or access-token) "
            f"authentication instead of OAuth and send the key {policy.how}."
        )
    data: dict[str, Any] = {"authentication": info}
    if refusal is not None:
        message = (
            f"The API key sent with this request was refused ({refusal.reason}): "
            f"{refusal.message} {message}"
        )
        data["credential"] = {"accepted": False, "reason": refusal.reason}
    elif accepted:
        message = (
            "The API key sent with this request is valid: send it the same way to the MCP "
            f"endpoint, without OAuth. {message}"
        )
        data["credential"] = {"accepted": True}
    # RFC 6749 / RFC 7591 error fields, which OAuth client libraries display.
    data["error_description"] = message
    if status_url:
        data["status_url"] = status_url
    return OAuthNotSupported(message, data=data)


class DiscoveryAnswers:
    """Answers the OAuth URLs no route of the app serves (see the module docstring).

    The request hook asks :meth:`kind_of` only for requests routing matched to no
    rule, so requests to the app's routes pay nothing for it.
    """

    def __init__(
        self,
        answers: frozenset[str],
        login_paths: Iterable[str],
        policy: CredentialPolicy,
        info: dict[str, Any],
        status_url: str,
    ) -> None:
        self._answers = answers
        self._login_paths = frozenset(login_paths)
        self._policy = policy
        self._info = info
        self._status_url = status_url

    @classmethod
    def from_settings(
        cls, settings: dict[str, Any], policy: CredentialPolicy, info: dict[str, Any]
    ) -> DiscoveryAnswers | None:
        """The answers the settings ask for; None when they ask for none."""
        answers: frozenset[str] = settings["MCP_OAUTH_DISCOVERY_ANSWERS"]
        login_paths = settings["MCP_OAUTH_LOGIN_PATHS"]
        if settings["MCP_OAUTH_ISSUER"]:
            # The sign-in serves the real documents and endpoints; what is left unrouted
            # (OpenID discovery, path-suffixed metadata URLs) gets a 404 pointing at them.
            answers = answers & {OPENID_CONFIGURATION, AUTHORIZATION_SERVER}
            login_paths = ()
        if not answers and not login_paths:
            return None
        return cls(answers, login_paths, policy, info, settings["MCP_STATUS_URL"])

    def kind_of(self, request: Request) -> str | None:
        """The answer this unrouted request asks for, or None to let routing's 404 stand."""
        # Only where routing found nothing (not a 405, not a redirect): the
        # application's own routes always win.
        if request.url_rule is not None or not isinstance(request.routing_exception, NotFound):
            return None
        return answer_kind(request.path, self._answers, self._login_paths)

    def respond(
        self, kind: str, refusal: AuthenticationError | None = None, accepted: bool = False
    ) -> Response:
        error = discovery_answer(
            kind, self._policy, self._info, self._status_url, refusal, accepted
        )
        return error.get_response()
