"""Reading the credential from a request, and telling clients how to send one.

:class:`CredentialPolicy` is what one app accepts (the header, Bearer, the
query parameter, the realm).  ``init_app`` builds it once; the request context
carries it, so a 401 renders its challenge and its "send the key ..." text from
it without looking anything up.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from flask import Request

HEADER = "header"
BEARER = "bearer"
QUERY = "query"

# The defaults of MCP_API_KEY_HEADER, MCP_ACCEPT_BEARER, MCP_API_KEY_QUERY_PARAM and
# MCP_AUTH_REALM (flask_mcp_auth.config declares the settings with these values).
DEFAULT_HEADER = "X-API-Key"
DEFAULT_ACCEPT_BEARER = True
DEFAULT_QUERY_PARAM = "api_key"
DEFAULT_REALM = "mcp"

#: Where RFC 9728 protected-resource metadata lives (the sign-in serves it there).
PROTECTED_RESOURCE_PATH = "/.well-known/oauth-protected-resource"


@dataclass(frozen=True, slots=True)
class Credential:
    value: str
    #: "header", "bearer" or "query"
    source: str

    def __repr__(self) -> str:  # never show the secret, even in a traceback
        return f"Credential(source={self.source!r})"


def extract_credential(
    request: Request, header: str, accept_bearer: bool, query_param: str
) -> Credential | None:
    """The first credential found: the API-key header, a Bearer token, the query parameter."""
    value = request.headers.get(header)
    if value is not None:
        return Credential(value.strip(), HEADER)
    if accept_bearer:
        authorization = request.headers.get("Authorization")
        if authorization is not None:
            scheme, _, token = authorization.strip().partition(" ")
            if scheme.lower() == "bearer":
                return Credential(token.strip(), BEARER)
    if query_param:
        value = _query_value(request, query_param)
        if value is not None:
            return Credential(value.strip(), QUERY)
    return None


def _query_value(request: Request, name: str) -> str | None:
    try:
        return request.args.get(name)
    except UnicodeDecodeError:
        # Werkzeug decodes the raw query string as strict UTF-8, so one stray byte
        # (?x=%FF is fine, a raw 0xFF is not) would turn any request into a 500.
        # Read it leniently instead: a replaced byte never matches a key.
        query = request.query_string.decode("utf-8", "replace")
        return next((v for k, v in parse_qsl(query, keep_blank_values=True) if k == name), None)


def accepted_methods(header: str, accept_bearer: bool, query_param: str) -> list[dict[str, str]]:
    """How a client may send its key, in the order ``extract_credential`` looks."""
    methods = [{"in": "header", "name": header}]
    if accept_bearer:
        methods.append({"in": "header", "name": "Authorization", "scheme": "Bearer"})
    if query_param:
        methods.append({"in": "query", "name": query_param})
    return methods


def describe_methods(methods: list[dict[str, str]]) -> str:
    """The methods of :func:`accepted_methods` as an English phrase for messages."""
    phrases = []
    for method in methods:
        if method.get("scheme"):
            phrases.append(f"as '{method['name']}: {method['scheme']} <key>'")
        elif method["in"] == "header":
            phrases.append(f"in the {method['name']} header")
        else:
            phrases.append(f"in the {method['name']} query parameter")
    if len(phrases) <= 1:
        return "".join(phrases)
    return ", ".join(phrases[:-1]) + " or " + phrases[-1]


def _quoted(value: str) -> str:
    """An RFC 9110 quoted-string."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


@dataclass(frozen=True)
class CredentialPolicy:
    """Where one app reads a key from, and what its 401s say about it.

    One description shared by ``/mcp/status``, the OAuth discovery answers and
    the 401 challenge, so that they can never disagree with each other.
    """

    header: str = DEFAULT_HEADER
    accept_bearer: bool = DEFAULT_ACCEPT_BEARER
    query_param: str = DEFAULT_QUERY_PARAM
    realm: str = DEFAULT_REALM
    #: Absolute URL of the RFC 9728 protected-resource metadata, named in every Bearer
    #: challenge when the OAuth sign-in is on; empty: no OAuth.
    resource_metadata: str = ""
    #: accepted_methods() of the fields above.
    methods: list[dict[str, str]] = field(init=False, compare=False)
    #: describe_methods() of them: "in the X-API-Key header, as '...' or in the ...".
    how: str = field(init=False, compare=False)
    _api_key_challenge: str = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        methods = accepted_methods(self.header, self.accept_bearer, self.query_param)
        object.__setattr__(self, "methods", methods)
        object.__setattr__(self, "how", describe_methods(methods))
        api_key = [f"realm={_quoted(self.realm)}", f"header={_quoted(self.header)}"]
        if self.query_param:
            api_key.append(f"query={_quoted(self.query_param)}")
        object.__setattr__(self, "_api_key_challenge", "APIKey " + ", ".join(api_key))

    @classmethod
    def from_settings(cls, settings: dict[str, Any]) -> CredentialPolicy:
        issuer = settings["MCP_OAUTH_ISSUER"]
        return cls(
            settings["MCP_API_KEY_HEADER"],
            settings["MCP_ACCEPT_BEARER"],
            settings["MCP_API_KEY_QUERY_PARAM"],
            settings["MCP_AUTH_REALM"],
            f"{issuer}{PROTECTED_RESOURCE_PATH}" if issuer else "",
        )

    def extract(self, request: Request) -> Credential | None:
        return extract_credential(request, self.header, self.accept_bearer, self.query_param)

    def challenge(self, error: str | None, reason: str) -> str:
        """The WWW-Authenticate value of a 401: one challenge per accepted scheme.

        ``Bearer`` (RFC 6750) when ``Authorization: Bearer`` is accepted, with
        ``error`` (an RFC 6750 error code, None when no credential was sent),
        then ``APIKey`` naming the header (and query parameter) that carries a key.
        """
        if not self.accept_bearer:
            return self._api_key_challenge
        params = [f"realm={_quoted(self.realm)}"]
        if self.resource_metadata:
            params.append(f"resource_metadata={_quoted(self.resource_metadata)}")
        if error:
            params.append(f'error="{error}"')
            params.append(f'error_description="{reason}"')
        return "Bearer " + ", ".join(params) + ", " + self._api_key_challenge


__all__ = [
    "BEARER",
    "PROTECTED_RESOURCE_PATH",
    "HEADER",
    "QUERY",
    "Credential",
    "CredentialPolicy",
    "accepted_methods",
    "describe_methods",
    "extract_credential",
]
