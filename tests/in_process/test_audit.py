"""Audit events: one JSON line per key use, per 403 and per 429, parsed back field by field."""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from support.audit import AUDIT_FIELDS, RecordingHandler

from flask_mcp_auth import audit, audit_output
from flask_mcp_auth.audit import AUDIT_LOGGER, REQUEST_ID_HEADER
from flask_mcp_auth.keys.model import fingerprint

pytestmark = pytest.mark.usefixtures("clean_logging")

GENERATED_ID = re.compile(r"[0-9a-f]{32}")


def only_event(records: RecordingHandler) -> dict[str, Any]:
    events = records.events()
    assert len(events) == 1, events
    assert set(events[0]) == set(AUDIT_FIELDS)
    return events[0]


def test_success_event_has_every_field(audit_app, audit_records):
    client = audit_app().test_client()
    response = client.post(
        "/created?x=1", headers={"X-API-Key": "live-key"}, environ_base={"REMOTE_ADDR": "10.1.2.3"}
    )
    assert response.status_code == 201

    event = only_event(audit_records)
    ts = datetime.fromisoformat(event["ts"])
    assert ts.tzinfo is not None and ts.utcoffset() == timedelta(0)
    assert abs(datetime.now(UTC) - ts) < timedelta(minutes=5)
    assert event["event"] == "auth_success"
    assert event["reason"] is None
    assert event["name"] == "ChatGPT Connector"
    assert event["key_fingerprint"] == fingerprint("live-key")
    assert event["user_id"] == "connector-user"
    assert event["role"] == "user"
    assert event["method"] == "POST"
    assert event["path"] == "/created"  # never the query string
    assert event["status"] == 201  # the final status, not "authenticated"
    assert event["remote_addr"] == "10.1.2.3"
    assert event["credential_source"] == "header"
    assert event["request_id"] == response.headers[REQUEST_ID_HEADER]
    assert GENERATED_ID.fullmatch(event["request_id"])
    assert isinstance(event["duration_ms"], float) and event["duration_ms"] >= 0


def test_fingerprint_is_keyed_by_the_signing_secret(audit_app, audit_records):
    """The same identifier in every worker and after restarts: derived, not random."""
    client = audit_app(JWT_SECRET="s3cret").test_client()
    client.get("/data", headers={"X-API-Key": "live-key"})
    client.get("/data", headers={"X-API-Key": "live-key"})
    first, second = audit_records.events()
    assert (
        first["key_fingerprint"] == second["key_fingerprint"] == fingerprint("live-key", "s3cret")
    )


@pytest.mark.parametrize(
    ("headers", "query", "source"),
    [
        ({"X-API-Key": "live-key"}, "", "header"),
        ({"Authorization": "Bearer live-key"}, "", "bearer"),
        ({}, "?api_key=live-key", "query"),
    ],
)
def test_credential_source(audit_app, audit_records, headers, query, source):
    response = audit_app().test_client().get(f"/data{query}", headers=headers)
    assert response.status_code == 200
    event = only_event(audit_records)
    assert (event["event"], event["credential_source"], event["path"]) == (
        "auth_success",
        source,
        "/data",
    )


def test_unknown_key_is_a_failure_with_its_reason(audit_app, audit_records):
    response = audit_app().test_client().get("/data?api_key=wrong")
    assert response.status_code == 401
    event = only_event(audit_records)
    assert event["event"] == "auth_failure"
    assert event["reason"] == "invalid_api_key"
    assert event["status"] == 401
    assert event["credential_source"] == "query"
    assert event["name"] is event["key_fingerprint"] is event["user_id"] is None


def test_expired_key_failure_names_the_key(audit_app, audit_records):
    response = audit_app().test_client().get("/data", headers={"Authorization": "Bearer old-key"})
    assert response.status_code == 401
    event = only_event(audit_records)
    assert (event["event"], event["reason"], event["credential_source"]) == (
        "auth_failure",
        "api_key_expired",
        "bearer",
    )
    assert event["name"] == "Old Connector"
    assert event["key_fingerprint"] == fingerprint("old-key")
    assert event["user_id"] == "old-user"


def test_reason_survives_an_application_errorhandler(audit_app, audit_records):
    app = audit_app()

    @app.errorhandler(401)
    def custom_401(error: Exception) -> tuple[str, int]:
        return "go away", 401

    response = app.test_client().get("/data", headers={"X-API-Key": "nope"})
    assert response.get_data(as_text=True) == "go away"
    event = only_event(audit_records)
    assert (event["event"], event["reason"], event["status"]) == (
        "auth_failure",
        "invalid_api_key",
        401,
    )
    assert response.headers[REQUEST_ID_HEADER] == event["request_id"]


@pytest.mark.parametrize(
    ("headers", "name", "role"),
    [({}, None, "guest"), ({"X-API-Key": "live-key"}, "ChatGPT Connector", "user")],
    ids=["anonymous", "authenticated"],
)
def test_forbidden_event(audit_app, audit_records, headers, name, role):
    response = audit_app().test_client().get("/forbidden", headers=headers)
    assert response.status_code == 403
    event = only_event(audit_records)
    assert (event["event"], event["reason"], event["status"]) == (
        "forbidden",
        "insufficient_permissions",
        403,
    )
    assert (event["name"], event["role"]) == (name, role)


def test_any_403_is_audited_even_without_a_reason(audit_app, audit_records):
    assert audit_app().test_client().get("/plain-403").status_code == 403
    event = only_event(audit_records)
    assert (event["event"], event["reason"], event["credential_source"]) == (
        "forbidden",
        None,
        None,
    )


@pytest.mark.parametrize(
    ("path", "headers", "reason", "source"),
    [
        ("/limited", {}, "rate_limit_exceeded", None),
        ("/limited", {"X-API-Key": "live-key"}, "rate_limit_exceeded", "header"),
        ("/too-many-failures", {}, "too_many_failed_attempts", None),
    ],
)
def test_rate_limited_event(audit_app, audit_records, path, headers, reason, source):
    response = audit_app().test_client().get(path, headers=headers)
    assert response.status_code == 429
    event = only_event(audit_records)
    assert (event["event"], event["reason"], event["status"], event["credential_source"]) == (
        "rate_limited",
        reason,
        429,
        source,
    )


def test_429_raised_in_a_before_request_hook_is_audited(audit_app, audit_records):
    """Errors raised in before_request (where a limiter runs) still reach the audit hook."""
    from flask_mcp_auth.errors import RateLimitExceeded

    app = audit_app()

    @app.before_request
    def limiter() -> None:
        raise RateLimitExceeded()

    response = app.test_client().get("/data", headers={"X-API-Key": "live-key"})
    assert response.status_code == 429
    event = only_event(audit_records)
    assert (event["event"], event["name"]) == ("rate_limited", "ChatGPT Connector")


def test_server_error_after_authentication_is_audited_with_500(audit_app, audit_records):
    app = audit_app(TESTING=False)
    app.logger.disabled = True  # the traceback Flask logs is not under test here
    try:
        response = app.test_client().get("/boom", headers={"X-API-Key": "live-key"})
    finally:
        app.logger.disabled = False
    assert response.status_code == 500
    event = only_event(audit_records)
    assert (event["event"], event["status"]) == ("auth_success", 500)


def test_anonymous_success_writes_no_event_but_gets_a_request_id(audit_app, audit_records):
    response = audit_app().test_client().get("/data")
    assert response.status_code == 200
    assert audit_records.events() == []
    assert GENERATED_ID.fullmatch(response.headers[REQUEST_ID_HEADER])


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("req-42.abc:def_1", True),
        ("3f6c0a0e-8d3b-4d8e-9a55-0c2c0e9c6b1a", True),
        ("x" * 128, True),
        ("x" * 129, False),
        ("bad id", False),
        ("<script>", False),
        ('a"b', False),
        ("", False),
    ],
)
def test_request_id_is_the_callers_if_sane(audit_app, audit_records, sent, kept):
    response = (
        audit_app()
        .test_client()
        .get("/data", headers={"X-API-Key": "live-key", REQUEST_ID_HEADER: sent})
    )
    echoed = response.headers[REQUEST_ID_HEADER]
    assert only_event(audit_records)["request_id"] == echoed
    if kept:
        assert echoed == sent
    else:
        assert GENERATED_ID.fullmatch(echoed)


def test_control_characters_in_the_path_stay_on_one_line(audit_app, tmp_path):
    log_file = tmp_path / "audit.log"
    client = audit_app(MCP_AUDIT_LOG=str(log_file)).test_client()
    client.get("/data%0a%7B%22event%22:%22forged%22%7D", headers={"X-API-Key": "live-key"})
    audit.flush()
    lines = log_file.read_text().splitlines()
    assert len(lines) == 1
    assert json.loads(lines[0])["path"] == '/data\n{"event":"forged"}'


# -- where the lines go ---------------------------------------------------------------


def test_default_is_stderr_one_json_object_per_line(audit_app, capsys):
    client = audit_app().test_client()
    client.get("/data", headers={"X-API-Key": "live-key"})
    client.get("/data", headers={"X-API-Key": "wrong"})
    audit.flush()
    err = capsys.readouterr().err
    events = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert [e["event"] for e in events] == ["auth_success", "auth_failure"]


def test_an_application_handler_replaces_the_stderr_default(audit_app, audit_records, capsys):
    audit_app().test_client().get("/data", headers={"X-API-Key": "live-key"})
    audit.flush()
    assert '"event"' not in capsys.readouterr().err
    assert len(audit_records.events()) == 1


def test_stdout_destination(audit_app, capsys):
    audit_app(MCP_AUDIT_LOG="stdout").test_client().get("/data", headers={"X-API-Key": "live-key"})
    audit.flush()
    out = capsys.readouterr().out
    assert json.loads(out.strip())["event"] == "auth_success"


def test_file_destination_from_the_environment(audit_app, tmp_path, monkeypatch):
    log_file = tmp_path / "audit.log"
    monkeypatch.setenv("MCP_AUDIT_LOG", str(log_file))
    client = audit_app().test_client()
    client.get("/data", headers={"X-API-Key": "live-key"})
    client.get("/forbidden")
    audit.flush()
    events = [json.loads(line) for line in log_file.read_text().splitlines()]
    assert [e["event"] for e in events] == ["auth_success", "forbidden"]


def test_off_writes_nothing_and_adds_no_hooks(audit_app, audit_records, tmp_path):
    app = audit_app(MCP_AUDIT_LOG="off")
    response = app.test_client().get("/data", headers={"X-API-Key": "live-key"})
    assert response.status_code == 200
    assert audit_records.events() == []
    assert REQUEST_ID_HEADER not in response.headers
    assert audit.finish_request not in app.after_request_funcs.get(None, [])


def test_logger_level_set_by_the_application_silences_events(audit_app, audit_records):
    logging.getLogger(AUDIT_LOGGER).setLevel(logging.WARNING)
    try:
        response = audit_app().test_client().get("/data", headers={"X-API-Key": "live-key"})
    finally:
        logging.getLogger(AUDIT_LOGGER).setLevel(logging.NOTSET)
    assert response.status_code == 200
    assert audit_records.events() == []


# -- a failing destination never fails a request ------------------------------------------


@pytest.fixture
def failure_reports(monkeypatch: pytest.MonkeyPatch) -> RecordingHandler:
    """Reports of failed audit writes, with a fresh once-a-minute throttle."""
    monkeypatch.setattr(audit_output, "report_write_failure", audit_output._FailureReporter())
    handler = RecordingHandler()
    logger = logging.getLogger("flask_mcp_auth")
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


def test_unwritable_audit_file_does_not_break_requests(audit_app, tmp_path, failure_reports):
    not_a_directory = tmp_path / "file"
    not_a_directory.write_text("")
    client = audit_app(MCP_AUDIT_LOG=str(not_a_directory / "audit.log")).test_client()
    for _ in range(3):
        response = client.get("/data", headers={"X-API-Key": "live-key"})
        assert response.status_code == 200
        assert response.get_json() == {"ok": True}
    # Reported once at start-up; later failures are counted, not repeated each request.
    errors = [r for r in failure_reports.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert "could not write the audit log" in errors[0].getMessage()
    assert "NotADirectoryError" in errors[0].getMessage()


@pytest.mark.skipif(
    not Path("/dev/full").exists(), reason="needs /dev/full to simulate a full disk"
)
def test_full_disk_does_not_break_requests(audit_app, failure_reports):
    client = audit_app(MCP_AUDIT_LOG="/dev/full").test_client()
    response = client.get("/data", headers={"X-API-Key": "live-key"})
    assert response.status_code == 200
    audit.flush()  # the batch holding the line is written (and fails) now
    errors = [r.getMessage() for r in failure_reports.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "No space left on device" in errors[0]
    assert "1 audit line(s) lost" in errors[0]


def test_a_raising_application_handler_does_not_break_requests(audit_app, failure_reports):
    class Broken(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            # Unlike logging's own handlers, it does not catch its errors.
            raise OSError(28, "No space left on device")

    broken = Broken()
    logging.getLogger(AUDIT_LOGGER).addHandler(broken)
    try:
        client: Any = audit_app().test_client()
        response = client.get("/forbidden", headers={"X-API-Key": "live-key"})
    finally:
        logging.getLogger(AUDIT_LOGGER).removeHandler(broken)
    assert response.status_code == 403
    errors = [r.getMessage() for r in failure_reports.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "OSError" in errors[0]


def test_failure_report_reaches_stderr_without_any_logging_configured(
    audit_app, tmp_path, monkeypatch, capsys
):
    monkeypatch.setattr(audit_output, "report_write_failure", audit_output._FailureReporter())
    monkeypatch.setattr(logging.getLogger(), "handlers", [])  # no logging configured at all
    app: Flask = audit_app(MCP_AUDIT_LOG=str(tmp_path / "missing-dir" / "sub" / "audit.log"))
    assert app.test_client().get("/data", headers={"X-API-Key": "live-key"}).status_code == 200
    assert "could not write the audit log" in capsys.readouterr().err


def test_handlers_and_filters_added_after_init_app_are_honoured(audit_app, tmp_path):
    """Lines go straight to the file only while it is the logger's single output."""
    log_file = tmp_path / "audit.log"
    client = audit_app(MCP_AUDIT_LOG=str(log_file)).test_client()
    client.get("/data", headers={"X-API-Key": "live-key"})

    late = RecordingHandler()
    logger = logging.getLogger(AUDIT_LOGGER)
    logger.addHandler(late)
    client.get("/forbidden", headers={"X-API-Key": "live-key"})
    assert [e["event"] for e in late.events()] == ["forbidden"]

    def drop_rate_limited(record: logging.LogRecord) -> bool:
        return '"event":"rate_limited"' not in record.getMessage()

    logger.removeHandler(late)
    logger.addFilter(drop_rate_limited)
    try:
        client.get("/limited", headers={"X-API-Key": "live-key"})
    finally:
        logger.removeFilter(drop_rate_limited)
    client.get("/data?api_key=wrong")
    audit.flush()
    events = [json.loads(line)["event"] for line in log_file.read_text().splitlines()]
    assert events == ["auth_success", "forbidden", "auth_failure"]


def test_generated_request_ids_are_unique_in_a_process_and_across_a_fork() -> None:
    import os

    from flask_mcp_auth.audit import request_id_from

    ids = {request_id_from(None) for _ in range(1000)}
    assert len(ids) == 1000 and all(GENERATED_ID.fullmatch(i) for i in ids)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # a forked worker: its ids must not repeat the parent's
        os.write(write_end, request_id_from(None).encode())
        os._exit(0)
    os.close(write_end)
    child_id = os.read(read_end, 64).decode()
    os.waitpid(pid, 0)
    parent_next = request_id_from(None)
    assert GENERATED_ID.fullmatch(child_id)
    assert child_id[:16] != parent_next[:16]
    assert child_id not in ids


def test_an_application_raised_error_keeps_its_reason_under_an_errorhandler(
    audit_app, audit_records
):
    app = audit_app()

    @app.errorhandler(403)
    def custom_403(error: Exception) -> tuple[str, int]:
        return "no", 403

    response = app.test_client().get("/forbidden", headers={"X-API-Key": "live-key"})
    assert response.get_data(as_text=True) == "no"
    event = only_event(audit_records)
    assert (event["event"], event["reason"], event["status"]) == (
        "forbidden",
        "insufficient_permissions",
        403,
    )


@pytest.mark.parametrize(
    ("key", "event", "reason"),
    [
        ("nope", "auth_failure", "invalid_api_key"),
        ("live-key", "auth_success", "oauth_not_supported"),
    ],
    ids=["refused", "accepted"],
)
def test_a_key_sent_to_a_discovery_url_is_audited(audit_app, audit_records, key, event, reason):
    response = audit_app().test_client().post("/register", headers={"X-API-Key": key})
    assert response.status_code == 404
    line = only_event(audit_records)
    assert (line["event"], line["reason"], line["status"], line["path"]) == (
        event,
        reason,
        404,
        "/register",
    )
    assert line["credential_source"] == "header"
    assert "nope" not in json.dumps(line)  # a refused value is never written


def test_a_request_an_earlier_hook_answered_never_sees_the_previous_request(audit_records):
    """With one app context around several requests, a request whose extension hook never
    ran (an earlier before_request hook answered) is no one: not the previous caller."""
    from flask import abort, request

    from flask_mcp_auth import MCPAuth, current_principal

    app = Flask("earlier_hook")
    app.config["MCP_API_KEYS"] = json.dumps({"live-key": {"name": "Live", "role": "user"}})

    @app.before_request
    def earlier() -> Any:
        if request.path == "/early":
            abort(403)
        if request.path == "/who":
            return {"name": current_principal.name, "role": current_principal.role}
        return None

    @app.get("/data")
    def data() -> dict[str, bool]:
        return {"ok": True}

    MCPAuth(app)
    client = app.test_client()
    with app.app_context():
        assert client.get("/data", headers={"X-API-Key": "live-key"}).status_code == 200
        assert client.get("/early").status_code == 403
        assert client.get("/who").get_json() == {"name": None, "role": None}
    events = audit_records.events()
    assert [(e["event"], e["name"], e["path"]) for e in events] == [
        ("auth_success", "Live", "/data"),
        ("forbidden", None, "/early"),
    ]
    assert events[0]["request_id"] != events[1]["request_id"]
