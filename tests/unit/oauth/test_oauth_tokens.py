"""What the sign-in issues: access tokens, refresh tokens, codes and client ids, each
refusing the others, tampering, expiry, another issuer and other algorithms."""

from __future__ import annotations

import base64
import json
import time
import types
import zlib
from collections.abc import Callable
from typing import Any

import pytest
from itsdangerous.encoding import base64_decode
from joserfc import jwt
from joserfc.jwk import OctKey

from flask_mcp_auth.keys.model import fingerprint
from flask_mcp_auth.oauth import tokens
from flask_mcp_auth.oauth.tokens import (
    MAX_TOKEN_LENGTH,
    Grant,
    TokenCodec,
    TokenExpired,
    TokenInvalid,
    looks_like_jwt,
)

ISSUER = "https://mcp.example.com"
SECRET = "tokens-test-secret-0123456789abcdef"
KEY_ID = "kid-SECRET-4e1f9a0c77d2"
FINGERPRINT = fingerprint(KEY_ID, SECRET)
CLIENT_ID = "mcpc_example-client"
FAMILY = "family-1"

CODEC = TokenCodec(ISSUER, SECRET)


def grant(**changes: Any) -> Grant:
    fields: dict[str, Any] = {
        "key_fingerprint": FINGERPRINT,
        "client_id": CLIENT_ID,
        "audience": ISSUER + "/mcp",
        "scope": "read tools:echo",
        "family": FAMILY,
        "token_id": "unused",
        "expires_at": 0.0,
        "redirect_uri": "http://127.0.0.1:5000/cb",
        "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
    }
    fields.update(changes)
    return Grant(**fields)


def access_token(scope: frozenset[str] | None = None, ttl: int = 3600) -> str:
    return CODEC.issue_access(grant(), scope, ttl)[0]


ISSUERS: dict[str, Callable[[], str]] = {
    "access": lambda: access_token(),
    "refresh": lambda: CODEC.issue_refresh(grant(), 600),
    "code": lambda: CODEC.issue_code(grant(), 60),
    "client": lambda: CODEC.issue_client_id({"client_name": "Example", "redirect_uris": ["x"]}),
}
VERIFIERS: dict[str, Callable[[str], object]] = {
    "access": CODEC.verify_access,
    "refresh": CODEC.verify_refresh,
    "code": CODEC.verify_code,
    "client": CODEC.verify_client_id,
}


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def time(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """The clock the codec reads (its ``time`` module), moved by the test."""
    moment = Clock()
    monkeypatch.setattr(tokens, "time", types.SimpleNamespace(time=moment.time))
    return moment


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt_parts(token: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    header, payload, signature = token.split(".")
    return (
        json.loads(base64.urlsafe_b64decode(header + "==")),
        json.loads(base64.urlsafe_b64decode(payload + "==")),
        signature,
    )


def signed_payload_text(value: str) -> str:
    """The readable payload of an itsdangerous value (decompressed when zlib'd)."""
    payload = value.rsplit(".", 1)[0]
    compressed = payload.startswith(".")
    raw = base64_decode(payload[1:] if compressed else payload)
    return (zlib.decompress(raw) if compressed else raw).decode("utf-8")


# -- round trips ---------------------------------------------------------------------------


def test_an_access_token_round_trips_its_claims(clock: Clock) -> None:
    token, lifetime = CODEC.issue_access(grant(), frozenset({"read"}), 900)
    assert lifetime == 900
    assert looks_like_jwt(token)
    claims = CODEC.verify_access(token)
    assert claims.key_fingerprint == FINGERPRINT
    assert claims.client_id == CLIENT_ID
    assert claims.audience == ISSUER + "/mcp"
    assert claims.scope == frozenset({"read"})
    assert claims.expires_at == int(clock.now) + 900
    assert claims.token_id


def test_an_access_token_without_a_narrowed_scope_carries_none() -> None:
    token = access_token(scope=None)
    assert "scope" not in jwt_parts(token)[1]
    assert CODEC.verify_access(token).scope is None


def test_an_access_token_has_the_rfc_9068_header_and_claims() -> None:
    header, claims, _ = jwt_parts(access_token(frozenset({"b", "a"})))
    assert header == {"alg": "HS256", "typ": "at+jwt"}
    assert set(claims) == {"iss", "aud", "sub", "client_id", "iat", "exp", "jti", "scope"}
    assert claims["iss"] == ISSUER
    assert claims["sub"] == FINGERPRINT
    assert claims["scope"] == "a b"
    assert claims["exp"] - claims["iat"] == 3600


def test_each_access_token_has_its_own_id() -> None:
    assert (
        CODEC.verify_access(access_token()).token_id != CODEC.verify_access(access_token()).token_id
    )


@pytest.mark.parametrize("kind", ["refresh", "code"])
def test_refresh_tokens_and_codes_round_trip_their_grant(kind: str, clock: Clock) -> None:
    original = grant()
    if kind == "refresh":
        value, back = CODEC.issue_refresh(original, 600), CODEC.verify_refresh
    else:
        value, back = CODEC.issue_code(original, 60), CODEC.verify_code
    loaded = back(value)
    assert loaded.key_fingerprint == FINGERPRINT
    assert loaded.client_id == CLIENT_ID
    assert loaded.audience == original.audience
    assert loaded.scope == original.scope
    assert loaded.family == FAMILY
    assert loaded.redirect_uri == original.redirect_uri
    assert loaded.token_id not in ("", "unused")  # a new id for every value issued
    assert loaded.expires_at == pytest.approx(clock.now + (600 if kind == "refresh" else 60))


def test_a_refresh_token_does_not_carry_the_code_challenge() -> None:
    assert CODEC.verify_refresh(CODEC.issue_refresh(grant(), 600)).code_challenge == ""
    assert CODEC.verify_code(CODEC.issue_code(grant(), 60)).code_challenge == (
        grant().code_challenge
    )


def test_two_values_for_one_grant_have_different_ids() -> None:
    first = CODEC.verify_refresh(CODEC.issue_refresh(grant(), 600))
    second = CODEC.verify_refresh(CODEC.issue_refresh(grant(), 600))
    assert first.token_id != second.token_id
    assert first.family == second.family == FAMILY


def test_a_client_id_round_trips_its_registration() -> None:
    metadata = {"client_name": "Example", "redirect_uris": ["https://a.example/cb"], "n": 1}
    client_id = CODEC.issue_client_id(metadata)
    assert client_id.startswith("mcpc_")
    assert CODEC.verify_client_id(client_id) == metadata


def test_client_secrets_are_derived_per_client_and_per_secret() -> None:
    one, two = CODEC.issue_client_id({"n": 1}), CODEC.issue_client_id({"n": 2})
    assert CODEC.client_secret(one) == TokenCodec(ISSUER, SECRET).client_secret(one)
    assert CODEC.client_secret(one) != CODEC.client_secret(two)
    assert CODEC.client_secret(one) != TokenCodec(ISSUER, SECRET + "x").client_secret(one)
    assert len(CODEC.client_secret(one)) == 64


# -- no value is accepted as another ----------------------------------------------------


@pytest.mark.parametrize(
    ("issued", "verified"),
    [(i, v) for i in ISSUERS for v in VERIFIERS if i != v],
)
def test_no_value_is_accepted_as_another_kind(issued: str, verified: str) -> None:
    value = ISSUERS[issued]()
    with pytest.raises(TokenInvalid) as excinfo:
        VERIFIERS[verified](value)
    assert not isinstance(excinfo.value, TokenExpired)


@pytest.mark.parametrize("issued", ["refresh", "code"])
def test_a_signed_value_under_the_client_prefix_is_still_not_a_client_id(issued: str) -> None:
    with pytest.raises(TokenInvalid):
        CODEC.verify_client_id("mcpc_" + ISSUERS[issued]())


@pytest.mark.parametrize("verified", ["refresh", "code"])
def test_a_client_id_without_its_prefix_is_not_a_refresh_token_or_code(verified: str) -> None:
    with pytest.raises(TokenInvalid):
        VERIFIERS[verified](ISSUERS["client"]()[5:])


def test_a_client_id_whose_registration_is_not_an_object_is_refused() -> None:
    forged = "mcpc_" + CODEC._client.dumps(["not", "a", "dict"])
    with pytest.raises(TokenInvalid):
        CODEC.verify_client_id(forged)


# -- the key id never appears ------------------------------------------------------------


def test_no_issued_value_holds_the_key_id_readable_or_encoded() -> None:
    values = {kind: make() for kind, make in ISSUERS.items()}
    header, claims, _ = jwt_parts(values["access"])
    decoded = {
        "access": json.dumps([header, claims]),
        "refresh": signed_payload_text(values["refresh"]),
        "code": signed_payload_text(values["code"]),
        "client": signed_payload_text(values["client"][5:]),
    }
    assert FINGERPRINT in decoded["access"] and FINGERPRINT in decoded["refresh"]  # decoded right
    for kind in ISSUERS:
        assert KEY_ID not in values[kind], kind
        assert KEY_ID not in decoded[kind], kind


def test_a_large_grant_is_compressed_and_still_holds_no_key_id() -> None:
    big = grant(scope=" ".join(f"tools:tool{n}" for n in range(200)))
    value = CODEC.issue_refresh(big, 600)
    assert value.startswith(".")  # itsdangerous compressed it
    text = signed_payload_text(value)
    assert "tools:tool199" in text
    assert KEY_ID not in text


# -- tampering, expiry, other issuers -------------------------------------------------------


def flip(text: str, index: int) -> str:
    char = text[index]
    return text[:index] + ("A" if char != "A" else "B") + text[index + 1 :]


@pytest.mark.parametrize("kind", list(ISSUERS))
@pytest.mark.parametrize("where", ["start", "middle", "end"])
def test_a_tampered_value_is_invalid(kind: str, where: str) -> None:
    value = ISSUERS[kind]()
    start = 5 if kind == "client" else 0
    index = {"start": start, "middle": (start + len(value)) // 2, "end": len(value) - 2}[where]
    with pytest.raises(TokenInvalid) as excinfo:
        VERIFIERS[kind](flip(value, index))
    assert not isinstance(excinfo.value, TokenExpired)


@pytest.mark.parametrize("kind", list(ISSUERS))
def test_a_truncated_or_empty_value_is_invalid(kind: str) -> None:
    value = ISSUERS[kind]()
    for bad in (value[:-1], value[: len(value) // 2], "", "mcpc_"):
        with pytest.raises(TokenInvalid):
            VERIFIERS[kind](bad)


@pytest.mark.parametrize(
    "claim", [("sub", "someone-else"), ("aud", ISSUER + "/admin"), ("exp", 9_999_999_999)]
)
def test_an_access_token_with_a_changed_claim_and_the_old_signature_is_invalid(
    claim: tuple[str, Any],
) -> None:
    header, payload, signature = access_token().split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims[claim[0]] = claim[1]
    forged = ".".join([header, b64url(json.dumps(claims).encode()), signature])
    with pytest.raises(TokenInvalid):
        CODEC.verify_access(forged)


def test_an_access_token_expires_at_its_exp(clock: Clock) -> None:
    token = access_token(ttl=60)
    clock.now += 59
    CODEC.verify_access(token)
    clock.now = int(clock.now) + 2
    with pytest.raises(TokenExpired):
        CODEC.verify_access(token)


@pytest.mark.parametrize(("kind", "ttl"), [("refresh", 600), ("code", 60)])
def test_refresh_tokens_and_codes_expire(kind: str, ttl: int, clock: Clock) -> None:
    value = (
        CODEC.issue_refresh(grant(), ttl) if kind == "refresh" else CODEC.issue_code(grant(), ttl)
    )
    clock.now += ttl - 1
    VERIFIERS[kind](value)
    clock.now += 1.001  # expiry is kept to the millisecond
    with pytest.raises(TokenExpired):
        VERIFIERS[kind](value)


def test_an_expired_value_is_still_a_token_invalid() -> None:
    assert issubclass(TokenExpired, TokenInvalid)


def test_another_issuers_access_token_is_refused_even_with_the_same_secret() -> None:
    other = TokenCodec("https://other.example.com", SECRET).issue_access(grant(), None, 3600)[0]
    with pytest.raises(TokenInvalid):
        CODEC.verify_access(other)


@pytest.mark.parametrize("kind", list(ISSUERS))
def test_values_signed_with_another_secret_are_refused(kind: str) -> None:
    other = TokenCodec(ISSUER, SECRET + "-other")
    value = {
        "access": lambda: other.issue_access(grant(), None, 3600)[0],
        "refresh": lambda: other.issue_refresh(grant(), 600),
        "code": lambda: other.issue_code(grant(), 60),
        "client": lambda: other.issue_client_id({"n": 1}),
    }[kind]()
    with pytest.raises(TokenInvalid):
        VERIFIERS[kind](value)


def valid_claims() -> dict[str, Any]:
    return jwt_parts(access_token())[1]


def test_an_unsigned_alg_none_token_is_refused() -> None:
    header = b64url(json.dumps({"alg": "none", "typ": "at+jwt"}).encode())
    payload = b64url(json.dumps(valid_claims()).encode())
    with pytest.raises(TokenInvalid):
        CODEC.verify_access(f"{header}.{payload}.")


def test_an_hs512_token_with_the_right_secret_is_refused() -> None:
    key = OctKey.import_key(SECRET.encode())
    token = jwt.encode({"alg": "HS512", "typ": "at+jwt"}, valid_claims(), key, algorithms=["HS512"])
    with pytest.raises(TokenInvalid):
        CODEC.verify_access(token)


def test_a_jwt_of_another_type_with_the_right_secret_is_refused() -> None:
    key = OctKey.import_key(SECRET.encode())
    token = jwt.encode({"alg": "HS256", "typ": "JWT"}, valid_claims(), key)
    with pytest.raises(TokenInvalid):
        CODEC.verify_access(token)
    CODEC.verify_access(jwt.encode({"alg": "HS256", "typ": "at+jwt"}, valid_claims(), key))


@pytest.mark.parametrize("missing", ["aud", "sub", "client_id", "exp", "jti"])
def test_a_signed_token_missing_a_claim_is_refused(missing: str) -> None:
    key = OctKey.import_key(SECRET.encode())
    claims = valid_claims()
    del claims[missing]
    with pytest.raises(TokenInvalid):
        CODEC.verify_access(jwt.encode({"alg": "HS256", "typ": "at+jwt"}, claims, key))


@pytest.mark.parametrize(
    ("claim", "value"), [("aud", ["a", "b"]), ("sub", 7), ("client_id", None), ("scope", ["read"])]
)
def test_a_signed_token_with_a_claim_of_the_wrong_type_is_refused(claim: str, value: Any) -> None:
    key = OctKey.import_key(SECRET.encode())
    claims = valid_claims()
    claims[claim] = value
    with pytest.raises(TokenInvalid):
        CODEC.verify_access(jwt.encode({"alg": "HS256", "typ": "at+jwt"}, claims, key))


# -- huge input ----------------------------------------------------------------------------


class ReachedTheDecoder(BaseException):
    """Not an Exception: ``verify_access`` turns every Exception into TokenInvalid."""


def refuse_to_decode(*args: object, **kwargs: object) -> object:
    raise ReachedTheDecoder()


@pytest.mark.parametrize("kind", list(ISSUERS))
def test_a_huge_value_is_refused_before_any_decoding(
    kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tokens.jwt, "decode", refuse_to_decode)
    codec = TokenCodec(ISSUER, SECRET)
    for serializer in (codec._refresh, codec._code, codec._client):
        monkeypatch.setattr(serializer, "loads", refuse_to_decode)
    verify = {
        "access": codec.verify_access,
        "refresh": codec.verify_refresh,
        "code": codec.verify_code,
        "client": codec.verify_client_id,
    }[kind]
    prefix = {"access": "eyJ", "client": "mcpc_"}.get(kind, "")
    huge = prefix + "a.b." + "x" * 10_000_000
    started = time.perf_counter()
    with pytest.raises(TokenInvalid):
        verify(huge)
    assert time.perf_counter() - started < 0.5
    with pytest.raises(TokenInvalid):
        verify(prefix + "x" * (MAX_TOKEN_LENGTH + 1 - len(prefix)))


def test_an_issued_value_fits_the_length_limit() -> None:
    for make in ISSUERS.values():
        assert len(make()) <= MAX_TOKEN_LENGTH


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("eyJa.b.c", True),
        ("eyJa.b", False),
        ("eyJa.b.c.d", False),
        ("mcp_key_sig", False),
        ("", False),
    ],
)
def test_looks_like_jwt(value: str, expected: bool) -> None:
    assert looks_like_jwt(value) is expected
