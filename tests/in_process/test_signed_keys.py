"""Signed keys: mcp_<keyId>_<signature>, an HMAC of the key id under JWT_SECRET.

Through an app: round trips, tampering, secrets, signed-only mode.  The format on its
own: itsdangerous's, while the signer skips its per-call key derivation.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from flask.testing import FlaskClient
from hypothesis import given
from hypothesis import strategies as st
from itsdangerous import Signer
from support.flask_app import build_app
from support.seed import SEED_KEY, SEED_QUICK_SETUP_JSON

from flask_mcp_auth import ConfigError, KeyStore, generate_api_key
from flask_mcp_auth.keys.signing import _SALT, SIGNATURE_LENGTH, KeySigner

# -- signed keys through an app ----------------------------------------------------

SECRET = "jwt-secret-for-tests"
B64URL = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def status_of(test_client: FlaskClient, key: str, via: str = "header") -> int:
    if via == "header":
        return test_client.get("/whoami", headers={"X-API-Key": key}).status_code
    if via == "bearer":
        return test_client.get("/whoami", headers={"Authorization": f"Bearer {key}"}).status_code
    return test_client.get("/whoami", query_string={"api_key": key}).status_code


def signature_of(signed: str) -> str:
    return signed[-SIGNATURE_LENGTH:]


def flip(text: str, index: int) -> str:
    replacement = "A" if text[index] != "A" else "B"
    return text[:index] + replacement + text[index + 1 :]


def test_generate_api_key_has_the_documented_form() -> None:
    signed = generate_api_key(SEED_KEY, SECRET)
    assert signed.startswith(f"mcp_{SEED_KEY}_")
    assert len(signed) == len(f"mcp_{SEED_KEY}_") + SIGNATURE_LENGTH
    assert set(signature_of(signed)) <= B64URL
    assert generate_api_key(SEED_KEY, SECRET) == signed  # deterministic
    assert generate_api_key(SEED_KEY, SECRET + "2") != signed


@pytest.mark.parametrize("via", ["header", "bearer", "query"])
def test_round_trip_through_every_credential_source(via: str) -> None:
    test_client = build_app(SEED_QUICK_SETUP_JSON, JWT_SECRET=SECRET).test_client()
    assert status_of(test_client, generate_api_key(SEED_KEY, SECRET), via) == 200


def test_the_signed_key_resolves_to_its_entry() -> None:
    test_client = build_app(SEED_QUICK_SETUP_JSON, JWT_SECRET=SECRET).test_client()
    signed = generate_api_key(SEED_KEY, SECRET)
    body = test_client.get("/whoami", headers={"X-API-Key": signed}).get_json()
    assert (body["name"], body["user_id"], body["role"]) == (
        "ChatGPT Connector",
        "connector-user",
        "user",
    )


@pytest.mark.parametrize(
    "key_id",
    ["a_b", "team-a_key-1", "_leading", "trailing_", "x", "mcp_nested_id", "a__b--c"],
)
def test_key_ids_may_contain_underscores_and_dashes(key_id: str) -> None:
    keys = {key_id: {"name": "Target"}, key_id + "_decoy": {"name": "Decoy"}}
    test_client = build_app(keys, JWT_SECRET=SECRET).test_client()
    signed = generate_api_key(key_id, SECRET)
    body = test_client.get("/whoami", headers={"X-API-Key": signed}).get_json()
    assert body["name"] == "Target"


def test_signatures_containing_underscores_and_dashes_round_trip() -> None:
    # base64url signatures contain "_" and "-" about half the time; test one of each, bounded.
    candidates = (f"key-{n}" for n in range(500))
    with_underscore = next(
        k for k in candidates if "_" in signature_of(generate_api_key(k, SECRET))
    )
    with_dash = next(
        k
        for k in (f"id_{n}" for n in range(500))
        if "-" in signature_of(generate_api_key(k, SECRET))
    )
    keys = {with_underscore: {"name": "Underscore"}, with_dash: {"name": "Dash"}}
    test_client = build_app(keys, JWT_SECRET=SECRET).test_client()
    for key_id, name in ((with_underscore, "Underscore"), (with_dash, "Dash")):
        signed = generate_api_key(key_id, SECRET)
        assert test_client.get("/whoami", headers={"X-API-Key": signed}).get_json()["name"] == name


@pytest.mark.parametrize("require_signed", [False, True])
@pytest.mark.parametrize("position", [0, 10, 21, SIGNATURE_LENGTH - 2, SIGNATURE_LENGTH - 1])
def test_a_tampered_signature_is_refused(require_signed: bool, position: int) -> None:
    test_client = build_app(
        SEED_QUICK_SETUP_JSON, JWT_SECRET=SECRET, MCP_REQUIRE_SIGNED_KEYS=require_signed
    ).test_client()
    signed = generate_api_key(SEED_KEY, SECRET)
    tampered = flip(signed, len(signed) - SIGNATURE_LENGTH + position)
    response = test_client.get("/whoami", headers={"X-API-Key": tampered})
    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_api_key"


@pytest.mark.parametrize(
    "mangle",
    [
        lambda s: s[:-1],  # truncated signature
        lambda s: s + "A",  # extra character
        lambda s: "MCP_" + s[4:],  # prefix case
        lambda s: s[4:],  # prefix missing
        lambda s: s.replace(SEED_KEY, SEED_KEY.upper()),  # key id changed
        lambda s: s.replace(SEED_KEY, "chatgpt-connector-kez"),
    ],
)
def test_malformed_signed_keys_are_refused(mangle: Any) -> None:
    test_client = build_app(SEED_QUICK_SETUP_JSON, JWT_SECRET=SECRET).test_client()
    assert status_of(test_client, mangle(generate_api_key(SEED_KEY, SECRET))) == 401


def test_a_key_signed_with_another_secret_is_refused() -> None:
    test_client = build_app(SEED_QUICK_SETUP_JSON, JWT_SECRET=SECRET).test_client()
    foreign = generate_api_key(SEED_KEY, "some-other-secret")
    for via in ("header", "bearer", "query"):
        assert status_of(test_client, foreign, via) == 401


def test_a_signature_for_another_key_id_is_refused() -> None:
    keys = {"alpha": {"name": "Alpha"}, "beta": {"name": "Beta"}}
    test_client = build_app(keys, JWT_SECRET=SECRET).test_client()
    alpha_signature = signature_of(generate_api_key("alpha", SECRET))
    assert status_of(test_client, f"mcp_beta_{alpha_signature}") == 401


def test_jwt_secret_falls_back_to_the_apps_secret_key() -> None:
    test_client = build_app(SEED_QUICK_SETUP_JSON, SECRET_KEY="flask-secret-key").test_client()
    assert status_of(test_client, generate_api_key(SEED_KEY, "flask-secret-key")) == 200
    assert status_of(test_client, generate_api_key(SEED_KEY, SECRET)) == 401


def test_jwt_secret_wins_over_secret_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JWT_SECRET", SECRET)
    test_client = build_app(SEED_QUICK_SETUP_JSON, SECRET_KEY="flask-secret-key").test_client()
    assert status_of(test_client, generate_api_key(SEED_KEY, SECRET)) == 200
    assert status_of(test_client, generate_api_key(SEED_KEY, "flask-secret-key")) == 401


def test_an_empty_jwt_secret_counts_as_unset() -> None:
    test_client = build_app(
        SEED_QUICK_SETUP_JSON, JWT_SECRET="", SECRET_KEY="fallback"
    ).test_client()
    assert status_of(test_client, generate_api_key(SEED_KEY, "fallback")) == 200


def test_without_any_secret_only_plain_keys_work() -> None:
    test_client = build_app(SEED_QUICK_SETUP_JSON).test_client()
    assert status_of(test_client, SEED_KEY) == 200
    assert status_of(test_client, generate_api_key(SEED_KEY, SECRET)) == 401


def test_plain_keys_still_work_when_signed_keys_are_optional() -> None:
    test_client = build_app(SEED_QUICK_SETUP_JSON, JWT_SECRET=SECRET).test_client()
    assert status_of(test_client, SEED_KEY) == 200


@pytest.mark.parametrize("via", ["header", "bearer", "query"])
def test_require_signed_keys_refuses_plain_keys(monkeypatch: pytest.MonkeyPatch, via: str) -> None:
    monkeypatch.setenv("MCP_REQUIRE_SIGNED_KEYS", "true")
    test_client = build_app(SEED_QUICK_SETUP_JSON, JWT_SECRET=SECRET).test_client()
    response = test_client.get("/whoami", headers={"X-API-Key": SEED_KEY})
    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_api_key"
    assert status_of(test_client, SEED_KEY, via) == 401
    assert status_of(test_client, generate_api_key(SEED_KEY, SECRET), via) == 200


def test_require_signed_keys_refuses_a_plain_key_id_that_looks_signed() -> None:
    # A store entry whose id happens to have the signed shape is still not a signature.
    lookalike = "mcp_fake_" + "A" * SIGNATURE_LENGTH
    keys = {lookalike: {"name": "Lookalike"}}
    assert status_of(build_app(keys, JWT_SECRET=SECRET).test_client(), lookalike) == 200
    strict = build_app(keys, JWT_SECRET=SECRET, MCP_REQUIRE_SIGNED_KEYS=True).test_client()
    assert status_of(strict, lookalike) == 401


@pytest.mark.parametrize("config", [{}, {"JWT_SECRET": ""}, {"SECRET_KEY": ""}])
def test_require_signed_keys_refuses_to_start_without_a_secret(config: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match=r"MCP_REQUIRE_SIGNED_KEYS.*JWT_SECRET"):
        build_app(SEED_QUICK_SETUP_JSON, MCP_REQUIRE_SIGNED_KEYS=True, **config)


def test_require_signed_keys_starts_with_secret_key_alone() -> None:
    app = build_app(SEED_QUICK_SETUP_JSON, MCP_REQUIRE_SIGNED_KEYS=True, SECRET_KEY="sk")
    assert status_of(app.test_client(), generate_api_key(SEED_KEY, "sk")) == 200


@pytest.mark.parametrize(("key_id", "secret"), [("", SECRET), ("id", ""), ("id", None)])
def test_generate_api_key_refuses_empty_input(key_id: str, secret: Any) -> None:
    with pytest.raises(ValueError):
        generate_api_key(key_id, secret)


class LookupSpy:
    """Records every value the key store is asked about."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.looked_up: list[str] = []
        original = KeyStore.find

        def find(store: KeyStore, key_id: str) -> Any:
            self.looked_up.append(key_id)
            return original(store, key_id)

        monkeypatch.setattr(KeyStore, "find", find)


def test_a_bad_signature_never_reaches_the_store_when_signed_keys_are_required(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    test_client = build_app(
        SEED_QUICK_SETUP_JSON, JWT_SECRET=SECRET, MCP_REQUIRE_SIGNED_KEYS=True
    ).test_client()
    spy = LookupSpy(monkeypatch)
    assert status_of(test_client, generate_api_key(SEED_KEY, "wrong-secret")) == 401
    assert status_of(test_client, flip(generate_api_key(SEED_KEY, SECRET), -1)) == 401
    assert spy.looked_up == []
    assert status_of(test_client, generate_api_key(SEED_KEY, SECRET)) == 200
    assert spy.looked_up == [SEED_KEY]


def test_a_bad_signature_never_looks_up_the_embedded_key_id(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # With plain keys allowed, the whole presented value may be a plain id; the key id
    # inside a badly signed value must never be tried on its own.
    test_client = build_app(SEED_QUICK_SETUP_JSON, JWT_SECRET=SECRET).test_client()
    spy = LookupSpy(monkeypatch)
    forged = generate_api_key(SEED_KEY, "wrong-secret")
    assert status_of(test_client, forged) == 401
    assert SEED_KEY not in spy.looked_up
    assert spy.looked_up == [forged]


# -- the format: itsdangerous HMAC-SHA256, one canonical spelling ------------------

key_ids = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc", "Zs")), min_size=1, max_size=40
)
secrets = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=64)


def itsdangerous_signed(key_id: str, secret: str) -> str:
    signer = Signer(secret, salt=_SALT, digest_method=hashlib.sha256, key_derivation="hmac")
    return f"mcp_{key_id}_{signer.get_signature(key_id).decode('ascii')}"


@given(key_ids, secrets)
def test_signature_is_itsdangerous_hmac_sha256(key_id: str, secret: str) -> None:
    assert generate_api_key(key_id, secret) == itsdangerous_signed(key_id, secret)


@given(key_ids, secrets)
def test_keys_signed_by_itsdangerous_verify(key_id: str, secret: str) -> None:
    assert KeySigner(secret).unsign(itsdangerous_signed(key_id, secret)) == key_id


@given(key_ids, secrets, st.integers(min_value=1, max_value=SIGNATURE_LENGTH))
def test_any_changed_signature_character_is_refused(key_id: str, secret: str, back: int) -> None:
    key = generate_api_key(key_id, secret)
    position = len(key) - back
    replacement = "A" if key[position] != "A" else "B"
    assert KeySigner(secret).unsign(key[:position] + replacement + key[position + 1 :]) is None


def test_only_the_canonical_spelling_is_accepted() -> None:
    # 43 base64 characters carry 258 bits for a 256-bit HMAC: the last character
    # has spellings that decode to the same bytes. A key has exactly one.
    key = generate_api_key("chatgpt-connector-key", "s")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(key[-1])
    sibling = alphabet[last ^ 1]  # differs only in a bit the decoder drops
    assert KeySigner("s").unsign(key[:-1] + sibling) is None
    assert KeySigner("s").unsign(key) == "chatgpt-connector-key"


def test_wrong_secret_and_odd_input_are_refused_without_error() -> None:
    key = generate_api_key("k", "right")
    assert KeySigner("wrong").unsign(key) is None
    assert KeySigner("right").unsign("mcp_\udcff_" + key[-SIGNATURE_LENGTH:]) is None
    assert KeySigner("right").unsign(key[:-1] + "\u00e9") is None
    assert KeySigner("right").unsign("k") is None
