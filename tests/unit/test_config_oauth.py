"""The MCP_OAUTH_* settings: parsing, precedence, and the combinations that stop start-up."""

from __future__ import annotations

from importlib.util import find_spec
from typing import Any

import pytest
from flask import Flask
from support.flask_app import build_app

from flask_mcp_auth import ConfigError, MCPAuth
from flask_mcp_auth.config import SETTINGS, resolve_settings
from flask_mcp_auth.oauth.urls import DEFAULT_REDIRECT_URIS, RedirectRules

ISSUER = "http://127.0.0.1:3210"
SECRET = "oauth-test-secret-0123456789abcdef"


def settings_of(app: Flask) -> dict[str, Any]:
    return app.extensions["mcp_auth"].state_for(app).settings  # type: ignore[no-any-return]


def start_up_error(**config: Any) -> str:
    """The ConfigError message ``init_app`` stops with for this app configuration."""
    app = Flask("oauth_config")
    app.config.update(config)
    with pytest.raises(ConfigError) as excinfo:
        MCPAuth().init_app(app)
    return str(excinfo.value)


# -- defaults --------------------------------------------------------------------------


def test_the_oauth_defaults() -> None:
    settings = resolve_settings({}, {}, {})
    assert settings["MCP_OAUTH_ISSUER"] == ""
    assert settings["MCP_OAUTH_REDIRECT_URIS"] == RedirectRules.parse(DEFAULT_REDIRECT_URIS)
    assert settings["MCP_OAUTH_CIMD_ALLOW_PRIVATE"] is False
    assert settings["MCP_OAUTH_ACCESS_TOKEN_TTL"] == 3600
    assert settings["MCP_OAUTH_REFRESH_TOKEN_TTL"] == 30 * 24 * 3600
    assert settings["MCP_OAUTH_SCOPES"] == ()


def test_without_an_issuer_there_is_no_sign_in_even_without_a_secret() -> None:
    app = build_app()
    assert app.extensions["mcp_auth"].state_for(app).oauth is None
    assert app.test_client().get("/.well-known/oauth-authorization-server").status_code == 404


def test_an_issuer_with_a_secret_turns_the_sign_in_on() -> None:
    app = build_app(MCP_OAUTH_ISSUER=ISSUER, JWT_SECRET=SECRET)
    assert app.extensions["mcp_auth"].state_for(app).oauth is not None
    metadata = app.test_client().get("/.well-known/oauth-authorization-server").get_json()
    assert metadata["issuer"] == ISSUER


def test_the_apps_secret_key_signs_when_there_is_no_jwt_secret() -> None:
    app = build_app(MCP_OAUTH_ISSUER=ISSUER, SECRET_KEY=SECRET)
    assert app.extensions["mcp_auth"].state_for(app).oauth is not None


# -- MCP_OAUTH_ISSUER errors stop start-up ------------------------------------------------


@pytest.mark.parametrize(
    ("issuer", "problem"),
    [
        ("mcp.example.com", "absolute https://"),
        ("https://mcp.example.com/", "trailing slash"),
        ("https://mcp.example.com/mcp", "no path"),
        ("https://MCP.example.com", "canonical form"),
        ("https://mcp.example.com:443", "canonical form"),
        ("http://mcp.example.com", "only for loopback"),
        ("https://u:p@mcp.example.com", "user name or password"),
    ],
)
def test_a_bad_issuer_stops_start_up_naming_the_setting_and_the_problem(
    issuer: str, problem: str
) -> None:
    message = start_up_error(MCP_OAUTH_ISSUER=issuer, JWT_SECRET=SECRET)
    assert message.startswith("MCP_OAUTH_ISSUER: ")
    assert problem in message


def test_a_bad_issuer_from_the_environment_stops_start_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MCP_OAUTH_ISSUER", "https://mcp.example.com/")
    monkeypatch.setenv("JWT_SECRET", SECRET)
    assert start_up_error().startswith("MCP_OAUTH_ISSUER: ")


def test_an_issuer_that_is_not_a_string_stops_start_up() -> None:
    assert "MCP_OAUTH_ISSUER" in start_up_error(MCP_OAUTH_ISSUER=443, JWT_SECRET=SECRET)


def test_surrounding_blanks_of_an_issuer_are_trimmed_like_any_string() -> None:
    settings = resolve_settings({}, {}, {"MCP_OAUTH_ISSUER": f" {ISSUER} ", "JWT_SECRET": SECRET})
    assert settings["MCP_OAUTH_ISSUER"] == ISSUER


def test_an_issuer_without_a_secret_stops_start_up() -> None:
    message = start_up_error(MCP_OAUTH_ISSUER=ISSUER)
    assert "MCP_OAUTH_ISSUER" in message
    assert "JWT_SECRET" in message
    assert "SECRET_KEY" in message


def test_an_issuer_with_bearer_off_stops_start_up() -> None:
    message = start_up_error(MCP_OAUTH_ISSUER=ISSUER, JWT_SECRET=SECRET, MCP_ACCEPT_BEARER=False)
    assert "MCP_OAUTH_ISSUER" in message
    assert "MCP_ACCEPT_BEARER" in message


def test_bearer_off_without_an_issuer_is_fine() -> None:
    resolve_settings({}, {"MCP_ACCEPT_BEARER": False}, {})


@pytest.mark.parametrize(
    ("missing", "named"),
    [
        ({"authlib"}, "authlib is not installed"),
        ({"joserfc"}, "joserfc is not installed"),
        ({"authlib", "joserfc"}, "authlib and joserfc is not installed"),
    ],
)
def test_an_issuer_without_the_optional_dependency_names_the_pip_extra(
    monkeypatch: pytest.MonkeyPatch, missing: set[str], named: str
) -> None:
    # config.py does `from importlib.util import find_spec`: patch the name it looks up.
    monkeypatch.setattr(
        "flask_mcp_auth.config.find_spec",
        lambda name, *args: None if name in missing else find_spec(name, *args),
    )
    message = start_up_error(MCP_OAUTH_ISSUER=ISSUER, JWT_SECRET=SECRET)
    assert named in message
    assert "pip install 'flask-mcp-auth[oauth]'" in message


def test_the_optional_dependency_is_not_asked_for_without_an_issuer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("flask_mcp_auth.config.find_spec", lambda name, *args: None)
    resolve_settings({}, {}, {})


# -- the token lifetimes -------------------------------------------------------------------


TTLS = ("MCP_OAUTH_ACCESS_TOKEN_TTL", "MCP_OAUTH_REFRESH_TOKEN_TTL")


@pytest.mark.parametrize("name", TTLS)
@pytest.mark.parametrize(
    ("raw", "seconds"), [("1", 1), (" 600 ", 600), (7200, 7200), (7200.0, 7200), ("86400", 86400)]
)
def test_token_lifetimes_are_whole_seconds(name: str, raw: Any, seconds: int) -> None:
    assert resolve_settings({}, {name: raw}, {})[name] == seconds


@pytest.mark.parametrize("name", TTLS)
@pytest.mark.parametrize("raw", ["0", "-1", "", " ", "soon", "1.5", "1e3", "0x10"])
def test_a_token_lifetime_in_the_environment_that_is_not_a_positive_whole_number_is_refused(
    name: str, raw: str
) -> None:
    with pytest.raises(ConfigError) as excinfo:
        resolve_settings({}, {}, {name: raw})
    assert str(excinfo.value).startswith(f"{name}: expected a whole number of seconds")


@pytest.mark.parametrize("name", TTLS)
@pytest.mark.parametrize("raw", [0, -60, 1.5, True, False, [60], float("inf"), float("nan")])
def test_a_token_lifetime_in_app_config_that_is_not_a_positive_whole_number_is_refused(
    name: str, raw: Any
) -> None:
    with pytest.raises(ConfigError) as excinfo:
        resolve_settings({}, {name: raw}, {})
    assert str(excinfo.value).startswith(f"{name}: expected a whole number of seconds")


def test_a_bad_token_lifetime_stops_start_up() -> None:
    assert start_up_error(MCP_OAUTH_ACCESS_TOKEN_TTL="0").startswith("MCP_OAUTH_ACCESS_TOKEN_TTL")


# -- MCP_OAUTH_REDIRECT_URIS --------------------------------------------------------------


def test_redirect_uris_from_a_space_and_comma_separated_string() -> None:
    raw = "https://a.example.com/cb, https://b.example.com/oauth/*  http://localhost,,"
    rules = resolve_settings({}, {}, {"MCP_OAUTH_REDIRECT_URIS": raw})["MCP_OAUTH_REDIRECT_URIS"]
    assert rules.exact == frozenset({"https://a.example.com/cb"})
    assert rules.prefixes == ("https://b.example.com/oauth/",)
    assert rules.loopback_hosts == frozenset({"localhost"})
    assert not rules.admits("https://chatgpt.com/connector/oauth/x")  # the defaults are replaced


def test_redirect_uris_from_a_list() -> None:
    config = {"MCP_OAUTH_REDIRECT_URIS": ["https://a.example.com/cb", " https://c.example/x/* "]}
    rules = resolve_settings({}, config, {})["MCP_OAUTH_REDIRECT_URIS"]
    assert rules == RedirectRules.parse(("https://a.example.com/cb", "https://c.example/x/*"))


def test_an_empty_redirect_uri_string_admits_nothing() -> None:
    rules = resolve_settings({}, {}, {"MCP_OAUTH_REDIRECT_URIS": ""})["MCP_OAUTH_REDIRECT_URIS"]
    assert rules == RedirectRules(frozenset(), (), frozenset())


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("https://a.example.com/cb http://evil.example/cb", "must be loopback"),
        ("https://a.example.com/cb#x", "no fragment"),
        ("javascript:alert(1)", "absolute https://"),
        ("https://a.example.com*", "must include a path"),
    ],
)
def test_a_bad_redirect_uri_is_a_config_error_naming_the_setting(raw: str, problem: str) -> None:
    message = start_up_error(MCP_OAUTH_REDIRECT_URIS=raw)
    assert message.startswith("MCP_OAUTH_REDIRECT_URIS: ")
    assert problem in message


@pytest.mark.parametrize("raw", [42, ["https://a.example.com/cb", 7]])
def test_redirect_uris_of_the_wrong_type_are_a_config_error(raw: Any) -> None:
    assert "MCP_OAUTH_REDIRECT_URIS" in start_up_error(MCP_OAUTH_REDIRECT_URIS=raw)


def test_scopes_from_a_comma_separated_string() -> None:
    settings = resolve_settings({}, {}, {"MCP_OAUTH_SCOPES": "read, tools:*,"})
    assert settings["MCP_OAUTH_SCOPES"] == ("read", "tools:*")


@pytest.mark.parametrize(("text", "value"), [("true", True), ("0", False)])
def test_cimd_allow_private_is_a_boolean(text: str, value: bool) -> None:
    settings = resolve_settings({}, {}, {"MCP_OAUTH_CIMD_ALLOW_PRIVATE": text})
    assert settings["MCP_OAUTH_CIMD_ALLOW_PRIVATE"] is value


# -- precedence ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("constructor", "app_config", "environ", "expected"),
    [
        (60, "120", "180", 60),
        (None, "120", "180", 120),
        (None, None, "180", 180),
        (None, None, None, 3600),
    ],
)
def test_oauth_settings_precedence_constructor_then_app_config_then_environment(
    monkeypatch: pytest.MonkeyPatch,
    constructor: int | None,
    app_config: str | None,
    environ: str | None,
    expected: int,
) -> None:
    if environ is not None:
        monkeypatch.setenv("MCP_OAUTH_ACCESS_TOKEN_TTL", environ)
    config = {} if app_config is None else {"MCP_OAUTH_ACCESS_TOKEN_TTL": app_config}
    options = {} if constructor is None else {"oauth_access_token_ttl": constructor}
    app = build_app(options=options, MCP_OAUTH_ISSUER=ISSUER, JWT_SECRET=SECRET, **config)
    assert settings_of(app)["MCP_OAUTH_ACCESS_TOKEN_TTL"] == expected


def test_issuer_precedence_constructor_then_app_config_then_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MCP_OAUTH_ISSUER", "http://127.0.0.1:1")
    assert resolve_settings({}, {"JWT_SECRET": SECRET}, None)["MCP_OAUTH_ISSUER"] == (
        "http://127.0.0.1:1"
    )
    from_config = resolve_settings(
        {}, {"JWT_SECRET": SECRET, "MCP_OAUTH_ISSUER": "http://127.0.0.1:2"}, None
    )
    assert from_config["MCP_OAUTH_ISSUER"] == "http://127.0.0.1:2"
    from_constructor = resolve_settings(
        {"oauth_issuer": "http://127.0.0.1:3"},
        {"JWT_SECRET": SECRET, "MCP_OAUTH_ISSUER": "http://127.0.0.1:2"},
        None,
    )
    assert from_constructor["MCP_OAUTH_ISSUER"] == "http://127.0.0.1:3"


def test_an_empty_issuer_in_app_config_beats_one_in_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MCP_OAUTH_ISSUER", ISSUER)  # no secret: would stop start-up
    app = build_app(MCP_OAUTH_ISSUER="")
    assert settings_of(app)["MCP_OAUTH_ISSUER"] == ""


def test_every_oauth_setting_has_the_documented_option_name() -> None:
    options = {s.name: s.option for s in SETTINGS if "OAUTH_" in s.name}
    assert options == {
        "MCP_OAUTH_DISCOVERY_ANSWERS": options["MCP_OAUTH_DISCOVERY_ANSWERS"],
        "MCP_OAUTH_LOGIN_PATHS": options["MCP_OAUTH_LOGIN_PATHS"],
        "MCP_OAUTH_ISSUER": "oauth_issuer",
        "MCP_OAUTH_REDIRECT_URIS": "oauth_redirect_uris",
        "MCP_OAUTH_CIMD_ALLOW_PRIVATE": "oauth_cimd_allow_private",
        "MCP_OAUTH_ACCESS_TOKEN_TTL": "oauth_access_token_ttl",
        "MCP_OAUTH_REFRESH_TOKEN_TTL": "oauth_refresh_token_ttl",
        "MCP_OAUTH_SCOPES": "oauth_scopes",
    }
