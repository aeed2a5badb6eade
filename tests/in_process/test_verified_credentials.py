"""Remembering verified credentials never changes who a request is, or whether it gets in."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from flask import Flask

from flask_mcp_auth import APIKey, KeyStore, MCPAuth, current_principal, generate_api_key
from flask_mcp_auth.credentials import HEADER, QUERY, Credential
from flask_mcp_auth.keys.verified import VerifiedCredentials
from flask_mcp_auth.principal import Principal

SECRET = "verified-secret"
KEYS = {
    "key-one": {"name": "One", "role": "user", "permissions": ["read"]},
    "key-two": {"name": "Two", "role": "admin", "permissions": ["*"]},
}


def make_app(**config: Any) -> Flask:
    app = Flask(__name__)
    app.config.update(MCP_API_KEYS=json.dumps(KEYS), JWT_SECRET=SECRET, MCP_DEFAULT_ROLE="")
    app.config.update(config)
    MCPAuth(app)

    @app.get("/whoami")
    def whoami() -> dict[str, Any]:
        return {"name": current_principal.name, "source": current_principal.credential_source}

    return app


def test_each_key_stays_its_own_principal_across_repeated_requests() -> None:
    client = make_app().test_client()
    one, two = generate_api_key("key-one", SECRET), generate_api_key("key-two", SECRET)
    for _ in range(3):
        assert client.get("/whoami", headers={"X-API-Key": one}).json["name"] == "One"
        assert client.get("/whoami", headers={"X-API-Key": two}).json["name"] == "Two"
        assert client.get("/whoami", headers={"X-API-Key": "key-one"}).json["name"] == "One"


def test_the_source_is_the_one_of_this_request() -> None:
    client = make_app().test_client()
    key = generate_api_key("key-one", SECRET)
    assert client.get("/whoami", headers={"X-API-Key": key}).json["source"] == "header"
    assert client.get(f"/whoami?api_key={key}").json["source"] == "query"
    bearer = {"Authorization": f"Bearer {key}"}
    assert client.get("/whoami", headers=bearer).json["source"] == "bearer"
    assert client.get("/whoami", headers={"X-API-Key": key}).json["source"] == "header"


def test_a_tampered_key_is_refused_after_the_genuine_one_was_accepted() -> None:
    client = make_app().test_client()
    key = generate_api_key("key-one", SECRET)
    assert client.get("/whoami", headers={"X-API-Key": key}).status_code == 200
    tampered = key[:-1] + ("A" if key[-1] != "A" else "B")
    response = client.get("/whoami", headers={"X-API-Key": tampered})
    assert response.status_code == 401
    assert response.json["error"] == "invalid_api_key"


def test_expiry_is_checked_on_every_request(monkeypatch: Any) -> None:
    client = make_app().test_client()
    key = generate_api_key("key-one", SECRET)
    assert client.get("/whoami", headers={"X-API-Key": key}).status_code == 200
    # The key's expiry time passes between two requests.
    monkeypatch.setattr(APIKey, "is_expired", lambda self, now=None: True)
    response = client.get("/whoami", headers={"X-API-Key": key})
    assert response.status_code == 401
    assert response.json["error"] == "api_key_expired"


def test_a_reloaded_key_store_takes_effect_immediately(tmp_path: Path) -> None:
    key_file = tmp_path / "keys.json"
    key_file.write_text(json.dumps(KEYS))
    app = make_app(
        MCP_API_KEYS=None, MCP_API_KEYS_FILE=str(key_file), MCP_API_KEYS_FILE_CHECK_INTERVAL=0
    )
    client = app.test_client()
    assert client.get("/whoami", headers={"X-API-Key": "key-one"}).status_code == 200
    replacement = {"key-three": {"name": "Three", "role": "user"}}
    key_file.write_text(json.dumps(replacement))  # key-one revoked, key-three added
    assert client.get("/whoami", headers={"X-API-Key": "key-one"}).status_code == 401
    assert client.get("/whoami", headers={"X-API-Key": "key-three"}).json["name"] == "Three"


def test_signed_only_mode_still_refuses_plain_ids_of_known_keys() -> None:
    client = make_app(MCP_REQUIRE_SIGNED_KEYS=True).test_client()
    signed = {"X-API-Key": generate_api_key("key-one", SECRET)}
    assert client.get("/whoami", headers=signed).status_code == 200
    assert client.get("/whoami", headers={"X-API-Key": "key-one"}).status_code == 401


def _principal(name: str) -> Principal:
    return Principal(is_authenticated=True, role="user", name=name)


def test_table_is_bounded_and_matches_whole_values_per_source() -> None:
    verified = VerifiedCredentials(KeyStore(), limit=2)
    verified.add(Credential("alpha", HEADER), _principal("a"))
    verified.add(Credential("beta", HEADER), _principal("b"))
    assert verified.get(Credential("alpha", HEADER)).name == "a"
    assert verified.get(Credential("alpha", QUERY)) is None
    assert verified.get(Credential("alph", HEADER)) is None
    assert verified.get(Credential("alpha\udcff", HEADER)) is None
    verified.add(Credential("gamma", HEADER), _principal("c"))
    assert len(verified) <= 2
    assert verified.get(Credential("gamma", HEADER)).name == "c"
