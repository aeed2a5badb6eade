"""The signed key format ``mcp_<keyId>_<signature>``.

The signature is an itsdangerous HMAC-SHA256 of the key id under ``JWT_SECRET``,
base64url without padding, always 43 characters.  Because that alphabet includes
``_`` (and key ids may too), the signature is split off by its fixed length, not
by the last ``_``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from itsdangerous import Signer

SIGNED_PREFIX = "mcp_"
_SALT = "flask-mcp-auth.api-key"
SIGNATURE_LENGTH = 43  # base64url of a 32-byte SHA-256 HMAC, no padding


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


__all__ = ["SIGNATURE_LENGTH", "SIGNED_PREFIX", "KeySigner", "generate_api_key", "looks_signed"]
