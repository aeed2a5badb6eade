"""A large key store keeps one copy of what its keys have in common."""

from __future__ import annotations

import json

from flask_mcp_auth.keystore import parse_keys
from flask_mcp_auth.principal import ROLES


def test_equal_permission_sets_and_roles_are_shared_between_keys() -> None:
    document = {
        f"key-{i}": {"role": "user", "permissions": ["read", " write"] if i % 2 else ["*"]}
        for i in range(6)
    }
    keys = list(parse_keys(json.dumps(document)).values())
    assert keys[1].permissions == frozenset({"read", "write"})
    assert keys[1].permissions is keys[3].permissions is keys[5].permissions
    assert keys[0].permissions is keys[2].permissions
    assert all(key.role is ROLES[1] for key in keys)


def test_sharing_does_not_leak_between_loads() -> None:
    first = parse_keys(json.dumps({"a": {"permissions": ["read"]}}))["a"]
    second = parse_keys(json.dumps({"a": {"permissions": ["read", "write"]}}))["a"]
    assert first.permissions == frozenset({"read"})
    assert second.permissions == frozenset({"read", "write"})
