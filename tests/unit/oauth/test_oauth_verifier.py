"""From an access token to its key's principal: in the verifier and through the resolver."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from flask_mcp_auth import KeyStore
from flask_mcp_auth.credentials import BEARER, HEADER, Credential
from flask_mcp_auth.errors import (
    AccessTokenExpired,
    APIKeyExpired,
    InvalidAccessToken,
    InvalidAPIKey,
)
from flask_mcp_auth.keys.model import APIKey
from flask_mcp_auth.keys.signing import KeySigner
from flask_mcp_auth.keys.source import StoreSource
from flask_mcp_auth.oauth.tokens import Grant, TokenCodec
from flask_mcp_auth.oauth.verifier import OAUTH, AccessTokenVerifier
from flask_mcp_auth.principal import Principal
from flask_mcp_auth.resolve import Resolver

ISSUER = "https://mcp.example.com"
SECRET = "verifier-test-secret-0123456789abcdef"
KEY_ID = "kid-verifier-7c1e"
KEYS: dict[str, dict[str, Any]] = {
    KEY_ID: {
        "name": "Connector",
        "userId": "u-1",
        "role": "developer",
        "permissions": ["read", "tools:*"],
        "rateLimit": {"requestsPerMinute": 5},
    },
    "kid-other-9a2b": {"name": "Other", "permissions": ["*"]},
}
CODEC = TokenCodec(ISSUER, SECRET)
VERIFIER = AccessTokenVerifier(CODEC)
STORE = KeyStore.load(json.dumps(KEYS), SECRET)


def _the_key() -> APIKey:
    key = STORE.find(KEY_ID)
    assert key is not None
    return key


KEY = _the_key()


def token(
    audience: str = ISSUER + "/mcp",
    scope: frozenset[str] | None = None,
    ttl: int = 3600,
    codec: TokenCodec = CODEC,
    fingerprint: str | None = None,
) -> str:
    grant = Grant(
        key_fingerprint=fingerprint or KEY.fingerprint,
        client_id="mcpc_client-1",
        audience=audience,
        scope="",
        family="f",
        token_id="t",
        expires_at=0.0,
    )
    return codec.issue_access(grant, scope, ttl)[0]


# -- the verifier -----------------------------------------------------------------------


def test_a_token_principal_is_its_keys_with_source_oauth_and_the_client() -> None:
    principal = VERIFIER.principal(token(), STORE)
    assert principal.is_authenticated
    assert principal.credential_source == OAUTH == "oauth"
    assert principal.oauth_client_id == "mcpc_client-1"
    assert (principal.name, principal.user_id, principal.role) == ("Connector", "u-1", "developer")
    assert principal.permissions == frozenset({"read", "tools:*"})
    assert principal.token_audience_path == "/mcp"
    assert principal.token_expires_at == pytest.approx(time.time() + 3600, abs=5)


def test_a_token_principal_shares_the_keys_fingerprint_and_so_its_rate_limit_scope() -> None:
    principal = VERIFIER.principal(token(), STORE)
    raw = Principal.from_key(KEY, HEADER)
    assert principal.key is KEY  # the rate limiter counts principal.key.fingerprint
    assert principal.key_fingerprint == raw.key_fingerprint == KEY.fingerprint
    assert principal.key.requests_per_minute == 5


@pytest.mark.parametrize(
    ("scope", "permissions"),
    [
        (frozenset({"read"}), {"read"}),
        (frozenset({"tools:echo"}), {"tools:echo"}),
        (frozenset({"read", "admin"}), {"read"}),  # what the key no longer grants is dropped
        (frozenset({"admin"}), set()),
        (None, {"read", "tools:*"}),
    ],
)
def test_a_narrowed_token_has_only_the_scopes_the_key_still_grants(
    scope: frozenset[str] | None, permissions: set[str]
) -> None:
    principal = VERIFIER.principal(token(scope=scope), STORE)
    assert principal.permissions == frozenset(permissions)
    assert principal.has_permission("read") is ("read" in permissions)


def test_a_token_for_the_issuer_itself_is_for_every_path() -> None:
    assert VERIFIER.principal(token(audience=ISSUER), STORE).token_audience_path == "/"


def test_a_token_whose_key_left_the_store_is_invalid() -> None:
    without = KeyStore.load(json.dumps({"kid-other-9a2b": KEYS["kid-other-9a2b"]}), SECRET)
    with pytest.raises(InvalidAccessToken):
        VERIFIER.principal(token(), without)
    with pytest.raises(InvalidAccessToken):
        VERIFIER.principal(token(fingerprint="000000000000"), STORE)


def test_an_expired_token_is_access_token_expired(monkeypatch: pytest.MonkeyPatch) -> None:
    value = token(ttl=60)
    later = time.time() + 61
    monkeypatch.setattr(time, "time", lambda: later)
    with pytest.raises(AccessTokenExpired):
        VERIFIER.principal(value, STORE)


@pytest.mark.parametrize(
    "value",
    [
        token(codec=TokenCodec("https://other.example.com", SECRET)),
        token(codec=TokenCodec(ISSUER, SECRET + "x")),
        token()[:-3] + "AAA",
        "eyJhbGciOiJub25lIn0.e30.",
    ],
)
def test_a_token_not_issued_here_is_invalid(value: str) -> None:
    with pytest.raises(InvalidAccessToken):
        VERIFIER.principal(value, STORE)


@pytest.mark.parametrize(
    "audience",
    [
        "https://other.example.com/mcp",
        "https://mcp.example.comx/mcp",
        "https://mcp.example.com.evil/mcp",
        "https://evil.example.co/mcp",  # as long as the issuer: only the prefix differs
        "https://mcp.example.coX/mcp",
        "http://mcp.example.com/mcp",
        "x" * len(ISSUER) + "/mcp",
        "",
    ],
)
def test_a_token_for_another_host_is_invalid_even_from_a_service_sharing_the_secret(
    audience: str,
) -> None:
    with pytest.raises(InvalidAccessToken):
        VERIFIER.principal(token(audience=audience), STORE)


def test_the_verifier_takes_jwts_only() -> None:
    assert VERIFIER.accepts(token())
    assert not VERIFIER.accepts(KEY_ID)
    assert not VERIFIER.accepts("mcp_kid_signature")


# -- through the resolver -------------------------------------------------------------------


def resolver(tokens: bool = True, keys: dict[str, Any] | None = None) -> Resolver:
    source = StoreSource(json.dumps(keys or KEYS), secret=SECRET)
    return Resolver(source, KeySigner(SECRET), True, VERIFIER if tokens else None)


def test_the_resolver_turns_a_bearer_token_into_the_keys_principal() -> None:
    principal = resolver().resolve(Credential(token(), BEARER), "/mcp")
    assert principal.credential_source == "oauth"
    assert principal.oauth_client_id == "mcpc_client-1"
    assert principal.key_fingerprint == KEY.fingerprint


def test_the_same_token_is_verified_once_and_checked_on_every_request() -> None:
    the_resolver = resolver()
    credential = Credential(token(), BEARER)
    first = the_resolver.resolve(credential, "/mcp")
    assert the_resolver.resolve(credential, "/mcp/tools") is first
    with pytest.raises(InvalidAccessToken):
        the_resolver.resolve(credential, "/mcpx")  # the cached principal is checked too


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        ("/mcp", True),
        ("/mcp/", True),
        ("/mcp/sub/path", True),
        ("/mcpx", False),
        ("/mcp-admin", False),
        ("/", False),
        ("/admin", False),
    ],
)
def test_the_resolver_checks_the_audience_path(path: str, allowed: bool) -> None:
    credential = Credential(token(audience=ISSUER + "/mcp"), BEARER)
    if allowed:
        assert resolver().resolve(credential, path).credential_source == "oauth"
    else:
        with pytest.raises(InvalidAccessToken):
            resolver().resolve(credential, path)


def test_a_token_for_the_issuer_is_good_on_every_path() -> None:
    credential = Credential(token(audience=ISSUER), BEARER)
    for path in ("/", "/mcp", "/admin/x"):
        resolver().resolve(credential, path)


def test_a_cached_token_principal_expires_in_the_resolver(monkeypatch: pytest.MonkeyPatch) -> None:
    the_resolver = resolver()
    credential = Credential(token(ttl=60), BEARER)
    the_resolver.resolve(credential, "/mcp")
    later = time.time() + 61
    monkeypatch.setattr(time, "time", lambda: later)
    with pytest.raises(AccessTokenExpired):
        the_resolver.resolve(credential, "/mcp")


def test_a_token_whose_key_is_not_in_the_store_is_refused_by_the_resolver() -> None:
    other_keys: dict[str, Any] = {"kid-other-9a2b": KEYS["kid-other-9a2b"]}
    with pytest.raises(InvalidAccessToken):
        resolver(keys=other_keys).resolve(Credential(token(), BEARER), "/mcp")


def test_a_token_principal_of_an_expired_key_is_refused_as_the_key_expired() -> None:
    expired: dict[str, Any] = {KEY_ID: {**KEYS[KEY_ID], "expiresAt": "2000-01-01T00:00:00Z"}}
    with pytest.raises(APIKeyExpired) as excinfo:
        resolver(keys=expired).resolve(Credential(token(), BEARER), "/mcp")
    assert not isinstance(excinfo.value, AccessTokenExpired)  # the token itself is still good


def test_a_token_in_the_api_key_header_is_not_a_token() -> None:
    with pytest.raises(InvalidAPIKey) as excinfo:
        resolver().resolve(Credential(token(), HEADER), "/mcp")
    assert not isinstance(excinfo.value, InvalidAccessToken)


def test_without_the_sign_in_a_token_is_just_an_unknown_key() -> None:
    with pytest.raises(InvalidAPIKey) as excinfo:
        resolver(tokens=False).resolve(Credential(token(), BEARER), "/mcp")
    assert not isinstance(excinfo.value, InvalidAccessToken)


def test_a_raw_key_as_bearer_still_resolves_with_the_sign_in_on() -> None:
    principal = resolver().resolve(Credential(KEY_ID, BEARER), "/anywhere")
    assert principal.credential_source == BEARER
    assert principal.oauth_client_id is None
    assert principal.token_expires_at is None
    assert principal.key_fingerprint == KEY.fingerprint
