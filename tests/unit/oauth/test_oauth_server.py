"""narrow_scope: the requested scopes a key grants; the rest are ignored."""

from __future__ import annotations

import json

import pytest

from flask_mcp_auth import KeyStore
from flask_mcp_auth.keys.model import APIKey
from flask_mcp_auth.oauth.server import narrow_scope


def key_with(*permissions: str) -> APIKey:
    [key] = KeyStore.load(json.dumps({"k": {"permissions": list(permissions)}}))
    return key


@pytest.mark.parametrize(
    ("permissions", "requested", "narrowed"),
    [
        (("read", "write"), "read", "read"),
        (("read", "write"), "write read", "read write"),
        (("read", "write"), "read read  read", "read"),
        (("read",), "read admin", "read"),
        (("read",), "admin", ""),
        (("read",), "", ""),
        (("read",), None, ""),
        (("read",), "   ", ""),
        (("tools:*",), "tools:echo tools:admin:x files:read", "tools:admin:x tools:echo"),
        (("tools:*",), "tools:*", "tools:*"),
        (("tools:*",), "*", ""),
        (("tools:echo",), "tools:*", ""),
        (("*",), "anything tools:x", "anything tools:x"),
        (("*",), "*", "*"),
        ((), "read", ""),
        (("read",), "READ", ""),
    ],
)
def test_narrow_scope_keeps_what_the_key_grants(
    permissions: tuple[str, ...], requested: str | None, narrowed: str
) -> None:
    assert narrow_scope(key_with(*permissions), requested) == narrowed
