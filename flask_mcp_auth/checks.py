"""Security review of a validated configuration (``flask mcp-auth check``, ``list``).

Validation itself is start-up's job (``MCPAuth.init_app``); this module looks
at a configuration that passed it and reports what the Security Best Practices
of the setup guide advise against.  Findings name a key by its label (name and
fingerprint), never by its id, which in plain-key mode is the secret.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ._time import utc_iso
from .keys.model import APIKey, secret_bytes
from .state import AppState

#: A plain key id shorter than this is reported as short.
MIN_KEY_ID_LENGTH = 24
#: Estimated strength (length x log2 of the alphabet it draws from) below which
#: a plain key id is reported as guessable; 128 bits, like a random UUID or
#: ``secrets.token_urlsafe(16)``.
MIN_KEY_ID_BITS = 128

PREDICTABLE_KEY_ID = "predictable-key-id"
WILDCARD_PERMISSION = "wildcard-permission"
NO_RATE_LIMIT = "no-rate-limit"
NO_EXPIRY = "no-expiry"
EXPIRED = "expired"
NO_JWT_SECRET = "no-jwt-secret"
QUERY_PARAM_ENABLED = "query-param-enabled"
NO_KEYS = "no-keys"
ANONYMOUS_ROLE = "anonymous-role"
ADMIN_WITHOUT_PERMISSIONS = "admin-without-permissions"
ADMIN_PERMISSION_ALONE = "admin-permission-alone"
GUEST_WITH_WILDCARD = "guest-with-wildcard"
SHORT_OAUTH_SECRET = "short-oauth-secret"

#: With the OAuth sign-in on, a signing secret shorter than this (bytes) is reported: it
#: is the HS256 key of every access token, which anyone holding one can attack offline.
MIN_OAUTH_SECRET_BYTES = 32

_SEPARATORS = re.compile(r"[-_.:]+")


@dataclass(frozen=True)
class Finding:
    """One warning: a stable code, a message, and the key it is about (if any)."""

    code: str
    message: str
    key: APIKey | None = None

    def to_dict(self) -> dict[str, Any]:
        key = self.key.reference() if self.key is not None else None
        return {"code": self.code, "key": key, "message": self.message}


def weak_key_id_reason(key_id: str) -> str | None:
    """Why a plain key id is easy to guess, or None if it looks random enough."""
    if len(key_id) < MIN_KEY_ID_LENGTH:
        return f"is short (under {MIN_KEY_ID_LENGTH} characters)"
    segments = [s for s in _SEPARATORS.split(key_id) if s]
    if all(s.isalpha() or (s.isdigit() and len(s) <= 4) for s in segments):
        return "is made of words (and small numbers)"
    if _estimated_bits(key_id) < MIN_KEY_ID_BITS:
        return "draws on too few kinds of character to be hard to guess"
    return None


def _estimated_bits(key_id: str) -> float:
    alphabet = 0
    alphabet += 26 if any(c.islower() for c in key_id) else 0
    alphabet += 26 if any(c.isupper() for c in key_id) else 0
    alphabet += 10 if any(c.isdigit() for c in key_id) else 0
    alphabet += 32 if any(not c.isalnum() for c in key_id) else 0
    return len(key_id) * math.log2(max(alphabet, 2))


def review_keys(state: AppState, now: datetime) -> list[Finding]:
    """Per-key findings, in key-store order."""
    plain_keys_accepted = not state.settings["MCP_REQUIRE_SIGNED_KEYS"]
    has_default_limit = bool(state.settings["MCP_DEFAULT_RATE_LIMIT"])
    findings: list[Finding] = []
    for key in state.store:
        label = key.label
        if plain_keys_accepted:
            reason = weak_key_id_reason(key.key_id)
            if reason:
                findings.append(
                    Finding(
                        PREDICTABLE_KEY_ID,
                        f"{label}: the key id {reason}. Plain keys are accepted, so the id "
                        "is the secret and whoever guesses it is authenticated. Use a long "
                        "random id (python -c 'import secrets; print(secrets.token_urlsafe(32))')"
                        " or hand out signed keys and set MCP_REQUIRE_SIGNED_KEYS=true.",
                        key,
                    )
                )
        findings.extend(_grant_mismatches(key))
        if "*" in key.permissions:
            findings.append(
                Finding(
                    WILDCARD_PERMISSION,
                    f'{label}: permissions ["*"] grant every permission; list only what the '
                    'client needs, e.g. ["read"].',
                    key,
                )
            )
        if (
            key.requests_per_minute is None
            and key.requests_per_hour is None
            and not has_default_limit
        ):
            findings.append(
                Finding(
                    NO_RATE_LIMIT,
                    f"{label}: no rate limit; set rateLimit.requestsPerMinute and/or "
                    "rateLimit.requestsPerHour (or MCP_DEFAULT_RATE_LIMIT for every key "
                    "without one).",
                    key,
                )
            )
        if key.expires_at is None:
            findings.append(
                Finding(
                    NO_EXPIRY,
                    f"{label}: never expires; set expiresAt so that the key is rotated.",
                    key,
                )
            )
        elif key.is_expired(now):
            findings.append(
                Finding(
                    EXPIRED,
                    f"{label}: expired at {utc_iso(key.expires_at)} and is refused; remove it "
                    "or set a later expiresAt.",
                    key,
                )
            )
    return findings


def _grant_mismatches(key: APIKey) -> list[Finding]:
    """Roles and permissions that grant less (or other) than their words suggest.

    Roles and permissions are independent: a role never grants a permission, and a
    permission named like a role grants only itself.
    """
    label = key.label
    found: list[Finding] = []
    if key.role == "admin" and not key.permissions:
        found.append(
            Finding(
                ADMIN_WITHOUT_PERMISSIONS,
                f"{label}: role 'admin' with no permissions passes require_role checks but "
                "every require_permission check refuses it (403), 'read' included; roles "
                'grant no permissions. For full access add permissions ["*"]; otherwise '
                'list what it needs, e.g. ["read", "write"].',
                key,
            )
        )
    if key.permissions == frozenset({"admin"}):
        found.append(
            Finding(
                ADMIN_PERMISSION_ALONE,
                f'{label}: permissions ["admin"] grant only the permission named "admin", '
                "not 'read' or 'write', and not the admin role. Add the permissions it "
                'needs (e.g. ["read", "write", "admin"]) and set "role": "admin" if it '
                "must pass require_role('admin').",
                key,
            )
        )
    if key.role == "guest" and "*" in key.permissions:
        found.append(
            Finding(
                GUEST_WITH_WILDCARD,
                f"{label}: role 'guest' with permissions [\"*\"] passes every "
                "require_permission check but no require_role check above guest. If the "
                'key is meant to be powerful, give it a role (e.g. "role": "user"); '
                "otherwise list only the permissions it needs.",
                key,
            )
        )
    return found


def review_settings(state: AppState) -> list[Finding]:
    """Findings about settings that apply to every key."""
    findings: list[Finding] = []
    if len(state.store) == 0:
        findings.append(
            Finding(NO_KEYS, "MCP_API_KEYS is unset or empty: no API key can authenticate.")
        )
    if not state.settings["JWT_SECRET"]:
        if state.secret:
            detail = (
                "keys are signed with the app's SECRET_KEY, so rotating SECRET_KEY "
                "invalidates every signed key"
            )
        else:
            detail = "signed keys can neither be made nor verified; only plain key ids work"
        findings.append(Finding(NO_JWT_SECRET, f"JWT_SECRET is not set: {detail}. Set JWT_SECRET."))
    if state.default_role not in (None, "guest"):
        findings.append(
            Finding(
                ANONYMOUS_ROLE,
                f"MCP_DEFAULT_ROLE is {state.default_role!r}: callers without a key pass "
                f"require_role checks up to {state.default_role!r}. Use 'guest' (or empty to "
                "refuse anonymous callers) unless that is intended.",
            )
        )
    secret = state.secret
    if state.oauth is not None and secret and len(secret_bytes(secret)) < MIN_OAUTH_SECRET_BYTES:
        findings.append(
            Finding(
                SHORT_OAUTH_SECRET,
                f"The OAuth sign-in is on and its signing secret is shorter than "
                f"{MIN_OAUTH_SECRET_BYTES} bytes: it is the HS256 key of every access token, and "
                "a short one can be guessed offline from any token. Set JWT_SECRET to 32 or more "
                "random bytes (e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))').",
            )
        )
    query_param = state.settings["MCP_API_KEY_QUERY_PARAM"]
    if query_param:
        findings.append(
            Finding(
                QUERY_PARAM_ENABLED,
                f"API keys are accepted in the '{query_param}' query parameter, where they end "
                "up in access logs, proxy logs and browser history. Unless a client can only "
                "send a URL, turn it off with MCP_API_KEY_QUERY_PARAM= (empty).",
            )
        )
    return findings


def review(state: AppState, now: datetime) -> list[Finding]:
    """Every finding for the configuration of an initialised app."""
    return review_settings(state) + review_keys(state, now)


def expiry_state(key: APIKey, now: datetime) -> str:
    """'valid (no expiry)', 'expires in N days' (hours under a day) or 'expired'."""
    if key.expires_at is None:
        return "valid (no expiry)"
    remaining = key.expires_at - now
    if remaining.total_seconds() <= 0:
        return "expired"
    if remaining.days >= 1:
        return f"expires in {remaining.days} day{'s' if remaining.days != 1 else ''}"
    hours = int(remaining.total_seconds() // 3600)
    if hours == 0:
        return "expires in under 1 hour"
    return f"expires in {hours} hour{'s' if hours != 1 else ''}"
