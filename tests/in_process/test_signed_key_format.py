"""Signed keys keep itsdangerous's format while the signer skips its per-call key derivation."""

from __future__ import annotations

import hashlib

from hypothesis import given
from hypothesis import strategies as st
from itsdangerous import Signer

from flask_mcp_auth import generate_api_key
from flask_mcp_auth.credentials import _SALT, SIGNATURE_LENGTH, KeySigner

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
