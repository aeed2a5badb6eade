"""Reading the credential from a request, and the signed key format.

A signed key is ``mcp_<keyId>_<signature>``: the signature is an itsdangerous
HMAC-SHA256 of the key id under ``JWT_SECRET``, base64url without padding,
always 43 characters.  Because that alphabet includes ``_`` (and key ids may
too), the signature is split off by its fixed length, not by the last ``_``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from flask import Request
from itsdangerous import Signer

SIGNED_PREFIX = "mcp_"
_SALT = "flask-mcp-auth.api-key"
SIGNATURE_LENGTH = 43  # base64url of a 32-byte SHA-256 HMAC, no padding

HEADER = "header"
BEARER = "bearer"
QUERY = "query"


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


def _signer(secret: str | bytes) -> Signer:
    return Signer(secret, salt=_SALT, digest_method=hashlib.sha256, key_derivation="hmac")


class KeySigner:
    """Makes and checks signed keys under one secret."""

    def __init__(self, secret: str | bytes) -> None:
        # itsdangerous derives the HMAC key from secret and salt on every call,
        # and keying an HMAC costs more than hashing a key id (much more with
        # OpenSSL 3's one-shot hmac.digest).  Both are fixed, so build the keyed
        # HMAC state once and copy it per key.  The signature is still
        # itsdangerous's, bit for bit: HMAC-SHA256 under the derived key, base64url.
        derived_key = _signer(secret).derive_key()
        self._keyed_hmac = hmac.new(derived_key, digestmod=hashlib.sha256)

    def _signature(self, key_id: bytes) -> bytes:
        mac = self._keyed_hmac.copy()
        mac.update(key_id)
        return base64.urlsafe_b64encode(mac.digest()).rstrip(b"=")

    def sign(self, key_id: str) -> str:
        signature = self._signature(key_id.encode("utf-8")).decode("ascii")
        return f"{SIGNED_PREFIX}{key_id}_{signature}"

    def unsign(self, presented: str) -> str | None:
        """The key id of a correctly signed key; None if the form or signature is wrong.

        The comparison is constant-time, and only the canonical spelling of a
        signature is accepted.
        """
        if not looks_signed(presented):
            return None
        key_id = presented[len(SIGNED_PREFIX) : -SIGNATURE_LENGTH - 1]
        signature = presented[-SIGNATURE_LENGTH:]
        try:
            expected = self._signature(key_id.encode("utf-8"))
        except UnicodeEncodeError:
            return None
        # surrogatepass: header values may hold anything; never raise on them.
        if hmac.compare_digest(expected, signature.encode("utf-8", "surrogatepass")):
            return key_id
        return None


def looks_signed(presented: str) -> bool:
    return (
        presented.startswith(SIGNED_PREFIX)
        and len(presented) > len(SIGNED_PREFIX) + SIGNATURE_LENGTH + 1
        and presented[-SIGNATURE_LENGTH - 1] == "_"
    )


def generate_api_key(key_id: str, secret: str | bytes) -> str:
    """Return the signed form ``mcp_<keyId>_<signature>`` of ``key_id`` under ``secret``."""
    if not key_id:
        raise ValueError("key_id must be a non-empty string")
    if not secret:
        raise ValueError("a secret (JWT_SECRET) is required to sign keys")
    return KeySigner(secret).sign(key_id)


def accepted_methods(header: str, accept_bearer: bool, query_param: str) -> list[dict[str, str]]:
    """How a client may send its key, in the order ``extract_credential`` looks.

    One description shared by ``/mcp/status``, the OAuth discovery answers and
    the 401 challenge, so that they can never disagree with each other.
    """
    methods = [{"in": "header", "name": header}]
    if accept_bearer:
        methods.append({"in": "header", "name": "Authorization", "scheme": "Bearer"})
    if query_param:
        methods.append({"in": "query", "name": query_param})
    return methods


def methods_from_settings(settings: Mapping[str, Any]) -> list[dict[str, str]]:
    """:func:`accepted_methods` for resolved settings (``MCPAuth.settings``)."""
    return accepted_methods(
        settings["MCP_API_KEY_HEADER"],
        settings["MCP_ACCEPT_BEARER"],
        settings["MCP_API_KEY_QUERY_PARAM"],
    )


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
