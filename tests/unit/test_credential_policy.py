"""CredentialPolicy.challenge: the Bearer challenge names the protected-resource
metadata (RFC 9728) when the OAuth sign-in is on, and only then."""

from __future__ import annotations

import pytest

from flask_mcp_auth.config import resolve_settings
from flask_mcp_auth.credentials import PROTECTED_RESOURCE_PATH, CredentialPolicy

ISSUER = "https://mcp.example.com"
METADATA = f"{ISSUER}/.well-known/oauth-protected-resource"


def test_the_metadata_path_is_rfc_9728s() -> None:
    assert PROTECTED_RESOURCE_PATH == "/.well-known/oauth-protected-resource"


@pytest.mark.parametrize(("error", "reason"), [(None, ""), ("invalid_token", "Bad token.")])
def test_the_challenge_names_the_resource_metadata_when_set(error: str | None, reason: str) -> None:
    challenge = CredentialPolicy(resource_metadata=METADATA).challenge(error, reason)
    assert challenge.startswith(f'Bearer realm="mcp", resource_metadata="{METADATA}"')
    assert challenge.count("resource_metadata=") == 1
    if error:
        assert f'error="{error}", error_description="{reason}"' in challenge
    assert ", APIKey " in challenge


@pytest.mark.parametrize(("error", "reason"), [(None, ""), ("invalid_token", "Bad token.")])
def test_the_challenge_has_no_resource_metadata_otherwise(error: str | None, reason: str) -> None:
    challenge = CredentialPolicy().challenge(error, reason)
    assert "resource_metadata" not in challenge
    assert challenge.startswith('Bearer realm="mcp"')


def test_without_bearer_there_is_no_bearer_challenge_and_no_metadata() -> None:
    challenge = CredentialPolicy(accept_bearer=False, resource_metadata=METADATA).challenge(
        "invalid_token", "Bad."
    )
    assert not challenge.startswith("Bearer")
    assert "resource_metadata" not in challenge


def test_the_policy_from_settings_points_at_the_issuers_metadata() -> None:
    on = resolve_settings({}, {"MCP_OAUTH_ISSUER": ISSUER, "JWT_SECRET": "s" * 32}, {})
    assert CredentialPolicy.from_settings(on).resource_metadata == METADATA
    off = resolve_settings({}, {}, {})
    assert CredentialPolicy.from_settings(off).resource_metadata == ""


def test_a_loopback_issuer_with_a_port_keeps_it_in_the_metadata_url() -> None:
    settings = resolve_settings(
        {}, {"MCP_OAUTH_ISSUER": "http://127.0.0.1:3210", "JWT_SECRET": "s" * 32}, {}
    )
    assert (
        CredentialPolicy.from_settings(settings)
        .challenge(None, "")
        .startswith(
            'Bearer realm="mcp", resource_metadata='
            '"http://127.0.0.1:3210/.well-known/oauth-protected-resource"'
        )
    )
