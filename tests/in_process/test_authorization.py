"""Roles, permissions, @require_permission / @require_role, blueprint-wide protection."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask import Blueprint, Flask
from werkzeug.exceptions import Forbidden

from flask_mcp_auth import (
    ROLES,
    InsufficientPermissions,
    MCPAuth,
    MissingAPIKey,
    current_principal,
    require_permission,
    require_role,
)


def key(role: str, permissions: list[str]) -> dict[str, Any]:
    return {"name": f"{role} {permissions}", "role": role, "permissions": permissions}


KEYS = {
    # one key per role, all permissions granted, to test roles on their own
    **{f"role-{role}-key-0123456789": key(role, ["*"]) for role in ROLES},
    # the seed's three permission examples, with a plain user role
    "perm-read-key-0123456789": key("user", ["read"]),
    "perm-readwrite-key-0123456789": key("user", ["read", "write"]),
    "perm-admin-key-0123456789": key("user", ["admin"]),
    # roles never grant permissions
    "admin-no-perms-key-0123456789": key("admin", []),
    "tools-wildcard-key-0123456789": key("user", ["tools:*"]),
}


def role_key(role: str) -> dict[str, str]:
    return {"X-API-Key": f"role-{role}-key-0123456789"}


def as_key(name: str) -> dict[str, str]:
    return {"X-API-Key": name}


@pytest.fixture
def app() -> Flask:
    app = Flask(__name__)
    app.config["MCP_API_KEYS"] = json.dumps(KEYS)
    auth = MCPAuth(app)

    for role in ROLES:
        app.add_url_rule(f"/role/{role}", f"role_{role}", require_role(role)(lambda: "ok"))

    @app.get("/read")
    @require_permission("read")
    def read_view() -> str:
        return "read"

    @app.post("/write")
    @require_permission("read", "write")
    def write_view() -> str:
        return "write"

    @app.get("/admin")
    @auth.require_permission("admin")
    def admin_view() -> str:
        return "admin"

    @app.get("/tools/echo")
    @require_permission("tools:echo")
    def tool_echo() -> str:
        return "echo"

    @app.get("/async")
    @require_permission("read")
    async def async_view() -> str:
        return "async"

    return app


@pytest.mark.parametrize("caller", ROLES)
@pytest.mark.parametrize("required", ROLES)
def test_every_role_against_every_level(app: Flask, caller: str, required: str) -> None:
    response = app.test_client().get(f"/role/{required}", headers=role_key(caller))
    admitted = ROLES.index(caller) >= ROLES.index(required)
    assert response.status_code == (200 if admitted else 403)


@pytest.mark.parametrize(
    ("key_id", "read", "write", "admin"),
    [
        ("perm-read-key-0123456789", 200, 403, 403),
        ("perm-readwrite-key-0123456789", 200, 200, 403),
        ("perm-admin-key-0123456789", 403, 403, 200),
        ("role-guest-key-0123456789", 200, 200, 200),  # ["*"] grants everything
    ],
)
def test_seed_permission_sets(app: Flask, key_id: str, read: int, write: int, admin: int) -> None:
    client = app.test_client()
    assert client.get("/read", headers=as_key(key_id)).status_code == read
    assert client.post("/write", headers=as_key(key_id)).status_code == write
    assert client.get("/admin", headers=as_key(key_id)).status_code == admin


def test_admin_role_without_permissions_is_refused_a_permission(app: Flask) -> None:
    client = app.test_client()
    response = client.get("/read", headers=as_key("admin-no-perms-key-0123456789"))
    assert response.status_code == 403
    # ... while its role still passes role checks: the two are independent
    ok = client.get("/role/admin", headers=as_key("admin-no-perms-key-0123456789"))
    assert ok.status_code == 200


def test_permission_never_grants_role(app: Flask) -> None:
    response = app.test_client().get("/role/admin", headers=as_key("perm-admin-key-0123456789"))
    assert response.status_code == 403
    assert response.get_json()["required_role"] == "admin"


def test_prefix_wildcard(app: Flask) -> None:
    client = app.test_client()
    wildcard = as_key("tools-wildcard-key-0123456789")
    assert client.get("/tools/echo", headers=wildcard).status_code == 200
    assert client.get("/read", headers=wildcard).status_code == 403


def test_anonymous_gets_401_with_challenge(app: Flask) -> None:
    response = app.test_client().get("/read")
    assert response.status_code == 401
    assert response.get_json()["error"] == "missing_api_key"
    assert response.headers["WWW-Authenticate"].startswith("Bearer ")


def test_anonymous_guest_passes_guest_role(app: Flask) -> None:
    assert app.test_client().get("/role/guest").status_code == 200
    assert app.test_client().get("/role/user").status_code == 401


def test_forbidden_body_names_what_is_missing(app: Flask) -> None:
    response = app.test_client().post("/write", headers=as_key("perm-read-key-0123456789"))
    assert response.status_code == 403
    body = response.get_json()
    assert body["error"] == "insufficient_permissions"
    assert body["missing_permissions"] == ["write"]
    assert "'write'" in body["message"]
    assert "perm-read-key" not in response.get_data(as_text=True)
    # No OAuth step-up challenge: there are no tokens to get more scope with.
    assert "WWW-Authenticate" not in response.headers


def test_forbidden_is_a_werkzeug_forbidden(app: Flask) -> None:
    assert issubclass(InsufficientPermissions, Forbidden)

    @app.errorhandler(403)
    def custom(error: Forbidden) -> tuple[str, int]:
        return "custom forbidden", 403

    response = app.test_client().get("/admin", headers=as_key("perm-read-key-0123456789"))
    assert response.get_data(as_text=True) == "custom forbidden"


def test_forbidden_jsonrpc_shape(app: Flask) -> None:
    response = app.test_client().post(
        "/write",
        headers=as_key("perm-read-key-0123456789"),
        json={"jsonrpc": "2.0", "id": "abc", "method": "tools/call"},
    )
    assert response.status_code == 403
    body = response.get_json()
    assert body["jsonrpc"] == "2.0" and body["id"] == "abc"
    assert body["error"]["data"]["reason"] == "insufficient_permissions"
    assert "'write'" in body["error"]["message"]


def test_async_view(app: Flask) -> None:
    pytest.importorskip("asgiref")  # Flask's async views need flask[async]
    client = app.test_client()
    assert client.get("/async", headers=as_key("perm-read-key-0123456789")).data == b"async"
    assert client.get("/async", headers=as_key("perm-admin-key-0123456789")).status_code == 403


def test_unknown_role_fails_at_decoration_time() -> None:
    with pytest.raises(ValueError, match="unknown role 'superuser'"):
        require_role("superuser")


def test_bad_permission_names_fail_at_decoration_time() -> None:
    with pytest.raises(ValueError):
        require_permission()
    with pytest.raises(ValueError):
        require_permission("")


# -- decorated plain functions inside a dispatcher --------------------------------

TOOLS: dict[str, Any] = {}


@require_permission("tools:echo")
def echo_tool(text: str) -> str:
    return text


@require_role("admin")
def admin_tool() -> str:
    return "secret stuff"


@require_permission("read")
async def async_tool() -> str:
    return "async tool"


def make_dispatcher_app() -> Flask:
    app = Flask(__name__)
    app.config["MCP_API_KEYS"] = json.dumps(KEYS)
    MCPAuth(app)
    tools = {"echo": lambda: echo_tool("hi"), "admin": admin_tool}

    @app.post("/rpc")
    def rpc() -> dict[str, Any]:
        from flask import request

        name = request.get_json()["params"]["name"]
        visible = [
            n
            for n, needs in (("echo", "tools:echo"), ("admin", None))
            if (needs and current_principal.has_permission(needs))
            or (not needs and current_principal.has_role("admin"))
        ]
        return {"result": tools[name](), "visible": visible}

    return app


def rpc_call(client: Any, name: str, key_id: str) -> Any:
    return client.post(
        "/rpc",
        headers=as_key(key_id),
        json={"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": name}},
    )


def test_decorated_function_inside_dispatcher() -> None:
    client = make_dispatcher_app().test_client()
    ok = rpc_call(client, "echo", "tools-wildcard-key-0123456789")
    assert ok.status_code == 200
    assert ok.get_json() == {"result": "hi", "visible": ["echo"]}

    refused = rpc_call(client, "admin", "tools-wildcard-key-0123456789")
    assert refused.status_code == 403
    assert refused.get_json()["error"]["data"]["required_role"] == "admin"

    admin = rpc_call(client, "admin", "role-admin-key-0123456789")
    assert admin.get_json() == {"result": "secret stuff", "visible": ["echo", "admin"]}


def test_async_function_stays_async_and_is_guarded() -> None:
    import asyncio
    import inspect

    assert inspect.iscoroutinefunction(async_tool)
    app = make_dispatcher_app()
    with app.test_request_context(headers=as_key("perm-read-key-0123456789")):
        app.preprocess_request()
        assert asyncio.run(async_tool()) == "async tool"
    with app.test_request_context(headers=as_key("perm-admin-key-0123456789")):
        app.preprocess_request()
        with pytest.raises(InsufficientPermissions):
            asyncio.run(async_tool())
    with app.test_request_context():
        app.preprocess_request()
        with pytest.raises(MissingAPIKey):
            asyncio.run(async_tool())


def test_guarded_function_outside_request_raises() -> None:
    with pytest.raises(RuntimeError, match="outside a request"):
        echo_tool("x")


# -- protection without decorating every view -------------------------------------


def make_protected_app(**protect: Any) -> Flask:
    app = Flask(__name__)
    app.config["MCP_API_KEYS"] = json.dumps(KEYS)
    auth = MCPAuth(app)
    admin_bp = Blueprint("admin", __name__, url_prefix="/admin")
    admin_bp.add_url_rule("/stats", "stats", lambda: "stats")
    admin_bp.add_url_rule("/health", "health", lambda: "healthy")
    admin_bp.add_url_rule("/ping", "ping", auth.exempt(lambda: "pong"))
    app.register_blueprint(admin_bp)
    app.add_url_rule("/public", "public", lambda: "public")
    auth.protect(admin_bp, **protect)
    return app


def test_blueprint_wide_role_with_named_exemption() -> None:
    client = make_protected_app(role="admin", exempt=["admin.health"]).test_client()
    assert client.get("/admin/stats").status_code == 401
    assert client.get("/admin/stats", headers=role_key("user")).status_code == 403
    assert client.get("/admin/stats", headers=role_key("admin")).status_code == 200
    assert client.get("/admin/health").status_code == 200  # named exemption
    assert client.get("/admin/ping").status_code == 200  # @auth.exempt
    assert client.get("/public").status_code == 200  # outside the blueprint


def test_blueprint_wide_permission() -> None:
    client = make_protected_app(permissions=["admin"]).test_client()
    assert (
        client.get("/admin/stats", headers=as_key("perm-admin-key-0123456789")).status_code == 200
    )
    assert client.get("/admin/stats", headers=as_key("perm-read-key-0123456789")).status_code == 403


def test_app_wide_protection_keeps_status_open() -> None:
    app = Flask(__name__)
    app.config["MCP_API_KEYS"] = json.dumps(KEYS)
    auth = MCPAuth(app)
    app.add_url_rule("/a", "a", lambda: "a")
    app.add_url_rule("/open", "open", lambda: "open")
    auth.protect(app, permissions=["read"], exempt=["open"])
    client = app.test_client()
    assert client.get("/a").status_code == 401
    assert client.get("/a", headers=as_key("perm-read-key-0123456789")).status_code == 200
    assert client.get("/a", headers=as_key("perm-admin-key-0123456789")).status_code == 403
    assert client.get("/open").status_code == 200
    status = client.get("/mcp/status")
    assert status.status_code == 200 and status.get_json()["authenticated"] is False


def test_protect_validates_its_arguments() -> None:
    auth = MCPAuth()
    with pytest.raises(ValueError):
        auth.protect(role="root")
    with pytest.raises(ValueError):
        auth.protect()


def test_options_passes_protection() -> None:
    client = make_protected_app(role="admin").test_client()
    assert client.options("/admin/stats").status_code == 200


# -- ordering with flask-limiter ---------------------------------------------------


@pytest.mark.parametrize("limit_outside", [True, False])
def test_decorator_order_with_flask_limiter(limit_outside: bool) -> None:
    """Decorators run outermost first: with @limiter.limit outside, refused calls
    spend the limit; with it inside, only calls the key may make are counted."""
    from flask_limiter import Limiter
    from flask_limiter.util import get_remote_address

    app = Flask(__name__)
    app.config["MCP_API_KEYS"] = json.dumps(KEYS)
    MCPAuth(app)
    limiter = Limiter(get_remote_address, app=app, storage_uri="memory://")

    def view() -> str:
        return "ok"

    if limit_outside:
        guarded = limiter.limit("2 per minute")(require_permission("write")(view))
    else:
        guarded = require_permission("write")(limiter.limit("2 per minute")(view))
    app.add_url_rule("/w", "w", guarded)
    client = app.test_client()
    reader = as_key("perm-read-key-0123456789")
    writer = as_key("perm-readwrite-key-0123456789")
    refused = [client.get("/w", headers=reader).status_code for _ in range(3)]
    then_writer = client.get("/w", headers=writer).status_code
    if limit_outside:
        assert (refused, then_writer) == ([403, 403, 429], 429)
    else:
        assert (refused, then_writer) == ([403, 403, 403], 200)


def test_protect_on_one_app_leaves_the_other_apps_of_the_instance_alone() -> None:
    auth = MCPAuth()
    apps = []
    for name in ("protected", "open"):
        app = Flask(name)
        app.config["MCP_API_KEYS"] = json.dumps({"reader": {"role": "user", "permissions": []}})

        @app.get("/data")
        def data() -> dict[str, bool]:
            return {"ok": True}

        auth.init_app(app)
        apps.append(app)
    auth.protect(apps[0], permissions=["read"])
    headers = {"X-API-Key": "reader"}
    assert apps[0].test_client().get("/data", headers=headers).status_code == 403
    assert apps[1].test_client().get("/data", headers=headers).status_code == 200
    auth.protect(None, role="admin")  # None: every app the instance serves
    assert apps[1].test_client().get("/data", headers=headers).status_code == 403
