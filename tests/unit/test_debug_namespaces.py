"""DEBUG=auth:*: Node `debug` namespace syntax, mapped to the package's loggers."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator

import pytest
from support.audit import RecordingHandler

from flask_mcp_auth.debug import NAMESPACES, enabled_namespaces, namespace_enabled

pytestmark = pytest.mark.usefixtures("clean_logging")

ALL = ["auth:keys", "auth:request", "auth:ratelimit"]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("auth:*", ALL),
        ("auth:keys", ["auth:keys"]),
        ("auth:*,-auth:ratelimit", ["auth:keys", "auth:request"]),
        (None, []),
        ("", []),
        ("*", ALL),
        ("auth:keys auth:request", ["auth:keys", "auth:request"]),  # spaces separate too
        (" auth:keys ,, auth:ratelimit ", ["auth:keys", "auth:ratelimit"]),
        ("-auth:ratelimit,auth:*", ["auth:keys", "auth:request"]),  # exclusions win, any order
        ("-auth:*", []),
        ("auth:*,-*", []),
        ("auth", []),  # no implicit prefix match
        ("auth:key", []),
        ("*:request", ["auth:request"]),
        ("app:*", []),
    ],
)
def test_namespace_matching(spec, expected):
    assert enabled_namespaces(spec) == expected


def test_wildcard_matches_any_run_of_characters():
    assert namespace_enabled("auth:rate:limit", "auth:*")
    assert namespace_enabled("auth:ratelimit", "auth:rate*")
    assert not namespace_enabled("auth:ratelimit", "auth:rate")
    assert not namespace_enabled("auth.keys", "auth:*")  # '.' is literal, not a regex


def debug_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if " auth:" in line]


def test_debug_env_shows_key_loading_and_each_decision(audit_app, monkeypatch, capsys):
    monkeypatch.setenv("DEBUG", "auth:*")
    client = audit_app(MCP_AUDIT_LOG="off").test_client()
    client.get("/data", headers={"X-API-Key": "live-key"})
    client.get("/data?api_key=wrong")
    client.get("/data")
    lines = debug_lines(capsys.readouterr().err)
    text = "\n".join(lines)
    assert "auth:keys loaded 2 API key(s) from MCP_API_KEYS" in text
    assert "auth:keys WARNING API key Old Connector" in text  # warnings show their level
    assert "auth:request GET /data: credential from header: key ChatGPT Connector" in text
    assert "auth:request GET /data: credential from query: unknown or badly signed key: 401" in text
    assert "auth:request GET /data: no credential: anonymous, role guest" in text


def test_excluded_namespace_stays_silent(audit_app, monkeypatch, capsys):
    monkeypatch.setenv("DEBUG", "auth:*,-auth:ratelimit")
    audit_app(MCP_AUDIT_LOG="off")
    logging.getLogger(NAMESPACES["auth:ratelimit"]).debug("ratelimit-marker")
    logging.getLogger(NAMESPACES["auth:request"]).debug("request-marker")
    err = capsys.readouterr().err
    assert "auth:request request-marker" in err
    assert "ratelimit-marker" not in err


def test_only_the_named_namespace(audit_app, monkeypatch, capsys):
    monkeypatch.setenv("DEBUG", "auth:keys")
    audit_app(MCP_AUDIT_LOG="off").test_client().get("/data", headers={"X-API-Key": "live-key"})
    lines = debug_lines(capsys.readouterr().err)
    assert lines and all(" auth:keys " in line for line in lines)


def test_without_debug_nothing_is_printed(audit_app, capsys):
    client = audit_app(MCP_AUDIT_LOG="off").test_client()
    client.get("/data", headers={"X-API-Key": "live-key"})
    client.get("/data?api_key=wrong")
    assert debug_lines(capsys.readouterr().err) == []
    for logger_name in NAMESPACES.values():
        assert not logging.getLogger(logger_name).isEnabledFor(logging.DEBUG)


def test_a_later_app_without_debug_turns_it_off_again(audit_app, monkeypatch, capsys):
    monkeypatch.setenv("DEBUG", "auth:*")
    audit_app(MCP_AUDIT_LOG="off")
    request_logger = logging.getLogger(NAMESPACES["auth:request"])
    # It keeps propagating while on, so the application's handlers see its records.
    assert request_logger.isEnabledFor(logging.DEBUG) and request_logger.propagate
    monkeypatch.delenv("DEBUG")
    audit_app(MCP_AUDIT_LOG="off")
    assert not request_logger.isEnabledFor(logging.DEBUG)
    assert request_logger.propagate and request_logger.handlers == []


def test_app_config_and_option_beat_the_environment(audit_app, monkeypatch, capsys):
    monkeypatch.setenv("DEBUG", "auth:request")
    audit_app(MCP_AUDIT_LOG="off", MCP_DEBUG="auth:keys")
    assert logging.getLogger(NAMESPACES["auth:keys"]).isEnabledFor(logging.DEBUG)
    assert not logging.getLogger(NAMESPACES["auth:request"]).isEnabledFor(logging.DEBUG)


def test_flasks_own_debug_flag_is_not_a_namespace_list(audit_app, monkeypatch):
    """app.config['DEBUG'] is Flask's boolean; the DEBUG environment variable still counts."""
    monkeypatch.setenv("DEBUG", "auth:request")
    audit_app(MCP_AUDIT_LOG="off", DEBUG=True)
    assert logging.getLogger(NAMESPACES["auth:request"]).isEnabledFor(logging.DEBUG)
    assert not logging.getLogger(NAMESPACES["auth:keys"]).isEnabledFor(logging.DEBUG)


# -- DEBUG output and the application's own handlers --------------------------------


@pytest.fixture
def app_handlers() -> Iterator[list[tuple[str, logging.Handler]]]:
    """(logger name, handler) pairs a test attaches; taken off again at the end."""
    attached: list[tuple[str, logging.Handler]] = []
    yield attached
    for name, handler in attached:
        logging.getLogger(name).removeHandler(handler)


def attach(
    attached: list[tuple[str, logging.Handler]], name: str, handler: logging.Handler
) -> None:
    logging.getLogger(name).addHandler(handler)
    attached.append((name, handler))


@pytest.mark.parametrize("logger_name", ["flask_mcp_auth", ""])
def test_debug_records_reach_the_applications_handlers(
    audit_app, monkeypatch, capsys, app_handlers, logger_name
):
    monkeypatch.setenv("DEBUG", "auth:*")
    recorded = RecordingHandler()
    attach(app_handlers, logger_name, recorded)
    audit_app(MCP_AUDIT_LOG="off").test_client().get("/data", headers={"X-API-Key": "live-key"})
    assert "flask_mcp_auth.keys DEBUG loaded 2 API key(s) from MCP_API_KEYS" in recorded.lines
    assert any(
        line.startswith("flask_mcp_auth.request DEBUG credential from header: key ChatGPT")
        for line in recorded.lines
    )
    # A handler on a stream other than stderr: the DEBUG lines are printed as well, once.
    lines = debug_lines(capsys.readouterr().err)
    assert len([line for line in lines if "credential from header" in line]) == 1


def test_debug_records_reach_caplog(audit_app, monkeypatch, caplog, capsys):
    monkeypatch.setenv("DEBUG", "auth:request")
    caplog.set_level(logging.DEBUG, logger="flask_mcp_auth")
    audit_app(MCP_AUDIT_LOG="off").test_client().get("/data?api_key=wrong")
    messages = [r.getMessage() for r in caplog.records if r.name == NAMESPACES["auth:request"]]
    assert "credential from query: unknown or badly signed key: 401" in messages
    assert "auth:request GET /data: credential from query" in capsys.readouterr().err


def test_an_application_stderr_handler_prints_each_debug_line_once(
    audit_app, monkeypatch, capsys, app_handlers
):
    monkeypatch.setenv("DEBUG", "auth:*")
    on_stderr = logging.StreamHandler(sys.stderr)  # capsys's stderr: the current one
    on_stderr.setFormatter(logging.Formatter("app %(name)s: %(message)s"))
    attach(app_handlers, "", on_stderr)
    audit_app(MCP_AUDIT_LOG="off").test_client().get("/data", headers={"X-API-Key": "live-key"})
    err = capsys.readouterr().err
    decisions = [line for line in err.splitlines() if "credential from header" in line]
    assert len(decisions) == 1, err
    assert decisions[0].startswith("app flask_mcp_auth.request: credential from header")
    assert err.count("API key Old Connector") == 1  # the warning too


def test_debug_lines_an_application_stderr_handler_does_not_admit_are_printed_once(
    audit_app, monkeypatch, capsys, app_handlers
):
    monkeypatch.setenv("DEBUG", "auth:keys")
    on_stderr = logging.StreamHandler(sys.stderr)
    on_stderr.setLevel(logging.WARNING)
    on_stderr.setFormatter(logging.Formatter("app %(levelname)s %(message)s"))
    attach(app_handlers, "flask_mcp_auth", on_stderr)
    audit_app(MCP_AUDIT_LOG="off")
    lines = capsys.readouterr().err.splitlines()
    loaded = [line for line in lines if "loaded 2 API key(s)" in line]
    assert len(loaded) == 1 and " auth:keys loaded 2 API key(s)" in loaded[0]  # DEBUG's format
    expired = [line for line in lines if "API key Old Connector" in line]
    assert len(expired) == 1 and expired[0].startswith("app WARNING API key Old Connector")


def test_a_handler_on_a_stream_replaced_since_still_gets_the_debug_lines_printed(
    audit_app, monkeypatch, capsys, app_handlers
):
    """A StreamHandler on an earlier sys.stderr does not write to the current one."""
    import io

    earlier = io.StringIO()
    attach(app_handlers, "", logging.StreamHandler(earlier))
    monkeypatch.setenv("DEBUG", "auth:keys")
    audit_app(MCP_AUDIT_LOG="off")
    assert "loaded 2 API key(s)" in earlier.getvalue()
    assert " auth:keys loaded 2 API key(s)" in capsys.readouterr().err
