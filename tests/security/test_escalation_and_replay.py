"""Privilege escalation and replay.

A key acts with exactly the role and permissions of its entry: nothing in a
request raises them, a wildcard grants only what the documentation says, and
no role implies a permission.  Expired, removed (revoked) and re-signed keys
are refused wherever they are presented, on open routes too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from apps.security_app import create_app
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import given
from hypothesis import strategies as st

from flask_mcp_auth import ROLES, ConfigError, KeyStore, Principal, generate_api_key

SECRET = "escalation-test-secret"
READER = "reader-key-b61f0e2d9a"
ADMIN = "admin-key-07c3e5a1f8"
EXPIRED = "expired-key-4d92b7c0e1"
ADMIN_NO_PERMISSIONS = "admin-noperm-key-8e1a"
KEYS: dict[str, dict[str, Any]] = {
    READER: {"name": "Reader", "role": "user", "permissions": ["read"]},
    ADMIN: {"name": "Admin", "role": "admin", "permissions": ["*"]},
    EXPIRED: {
        "name": "Expired",
        "role": "admin",
        "permissions": ["*"],
        "expiresAt": "2024-06-30T00:00:00Z",
    },
    ADMIN_NO_PERMISSIONS: {"name": "Bare admin", "role": "admin", "permissions": []},
}


def client(keys: dict[str, Any] = KEYS, secret: str = SECRET) -> FlaskClient:
    return create_app(MCP_API_KEYS=json.dumps(keys), JWT_SECRET=secret).test_client()


def places(credential: str) -> list[dict[str, Any]]:
    """The three places a key can be presented, as test-client keyword arguments."""
    return [
        {"headers": {"X-API-Key": credential}},
        {"headers": {"Authorization": f"Bearer {credential}"}},
        {"query_string": {"api_key": credential}},
    ]


# -- escalation ---------------------------------------------------------------------

# Things a client might send hoping to be treated as someone else.
ESCALATION_HINTS: list[dict[str, Any]] = [
    {"headers": {"X-Role": "admin", "X-MCP-Role": "admin", "X-User-Id": "admin-user"}},
    {"headers": {"X-Forwarded-User": "admin", "X-Permissions": "*"}},
    {"query_string": {"role": "admin", "permissions": "*", "userId": "admin-user"}},
    {"json": {"role": "admin", "permissions": ["*"], "jsonrpc": "2.0", "id": 1}},
    {"headers": {"Cookie": "role=admin; session=admin"}},
]


@pytest.mark.parametrize("hint", ESCALATION_HINTS)
def test_request_content_never_changes_role_or_permissions(hint: dict[str, Any]) -> None:
    reader = client()
    headers = {"X-API-Key": READER, **hint.get("headers", {})}
    rest = {k: v for k, v in hint.items() if k != "headers"}
    assert reader.post("/admin", headers=headers, **rest).status_code == 403
    headers.pop("X-API-Key")
    assert reader.post("/read", headers=headers, **rest).status_code == 401
    assert reader.post("/data", headers=headers, **rest).get_json()["role"] == "guest"


def test_a_role_never_grants_a_permission() -> None:
    bare_admin = client()
    assert bare_admin.get("/admin", headers={"X-API-Key": ADMIN_NO_PERMISSIONS}).status_code == 200
    refused = bare_admin.get("/read", headers={"X-API-Key": ADMIN_NO_PERMISSIONS})
    assert refused.status_code == 403
    assert refused.get_json()["missing_permissions"] == ["read"]


def test_anonymous_callers_never_hold_a_permission() -> None:
    """Even with MCP_DEFAULT_ROLE raised to admin, anonymous callers get no permission."""
    app = create_app(MCP_API_KEYS=json.dumps(KEYS), MCP_DEFAULT_ROLE="admin")
    anonymous = app.test_client()
    assert anonymous.get("/read").status_code == 401


def documented_grant(granted: frozenset[str], wanted: str) -> bool:
    """The rule as documented: '*' grants all, 'prefix:*' what starts with 'prefix:'."""
    if "*" in granted or wanted in granted:
        return True
    return any(g.endswith(":*") and len(g) > 2 and wanted.startswith(g[:-1]) for g in granted)


permission_names = st.text(st.sampled_from("ab:*. Aé"), min_size=1, max_size=8)


@given(granted=st.frozensets(permission_names, max_size=5), wanted=permission_names)
def test_permission_wildcards_grant_exactly_what_is_documented(
    granted: frozenset[str], wanted: str
) -> None:
    """No grant through case, a prefix without ':*', a '*' inside a name, or a partial match."""
    principal = Principal(is_authenticated=True, role="user", permissions=granted)
    assert principal.has_permission(wanted) == documented_grant(granted, wanted)


@given(mine=st.sampled_from(ROLES), required=st.sampled_from(ROLES))
def test_role_order_is_the_only_role_rule(mine: str, required: str) -> None:
    principal = Principal(is_authenticated=True, role=mine)
    assert principal.has_role(required) == (ROLES.index(mine) >= ROLES.index(required))


# -- replay of expired and revoked keys -----------------------------------------------


@pytest.mark.parametrize("signed", [False, True])
@pytest.mark.parametrize("path", ["/data", "/mcp/status", "/read", "/admin"])
def test_an_expired_key_is_refused_everywhere(path: str, signed: bool) -> None:
    credential = generate_api_key(EXPIRED, SECRET) if signed else EXPIRED
    app = client()
    for place in places(credential):
        response = app.get(path, **place)
        assert response.status_code == 401
        assert response.get_json()["error"] == "api_key_expired"


@pytest.mark.parametrize("signed", [False, True])
def test_a_removed_key_is_refused_after_restart_even_with_a_valid_signature(signed: bool) -> None:
    """Revocation: a signature proves who issued a key id, not that it is still allowed."""
    credential = generate_api_key(READER, SECRET) if signed else READER
    before = client()
    assert before.get("/read", headers={"X-API-Key": credential}).status_code == 200
    after = client({k: v for k, v in KEYS.items() if k != READER})
    for place in places(credential):
        assert after.get("/read", **place).status_code == 401
    assert after.get("/read", headers={"X-API-Key": ADMIN}).status_code == 200


def test_rotating_the_signing_secret_invalidates_every_signed_key() -> None:
    old_signed = generate_api_key(ADMIN, SECRET)
    app = create_app(
        MCP_API_KEYS=json.dumps(KEYS), JWT_SECRET="rotated-secret", MCP_REQUIRE_SIGNED_KEYS="true"
    ).test_client()
    for place in places(old_signed):
        assert app.get("/admin", **place).status_code == 401
    new_signed = generate_api_key(ADMIN, "rotated-secret")
    assert app.get("/admin", headers={"X-API-Key": new_signed}).status_code == 200


# -- revocation by editing MCP_API_KEYS_FILE, whatever the edit -----------------------------

FILE_KEYS = {READER: KEYS[READER], ADMIN: KEYS[ADMIN]}


@dataclass
class KeyFileServer:
    path: Path
    app: Flask

    def edit(self, content: bytes) -> None:
        """Write the file and make the next request read it (as SIGHUP would)."""
        self.path.write_bytes(content)
        with self.app.app_context():
            self.app.extensions["mcp_auth"].state_for(self.app).keys.request_reload()

    def status(self, key_id: str) -> int:
        return self.app.test_client().get("/read", headers={"X-API-Key": key_id}).status_code


@pytest.fixture(scope="module")
def key_file_server(tmp_path_factory: pytest.TempPathFactory) -> KeyFileServer:
    path = tmp_path_factory.mktemp("keys") / "keys.json"
    path.write_text(json.dumps(FILE_KEYS))
    app = create_app(MCP_API_KEYS_FILE=str(path), MCP_AUTH_FAILURE_LIMIT="off", JWT_SECRET=SECRET)
    return KeyFileServer(path, app)


def edits_of(document: dict[str, Any]) -> st.SearchStrategy[bytes]:
    text = json.dumps(document)
    return st.one_of(
        st.just(text.encode()),
        st.integers(0, len(text) - 1).map(lambda cut: text[:cut].encode()),  # mid-write
        st.builds(
            lambda cut, junk: (text[:cut] + junk + text[cut:]).encode(),
            st.integers(0, len(text)),
            st.text(max_size=3),
        ),
    )


key_file_edits = st.one_of(
    # Valid stores: both keys, one, none, or a key changed to refuse /read.
    st.sets(st.sampled_from([READER, ADMIN])).map(
        lambda kept: json.dumps({k: FILE_KEYS[k] for k in sorted(kept)}).encode()
    ),
    st.sets(st.sampled_from([READER, ADMIN])).flatmap(
        lambda kept: edits_of({k: FILE_KEYS[k] for k in sorted(kept)})
    ),
    st.just(json.dumps({READER: {**KEYS[READER], "permissions": []}}).encode()),
    st.sampled_from([b"", b"   \n", b"{}", b"[]", b"null", b"\xff\xfe{", b'{"a":']),
    st.binary(max_size=200),
)


@given(content=key_file_edits)
def test_any_edit_of_the_key_file_revokes_exactly_what_it_removes(
    key_file_server: KeyFileServer, content: bytes
) -> None:
    """A valid edit takes effect on the next request: a removed key is refused at once.
    A broken, half-written or empty file changes nothing: no key is revoked or let in."""
    server = key_file_server
    server.edit(json.dumps(FILE_KEYS).encode())  # the last good store: both keys
    assert (server.status(READER), server.status(ADMIN)) == (200, 200)

    server.edit(content)
    try:
        new_store = KeyStore.load(content, SECRET) if content.strip() else None
    except ConfigError:
        new_store = None  # not a store: the last good one stays in force
    for key_id in (READER, ADMIN):
        if new_store is None:
            expected = 200
        else:
            key = new_store.find(key_id)
            reads = key is not None and Principal.from_key(key, "header").has_permission("read")
            expected = 401 if key is None else 200 if reads else 403
        assert server.status(key_id) == expected, (key_id, content)
