"""Settings: every setting listed once, precedence constructor > app.config > env > default."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from support.flask_app import build_app
from support.paths import README
from support.seed import SEED_KEY

from flask_mcp_auth import ConfigError, MCPAuth
from flask_mcp_auth.config import SETTINGS


def anonymous_role(app: Flask) -> str | None:
    return app.test_client().get("/whoami").get_json()["role"]


def test_every_setting_has_a_unique_name_option_and_meaning() -> None:
    names = [s.name for s in SETTINGS]
    options = [s.option for s in SETTINGS]
    assert len(set(names)) == len(names)
    assert len(set(options)) == len(options)
    for setting in SETTINGS:
        assert setting.option == setting.option.lower()
        assert setting.meaning.strip(), setting.name


def test_without_any_configuration_every_setting_has_its_default() -> None:
    auth = MCPAuth()
    app = Flask("defaults")
    auth.init_app(app)
    assert auth.state_for(app).settings == {s.name: s.default for s in SETTINGS}


def test_readme_settings_table_lists_every_setting_with_its_option() -> None:
    readme = README.read_text(encoding="utf-8")
    for setting in SETTINGS:
        row = rf"^\| `{setting.name}` \| `{setting.option}` \|"
        assert re.search(row, readme, re.MULTILINE), f"README lacks a row for {setting.name}"


@pytest.mark.parametrize(
    ("constructor", "app_config", "environ", "expected"),
    [
        ("admin", "developer", "user", "admin"),
        (None, "developer", "user", "developer"),
        (None, None, "user", "user"),
        (None, None, None, "guest"),
    ],
)
def test_precedence_constructor_then_app_config_then_environment_then_default(
    monkeypatch: pytest.MonkeyPatch,
    constructor: str | None,
    app_config: str | None,
    environ: str | None,
    expected: str,
) -> None:
    if environ is not None:
        monkeypatch.setenv("MCP_DEFAULT_ROLE", environ)
    config = {} if app_config is None else {"MCP_DEFAULT_ROLE": app_config}
    options = {} if constructor is None else {"default_role": constructor}
    app = build_app(options=options, **config)
    assert app.extensions["mcp_auth"].state_for(app).settings["MCP_DEFAULT_ROLE"] == expected
    assert anonymous_role(app) == expected


def test_an_empty_string_is_a_value_and_beats_lower_levels(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MCP_DEFAULT_ROLE", "user")
    app = build_app(MCP_DEFAULT_ROLE="")
    response = app.test_client().get("/whoami")
    assert response.status_code == 401
    assert response.get_json()["error"] == "missing_api_key"


def test_key_store_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MCP_API_KEYS", '{"env-key": {"name": "From env"}}')
    from_env = build_app(keys=None).test_client()
    assert from_env.get("/whoami", headers={"X-API-Key": "env-key"}).get_json()["name"] == (
        "From env"
    )

    from_config = build_app(keys={"config-key": {"name": "From config"}}).test_client()
    assert from_config.get("/whoami", headers={"X-API-Key": "env-key"}).status_code == 401
    assert from_config.get("/whoami", headers={"X-API-Key": "config-key"}).status_code == 200

    from_constructor = build_app(
        keys={"config-key": {"name": "From config"}},
        options={"api_keys": {"ctor-key": {"name": "From constructor"}}},
    ).test_client()
    assert from_constructor.get("/whoami", headers={"X-API-Key": "config-key"}).status_code == 401
    body = from_constructor.get("/whoami", headers={"X-API-Key": "ctor-key"}).get_json()
    assert body["name"] == "From constructor"


def test_key_store_as_a_dict_in_app_config() -> None:
    app = Flask("dict_store")
    app.config["MCP_API_KEYS"] = {SEED_KEY: {"name": "Dict", "role": "developer"}}
    auth = MCPAuth(app)
    [key] = list(auth.state_for(app).store)
    assert (key.name, key.role) == ("Dict", "developer")


def test_constructor_option_set_to_none_means_unset() -> None:
    app = build_app(options={"default_role": None}, MCP_DEFAULT_ROLE="developer")
    assert anonymous_role(app) == "developer"


def test_unknown_constructor_option_is_a_type_error_naming_it_and_the_valid_ones() -> None:
    with pytest.raises(TypeError) as excinfo:
        MCPAuth(api_key={"k": {}})
    message = str(excinfo.value)
    assert "api_key" in message
    for setting in SETTINGS:
        assert setting.option in message


@pytest.mark.parametrize("text", ["1", "true", "TRUE", "True", "yes", "on", " true "])
def test_boolean_settings_accept_true_spellings(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setenv("MCP_REQUIRE_SIGNED_KEYS", text)
    app = build_app(JWT_SECRET="s3cret")
    assert app.extensions["mcp_auth"].state_for(app).settings["MCP_REQUIRE_SIGNED_KEYS"] is True
    assert app.test_client().get("/whoami", headers={"X-API-Key": SEED_KEY}).status_code == 401


@pytest.mark.parametrize("text", ["0", "false", "FALSE", "no", "off", ""])
def test_boolean_settings_accept_false_spellings(
    monkeypatch: pytest.MonkeyPatch, text: str
) -> None:
    monkeypatch.setenv("MCP_ACCEPT_BEARER", text)
    app = build_app()
    assert app.extensions["mcp_auth"].state_for(app).settings["MCP_ACCEPT_BEARER"] is False
    body = app.test_client().get("/whoami", headers={"Authorization": f"Bearer {SEED_KEY}"})
    assert body.get_json()["is_authenticated"] is False


def test_boolean_settings_accept_python_booleans_in_app_config() -> None:
    for value in (False, True):
        app = build_app(MCP_ACCEPT_BEARER=value)
        assert app.extensions["mcp_auth"].state_for(app).settings["MCP_ACCEPT_BEARER"] is value


@pytest.mark.parametrize("text", ["maybe", "2", "enabled"])
def test_a_boolean_that_is_not_one_is_a_config_error_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, text: str
) -> None:
    monkeypatch.setenv("MCP_ACCEPT_BEARER", text)
    with pytest.raises(ConfigError, match="MCP_ACCEPT_BEARER"):
        build_app()


def test_a_string_setting_given_another_type_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="MCP_API_KEY_HEADER"):
        build_app(MCP_API_KEY_HEADER=42)


@pytest.mark.parametrize("role", ["superuser", "Admin", "guests"])
def test_an_unknown_default_role_is_a_config_error(role: str) -> None:
    with pytest.raises(ConfigError, match="MCP_DEFAULT_ROLE"):
        build_app(MCP_DEFAULT_ROLE=role)


def test_environment_is_read_at_init_app(monkeypatch: pytest.MonkeyPatch) -> None:
    auth = MCPAuth()
    monkeypatch.setenv("MCP_DEFAULT_ROLE", "developer")
    app = Flask("late_env")
    auth.init_app(app)
    assert auth.state_for(app).settings["MCP_DEFAULT_ROLE"] == "developer"
