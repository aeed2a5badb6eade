"""Per-app state is strict: it answers for the current app only, and init_app runs once."""

from __future__ import annotations

import json

import pytest
from flask import Flask

from flask_mcp_auth import MCPAuth
from flask_mcp_auth.audit import flush as flush_audit_lines

KEYS_A = json.dumps({"key-a": {"name": "A", "role": "user", "rateLimit": {"requestsPerMinute": 5}}})
KEYS_B = json.dumps({"key-b": {"name": "B", "role": "admin"}})


def app_with(keys: str, name: str) -> Flask:
    app = Flask(name)
    app.config["MCP_API_KEYS"] = keys

    @app.get("/data")
    def data() -> dict[str, bool]:
        return {"ok": True}

    return app


@pytest.mark.parametrize(
    "attribute",
    ["settings", "store", "keys", "secret", "signer", "default_role", "realm", "rate_limits"],
)
def test_per_app_properties_outside_an_app_context_raise(attribute: str) -> None:
    auth = MCPAuth(app_with(KEYS_A, "a"))
    with pytest.raises(RuntimeError, match="application context"):
        getattr(auth, attribute)


def test_two_apps_each_see_their_own_state_and_never_the_last_one() -> None:
    auth = MCPAuth()
    app_a, app_b = app_with(KEYS_A, "a"), app_with(KEYS_B, "b")
    auth.init_app(app_a)
    auth.init_app(app_b)
    with app_a.app_context():
        assert [key.name for key in auth.store] == ["A"]
    with app_b.app_context():
        assert [key.name for key in auth.store] == ["B"]
    assert [key.name for key in auth.state_for(app_a).store] == ["A"]
    with pytest.raises(RuntimeError, match="application context"):
        auth.store  # noqa: B018 - the access itself is what is tested


def test_an_app_the_instance_was_not_initialised_on_is_refused() -> None:
    auth = MCPAuth(app_with(KEYS_A, "a"))
    stranger = Flask("stranger")
    with stranger.app_context(), pytest.raises(RuntimeError, match="not initialised on the app"):
        auth.settings  # noqa: B018
    with pytest.raises(RuntimeError, match="'stranger'"):
        auth.state_for(stranger)


def test_a_second_init_app_on_the_same_app_raises_and_installs_nothing_more() -> None:
    app = app_with(KEYS_A, "a")
    auth = MCPAuth(app)
    hooks = list(app.before_request_funcs[None])
    with pytest.raises(RuntimeError, match="already initialised"):
        auth.init_app(app)
    with pytest.raises(RuntimeError, match="already initialised"):
        MCPAuth(app)  # another instance on the same app
    assert app.before_request_funcs[None] == hooks
    response = app.test_client().get("/data", headers={"X-API-Key": "key-a"})
    assert response.status_code == 200
    assert response.headers.getlist("X-RateLimit-Remaining") == ["4"]


def test_a_request_context_never_carries_over_to_the_next_request(capsys) -> None:
    """An app context pushed around several requests (as some tests and CLIs do) still
    gives each request a fresh context: no principal, source or error leaks forward."""
    app = app_with(KEYS_A, "a")
    app.config["MCP_AUDIT_LOG"] = "stdout"
    MCPAuth(app)

    @app.get("/who")
    def who() -> dict[str, object]:
        from flask_mcp_auth import current_principal

        return {"name": current_principal.name}

    client = app.test_client()
    with app.app_context():
        assert client.get("/who", headers={"X-API-Key": "key-a"}).get_json() == {"name": "A"}
        assert client.get("/who", headers={"X-API-Key": "wrong"}).status_code == 401
        assert client.get("/who").get_json() == {"name": None}
    flush_audit_lines()
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    # Two credentialed requests, two lines; the anonymous one writes none.
    assert [(e["event"], e["reason"]) for e in events] == [
        ("auth_success", None),
        ("auth_failure", "invalid_api_key"),
    ]
