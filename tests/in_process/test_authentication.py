"""The before_request hook: who every request acts as, and when it is refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask, jsonify
from support.clocks import frozen_clock
from support.flask_app import build_app
from support.seed import SEED_KEY, SEED_QUICK_SETUP_JSON
from werkzeug.local import LocalProxy

from flask_mcp_auth import MCPAuth, current_principal

EXPIRY = datetime(2031, 3, 14, 15, 9, 26, tzinfo=UTC)
EXPIRING_KEYS = {
    "expiring-key": {"name": "Expiring", "role": "user", "expiresAt": "2031-03-14T15:09:26Z"},
    "offset-key": {"name": "Offset", "expiresAt": "2031-03-14T17:09:26+02:00"},
}

# Every route a caller can hit: a plain view, an exempt view, the status route, the MCP
# endpoint and a URL that does not exist.
ALL_ROUTES = [
    ("GET", "/whoami"),
    ("GET", "/open"),
    ("GET", "/mcp/status"),
    ("POST", "/mcp"),
    ("GET", "/no-such-route"),
]


def get(app: Flask, path: str = "/whoami", **headers: str) -> Any:
    return app.test_client().get(path, headers=headers)


@pytest.mark.parametrize(
    ("query", "headers", "source"),
    [
        ("", {"X-API-Key": SEED_KEY}, "header"),
        ("", {"Authorization": f"Bearer {SEED_KEY}"}, "bearer"),
        (f"?api_key={SEED_KEY}", {}, "query"),
    ],
)
def test_seed_quick_setup_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, query: str, headers: dict[str, str], source: str
) -> None:
    monkeypatch.setenv("MCP_API_KEYS", SEED_QUICK_SETUP_JSON)
    app = build_app(keys=None)
    response = app.test_client().get("/whoami" + query, headers=headers)
    assert response.status_code == 200
    assert response.get_json() == {
        "is_authenticated": True,
        "name": "ChatGPT Connector",
        "user_id": "connector-user",
        "role": "user",
        "permissions": ["*"],
        "expires_at": None,
        "credential_source": source,
        "key_fingerprint": next(iter(app.extensions["mcp_auth"].state_for(app).store)).fingerprint,
    }


@pytest.mark.parametrize(
    "presented",
    ["unknown-key", SEED_KEY.upper(), SEED_KEY[:-1], SEED_KEY + "-2", "ChatGPT Connector"],
)
def test_an_unknown_key_is_refused(presented: str) -> None:
    response = get(build_app(), **{"X-API-Key": presented})
    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_api_key"


@pytest.mark.parametrize("key", ["expiring-key", "offset-key"])
def test_a_key_is_accepted_until_one_microsecond_before_its_expiry(
    monkeypatch: pytest.MonkeyPatch, key: str
) -> None:
    app = build_app(EXPIRING_KEYS)
    with frozen_clock(monkeypatch, EXPIRY - timedelta(microseconds=1)):
        response = get(app, **{"X-API-Key": key})
    assert response.status_code == 200
    assert response.get_json()["expires_at"] == EXPIRY.isoformat()


@pytest.mark.parametrize("key", ["expiring-key", "offset-key"])
@pytest.mark.parametrize("after", [timedelta(0), timedelta(microseconds=1), timedelta(days=400)])
def test_a_key_is_refused_from_its_expiry_instant_on(
    monkeypatch: pytest.MonkeyPatch, key: str, after: timedelta
) -> None:
    app = build_app(EXPIRING_KEYS)
    with frozen_clock(monkeypatch, EXPIRY + after):
        response = get(app, **{"X-API-Key": key})
    assert response.status_code == 401
    assert response.get_json()["error"] == "api_key_expired"


def test_expiry_is_checked_per_request_not_at_start_up(monkeypatch: pytest.MonkeyPatch) -> None:
    with frozen_clock(monkeypatch, EXPIRY - timedelta(days=1)):
        app = build_app(EXPIRING_KEYS)
        assert get(app, **{"X-API-Key": "expiring-key"}).status_code == 200
    with frozen_clock(monkeypatch, EXPIRY):
        assert get(app, **{"X-API-Key": "expiring-key"}).status_code == 401


def test_the_seed_example_key_is_already_expired() -> None:
    keys = {SEED_KEY: {"name": "ChatGPT Connector", "expiresAt": "2025-12-31T23:59:59Z"}}
    response = get(build_app(keys), **{"X-API-Key": SEED_KEY})
    assert response.status_code == 401
    assert response.get_json()["error"] == "api_key_expired"


@pytest.mark.parametrize("default_role", ["guest", "admin", ""])
@pytest.mark.parametrize(("method", "path"), ALL_ROUTES)
@pytest.mark.parametrize(
    ("presented", "reason"),
    [("not-a-key", "invalid_api_key"), ("expired-key", "api_key_expired")],
)
def test_an_invalid_or_expired_key_gets_401_on_every_route_never_a_guest_downgrade(
    default_role: str, method: str, path: str, presented: str, reason: str
) -> None:
    keys = {"expired-key": {"name": "Old", "expiresAt": "2020-01-01T00:00:00Z"}}
    app = build_app(keys, MCP_DEFAULT_ROLE=default_role)
    response = app.test_client().open(path, method=method, headers={"X-API-Key": presented})
    assert response.status_code == 401
    assert response.get_json()["error"] == reason


@pytest.mark.parametrize("role", ["guest", "user", "developer", "admin"])
def test_anonymous_principal_has_the_default_role_and_no_permissions(role: str) -> None:
    body = get(build_app(MCP_DEFAULT_ROLE=role)).get_json()
    assert body == {
        "is_authenticated": False,
        "name": None,
        "user_id": None,
        "role": role,
        "permissions": [],
        "expires_at": None,
        "credential_source": None,
        "key_fingerprint": None,
    }


def test_default_role_is_guest() -> None:
    assert get(build_app()).get_json()["role"] == "guest"


def test_empty_default_role_refuses_anonymous_callers_on_non_exempt_routes() -> None:
    app = build_app(MCP_DEFAULT_ROLE="")
    client = app.test_client()
    for response in (client.get("/whoami"), client.post("/whoami"), client.post("/mcp")):
        assert response.status_code == 401
        assert response.get_json()["error"] == "missing_api_key"
    # A key still works.
    assert client.get("/whoami", headers={"X-API-Key": SEED_KEY}).status_code == 200


def test_empty_default_role_keeps_status_and_exempt_views_reachable() -> None:
    client = build_app(MCP_DEFAULT_ROLE="").test_client()
    status = client.get("/mcp/status")
    assert status.status_code == 200
    assert status.get_json()["authenticated"] is False
    exempt = client.get("/open")
    assert exempt.status_code == 200
    assert exempt.get_json() == {"open": True, "role": None}


def test_exempt_works_above_or_below_the_route_decorator() -> None:
    app = Flask("exempt_order")
    auth = MCPAuth(app, default_role="", api_keys=SEED_QUICK_SETUP_JSON)

    @auth.exempt
    @app.get("/above")
    def above() -> str:
        return "above"

    @app.get("/below")
    @auth.exempt
    def below() -> str:
        return "below"

    @app.get("/guarded")
    def guarded() -> str:
        return "guarded"

    client = app.test_client()
    assert client.get("/above").status_code == 200
    assert client.get("/below").status_code == 200
    assert client.get("/guarded").status_code == 401


def test_current_principal_carries_every_field_of_the_key() -> None:
    keys = {
        "full-key": {
            "name": "Full",
            "userId": "user-42",
            "role": "developer",
            "permissions": ["read", "write", "tools:*"],
            "rateLimit": {"requestsPerMinute": 10},
            "expiresAt": "2099-01-01T02:00:00+02:00",
        }
    }
    app = build_app(keys)
    seen: dict[str, Any] = {}

    @app.get("/inspect")
    def inspect() -> Any:
        seen.update(
            is_authenticated=current_principal.is_authenticated,
            name=current_principal.name,
            user_id=current_principal.user_id,
            role=current_principal.role,
            permissions=current_principal.permissions,
            expires_at=current_principal.expires_at,
            source=current_principal.credential_source,
            fingerprint=current_principal.key_fingerprint,
        )
        return jsonify(ok=True)

    assert get(app, "/inspect", **{"X-API-Key": "full-key"}).status_code == 200
    [key] = list(app.extensions["mcp_auth"].state_for(app).store)
    assert seen == {
        "is_authenticated": True,
        "name": "Full",
        "user_id": "user-42",
        "role": "developer",
        "permissions": frozenset({"read", "write", "tools:*"}),
        "expires_at": datetime(2099, 1, 1, 0, 0, tzinfo=UTC),
        "source": "header",
        "fingerprint": key.fingerprint,
    }


def test_current_principal_outside_a_request_is_anonymous_without_a_role() -> None:
    assert isinstance(current_principal, LocalProxy)
    assert current_principal.is_authenticated is False
    assert current_principal.role is None
    assert current_principal.permissions == frozenset()


def test_mcp_auth_with_the_app_in_the_constructor_registers_itself() -> None:
    app = Flask("direct")
    app.config["MCP_API_KEYS"] = SEED_QUICK_SETUP_JSON
    auth = MCPAuth(app)
    assert app.extensions["mcp_auth"] is auth
    assert get(app, "/mcp/status", **{"X-API-Key": SEED_KEY}).get_json()["authenticated"] is True


def test_init_app_factory_pattern() -> None:
    auth = MCPAuth()

    def create_app(keys: dict[str, Any], **config: Any) -> Flask:
        app = Flask("factory")
        app.config["MCP_API_KEYS"] = keys
        app.config.update(config)
        auth.init_app(app)

        @app.get("/who")
        def who() -> Any:
            return jsonify(name=current_principal.name, role=current_principal.role)

        return app

    first = create_app({"first-key": {"name": "First"}})
    second = create_app(
        {"second-key": {"name": "Second"}}, MCP_DEFAULT_ROLE="developer", MCP_AUTH_REALM="two"
    )
    assert first.extensions["mcp_auth"] is auth
    assert second.extensions["mcp_auth"] is auth

    # Each app keeps its own configuration, whichever was initialised last.
    assert get(first, "/who", **{"X-API-Key": "first-key"}).get_json()["name"] == "First"
    assert get(first, "/who", **{"X-API-Key": "second-key"}).status_code == 401
    assert get(first, "/who").get_json()["role"] == "guest"
    assert get(second, "/who", **{"X-API-Key": "second-key"}).get_json()["name"] == "Second"
    assert get(second, "/who", **{"X-API-Key": "first-key"}).status_code == 401
    assert get(second, "/who").get_json()["role"] == "developer"
    challenge = get(first, "/who", **{"X-API-Key": "nope"}).headers["WWW-Authenticate"]
    assert challenge.startswith('Bearer realm="mcp"')
    challenge = get(second, "/who", **{"X-API-Key": "nope"}).headers["WWW-Authenticate"]
    assert challenge.startswith('Bearer realm="two"')
    with first.app_context():
        assert [k.name for k in auth.store] == ["First"]
    with second.app_context():
        assert [k.name for k in auth.store] == ["Second"]


def test_an_app_without_the_extension_is_untouched() -> None:
    MCPAuth(Flask("other"), api_keys=SEED_QUICK_SETUP_JSON, default_role="")
    plain = Flask("plain")

    @plain.get("/")
    def index() -> str:
        return "hi"

    assert plain.test_client().get("/", headers={"X-API-Key": "nonsense"}).status_code == 200
