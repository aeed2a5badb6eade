"""Where the key is read from: X-API-Key header > Authorization: Bearer > api_key query."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient
from support.flask_app import build_app

KEYS = {
    "header-key-id": {"name": "Header Key", "role": "admin"},
    "bearer-key-id": {"name": "Bearer Key", "role": "developer"},
    "query-key-id": {"name": "Query Key", "role": "user"},
}


def client(**config: Any) -> FlaskClient:
    return build_app(KEYS, **config).test_client()


def whoami(test_client: FlaskClient, query: str = "", **headers: str) -> dict[str, Any]:
    response = test_client.get("/whoami" + query, headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def test_header_beats_bearer_and_query() -> None:
    body = whoami(
        client(),
        "?api_key=query-key-id",
        **{"X-API-Key": "header-key-id", "Authorization": "Bearer bearer-key-id"},
    )
    assert (body["name"], body["credential_source"]) == ("Header Key", "header")


def test_bearer_beats_query() -> None:
    body = whoami(client(), "?api_key=query-key-id", Authorization="Bearer bearer-key-id")
    assert (body["name"], body["credential_source"]) == ("Bearer Key", "bearer")


def test_query_parameter_alone() -> None:
    body = whoami(client(), "?api_key=query-key-id")
    assert (body["name"], body["credential_source"]) == ("Query Key", "query")


def test_the_first_credential_found_decides_there_is_no_fallback() -> None:
    # A wrong header key is not rescued by a valid Bearer token or query key.
    response = client().get(
        "/whoami?api_key=query-key-id",
        headers={"X-API-Key": "wrong", "Authorization": "Bearer bearer-key-id"},
    )
    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_api_key"
    response = client().get(
        "/whoami?api_key=query-key-id", headers={"Authorization": "Bearer wrong"}
    )
    assert response.status_code == 401


@pytest.mark.parametrize("header_name", ["x-api-key", "X-API-KEY", "X-Api-Key"])
def test_the_header_name_is_case_insensitive(header_name: str) -> None:
    assert whoami(client(), **{header_name: "header-key-id"})["name"] == "Header Key"


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
def test_the_bearer_scheme_is_case_insensitive(scheme: str) -> None:
    body = whoami(client(), Authorization=f"{scheme} bearer-key-id")
    assert body["name"] == "Bearer Key"


def test_a_custom_header_name_replaces_x_api_key() -> None:
    custom = client(MCP_API_KEY_HEADER="X-MCP-Token")
    assert whoami(custom, **{"X-MCP-Token": "header-key-id"})["name"] == "Header Key"
    # X-API-Key is now just another header: the caller is anonymous.
    assert whoami(custom, **{"X-API-Key": "header-key-id"})["is_authenticated"] is False
    body = whoami(custom, **{"X-API-Key": "x", "X-MCP-Token": "header-key-id"})
    assert body["name"] == "Header Key"


def test_a_custom_header_name_from_the_constructor() -> None:
    custom = build_app(KEYS, options={"api_key_header": "X-Connector-Key"}).test_client()
    assert whoami(custom, **{"X-Connector-Key": "bearer-key-id"})["name"] == "Bearer Key"


def test_bearer_switched_off_is_ignored() -> None:
    no_bearer = client(MCP_ACCEPT_BEARER="false")
    body = whoami(no_bearer, Authorization="Bearer bearer-key-id")
    assert body["is_authenticated"] is False
    assert body["role"] == "guest"
    # ... and the query parameter still works behind it.
    body = whoami(no_bearer, "?api_key=query-key-id", Authorization="Bearer bearer-key-id")
    assert body["name"] == "Query Key"


def test_bearer_switched_off_without_anonymous_access_is_a_missing_key() -> None:
    response = client(MCP_ACCEPT_BEARER=False, MCP_DEFAULT_ROLE="").get(
        "/whoami", headers={"Authorization": "Bearer bearer-key-id"}
    )
    assert response.status_code == 401
    assert response.get_json()["error"] == "missing_api_key"


def test_an_empty_query_param_setting_switches_query_keys_off() -> None:
    no_query = client(MCP_API_KEY_QUERY_PARAM="")
    body = whoami(no_query, "?api_key=query-key-id")
    assert body["is_authenticated"] is False
    response = (
        build_app(KEYS, MCP_API_KEY_QUERY_PARAM="", MCP_DEFAULT_ROLE="")
        .test_client()
        .get("/whoami?api_key=query-key-id")
    )
    assert response.status_code == 401
    assert response.get_json()["error"] == "missing_api_key"
    # Header and Bearer are unaffected.
    assert whoami(no_query, Authorization="Bearer bearer-key-id")["name"] == "Bearer Key"


def test_a_custom_query_param_name() -> None:
    custom = client(MCP_API_KEY_QUERY_PARAM="key")
    assert whoami(custom, "?key=query-key-id")["name"] == "Query Key"
    assert whoami(custom, "?api_key=query-key-id")["is_authenticated"] is False


@pytest.mark.parametrize(
    "authorization",
    ["Basic dXNlcjpwYXNz", "Token bearer-key-id", "Digest username=x", "bearer-key-id"],
)
def test_other_authorization_schemes_are_ignored(authorization: str) -> None:
    body = whoami(client(), Authorization=authorization)
    assert body["is_authenticated"] is False
    assert body["role"] == "guest"
    body = whoami(client(), "?api_key=query-key-id", Authorization=authorization)
    assert body["name"] == "Query Key"


@pytest.mark.parametrize("invalid", ["wrong-key", "header-key-id-but-longer"])
def test_options_requests_pass_without_authentication(invalid: str) -> None:
    for test_client in (client(), client(MCP_DEFAULT_ROLE="")):
        assert test_client.options("/whoami").status_code == 200
        response = test_client.options("/whoami", headers={"X-API-Key": invalid})
        assert response.status_code == 200
        assert "GET" in response.headers["Allow"]


@pytest.mark.parametrize(
    ("query", "headers"),
    [
        ("", {"X-API-Key": ""}),
        ("", {"Authorization": "Bearer"}),
        ("", {"Authorization": "Bearer    "}),
        ("?api_key=", {}),
    ],
)
def test_an_empty_presented_credential_is_refused_not_downgraded(
    query: str, headers: dict[str, str]
) -> None:
    # Something was presented, so the caller is not silently treated as anonymous.
    response = client().get("/whoami" + query, headers=headers)
    assert response.status_code == 401


def test_surrounding_whitespace_in_a_query_key_is_ignored() -> None:
    assert whoami(client(), "?api_key=%20query-key-id%20")["name"] == "Query Key"


ODD_CREDENTIALS = [
    "\x00",
    "ключ",
    "é" * 3,
    "x" * 20_000,
    "mcp_" + "_" * 50,
    "mcp_id_" + "ü" * 43,
    "mcp_id_" + "!" * 43,
    "mcp_é_" + "A" * 43,
    '"; DROP TABLE keys; --',
]


@pytest.mark.parametrize("credential", ODD_CREDENTIALS)
@pytest.mark.parametrize("source", ["header", "bearer", "query"])
def test_odd_credentials_get_a_json_401_never_a_500(credential: str, source: str) -> None:
    test_client = build_app(KEYS, JWT_SECRET="secret").test_client()
    if source == "header":
        response = test_client.get("/whoami", headers={"X-API-Key": credential})
    elif source == "bearer":
        response = test_client.get("/whoami", headers={"Authorization": f"Bearer {credential}"})
    else:
        response = test_client.get("/whoami", query_string={"api_key": credential})
    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_api_key"


@pytest.mark.parametrize("raw_query", ["api_key=%ff", "api_key=%00", "api_key=%ED%B3%BF"])
def test_undecodable_query_keys_get_a_json_401(raw_query: str) -> None:
    response = build_app(KEYS, JWT_SECRET="secret").test_client().get(f"/whoami?{raw_query}")
    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_api_key"
