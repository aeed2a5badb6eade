"""Secrets never leave: a key id or presented credential appears in no log, body,
header or repr.

Three ways in: the Werkzeug development server in-process and a real gunicorn
subprocess (access log on, the package's logger class), both with DEBUG=auth:* and
the audit log written to a file; and the Flask test client with every logger at
DEBUG, plain and signed keys through success, unknown, forged and expired.
"""

from __future__ import annotations

import json
import logging
import secrets
import socket
import subprocess
import threading
import traceback
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, request
from support.audit import RecordingHandler, add_test_views
from support.flask_app import build_app
from support.paths import TESTS_DIR
from support.servers import GunicornServer, stop_process
from werkzeug.exceptions import HTTPException
from werkzeug.serving import make_server

from flask_mcp_auth import (
    APIKey,
    KeyStore,
    MCPAuth,
    MCPAuthError,
    Principal,
    current_principal,
    generate_api_key,
)
from flask_mcp_auth.audit import flush as flush_audit_lines
from flask_mcp_auth.credentials import Credential, extract_credential
from flask_mcp_auth.keys.signing import SIGNATURE_LENGTH

pytestmark = pytest.mark.usefixtures("clean_logging")


# -- over real servers -------------------------------------------------------------

JWT_SECRET = "test-signing-secret"


@dataclass
class Secrets:
    """Fresh values for one run; none of them may appear in any output."""

    live: str = field(default_factory=lambda: "live" + secrets.token_hex(16))
    expired: str = field(default_factory=lambda: "old" + secrets.token_hex(16))
    wrong: str = field(default_factory=lambda: "wrong" + secrets.token_hex(16))
    signed_id: str = field(default_factory=lambda: "signed" + secrets.token_hex(16))

    @property
    def signed(self) -> str:
        return generate_api_key(self.signed_id, JWT_SECRET)

    def forbidden_values(self) -> list[str]:
        # In plain mode the key id is the secret; a signed key is secret as a whole
        # and its signature alone must not leak either.  The signature is cut by
        # length: its base64url alphabet contains "_", so splitting on "_" could
        # yield a one-letter fragment that matches ordinary text.
        signature = self.signed[-SIGNATURE_LENGTH:]
        return [self.live, self.expired, self.wrong, self.signed, signature]

    def keys_json(self) -> str:
        return json.dumps(
            {
                self.live: {"name": "Live", "userId": "u1", "role": "user", "permissions": ["*"]},
                self.expired: {"name": "Expired", "expiresAt": "2020-01-01T00:00:00Z"},
                self.signed_id: {"name": "Signed", "role": "developer", "permissions": ["*"]},
            }
        )


def requests_to_send(s: Secrets) -> list[tuple[str, str, dict[str, str]]]:
    """(method, path, headers): every way in, every outcome."""
    return [
        ("GET", "/data", {"X-API-Key": s.live}),
        ("GET", "/data", {"Authorization": f"Bearer {s.live}"}),
        ("GET", f"/data?api_key={s.live}", {}),
        ("GET", f"/data?x=1&api_key={s.live}&y=2", {}),
        ("GET", f"/data?api%5Fkey={s.live}", {}),
        ("GET", f"/data?api_key={s.signed}", {}),
        ("GET", "/data", {"Authorization": f"Bearer {s.signed}"}),
        ("GET", f"/mcp/status?api_key={s.live}", {"Referer": f"http://x.test/?api_key={s.live}"}),
        ("GET", f"/data?api_key={s.wrong}", {}),
        ("GET", "/data", {"X-API-Key": s.wrong}),
        ("GET", "/data", {"Authorization": f"Bearer {s.wrong}"}),
        ("GET", f"/data?api_key={s.expired}", {}),
        ("GET", "/data", {"X-API-Key": s.expired}),
        ("GET", f"/forbidden?api_key={s.live}", {}),
        ("GET", "/forbidden", {"X-API-Key": s.wrong}),
        ("POST", f"/forbidden?api_key={s.live}", {"Content-Type": "application/json"}),
        ("GET", f"/limited?api_key={s.live}", {}),
        ("GET", "/limited", {"Authorization": f"Bearer {s.signed}"}),
        ("GET", f"/boom?api_key={s.live}", {}),
    ]


JSONRPC_BODY = json.dumps({"jsonrpc": "2.0", "id": 7, "method": "tools/call"}).encode()


def send(base_url: str, method: str, path: str, headers: dict[str, str]) -> tuple[int, str]:
    """Send one request; return (status, status line + headers + body as text)."""
    body = JSONRPC_BODY if method == "POST" else None
    req = urllib.request.Request(base_url + path, data=body, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=20) as response:
            return response.status, f"{response.headers}\n{response.read().decode()}"
    except urllib.error.HTTPError as error:
        return error.code, f"{error.headers}\n{error.read().decode()}"


def add_views(app: Flask) -> None:
    add_test_views(app)
    app.add_url_rule(
        "/forbidden", "forbidden_post", app.view_functions["forbidden"], methods=["POST"]
    )


EXPECTED_STATUSES = [200, 200, 200, 200, 200, 200, 200, 200, 401, 401, 401, 401, 401]
EXPECTED_STATUSES += [403, 401, 403, 429, 429, 500]


def assert_no_secret(s: Secrets, outputs: dict[str, str]) -> None:
    for where, text in outputs.items():
        for value in s.forbidden_values():
            assert value not in text, f"a secret leaked into {where}"


# -- Werkzeug development server, in-process -------------------------------------------


@pytest.fixture
def werkzeug_server() -> Iterator[Any]:
    servers: list[Any] = []

    def start(app: Flask) -> str:
        server = make_server("127.0.0.1", 0, app)
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
        thread.start()
        servers.append((server, thread))
        return f"http://127.0.0.1:{server.server_port}"

    yield start
    for server, thread in servers:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_secrets_never_logged_by_the_development_server(
    werkzeug_server, all_records: RecordingHandler, tmp_path, monkeypatch, capfd
):
    s = Secrets()
    audit_file = tmp_path / "audit.log"
    monkeypatch.setenv("DEBUG", "auth:*")
    monkeypatch.setenv("MCP_API_KEYS", s.keys_json())
    monkeypatch.setenv("JWT_SECRET", JWT_SECRET)
    monkeypatch.setenv("MCP_AUDIT_LOG", str(audit_file))
    app = Flask("secret_app")
    MCPAuth(app)
    add_views(app)
    base_url = werkzeug_server(app)

    responses = {}
    statuses = []
    for index, (method, path, headers) in enumerate(requests_to_send(s)):
        status, text = send(base_url, method, path, headers)
        statuses.append(status)
        responses[f"response {index}"] = text
    assert statuses == EXPECTED_STATUSES

    flush_audit_lines()
    captured = capfd.readouterr()
    logs = all_records.text()
    audit_lines = audit_file.read_text().splitlines()
    assert_no_secret(
        s,
        {
            **responses,
            "log records": logs,
            "stdout": captured.out,
            "stderr": captured.err,
            "audit log": "\n".join(audit_lines),
        },
    )
    # The paths were really taken: request lines, decisions, events, the traceback.
    assert logs.count("api_key=[REDACTED]") >= 12
    assert "credential from bearer: key Signed" in logs and "expired: 401" in logs
    assert "Exception on /boom [GET]" in logs
    events = [json.loads(line)["event"] for line in audit_lines]
    assert events.count("auth_success") == 9  # including the 500
    assert events.count("auth_failure") == 6
    assert events.count("forbidden") == 2 and events.count("rate_limited") == 2


# -- gunicorn, in a subprocess -----------------------------------------------------------

APP_MODULE = """
from flask import Flask
from flask_mcp_auth import MCPAuth
from support.audit import add_test_views

app = Flask("gunicorn_secret_app")
MCPAuth(app)
add_test_views(app)
app.add_url_rule("/forbidden", "forbidden_post", app.view_functions["forbidden"], methods=["POST"])
"""

# Every atom that can hold a key: the request line, the bare query string, the raw
# URI, the referer and the credential headers.
ACCESS_FORMAT = (
    '%(h)s "%(r)s" %(s)s q=%(q)s U=%(U)s f="%(f)s" hk=%({x-api-key}i)s '
    'auth="%({authorization}i)s" raw=%({raw_uri}e)s qs=%({query_string}e)s'
)


@dataclass
class Gunicorn:
    process: subprocess.Popen[bytes]
    base_url: str
    directory: Path


@pytest.fixture
def gunicorn_server(tmp_path: Path) -> Iterator[Any]:
    servers: list[GunicornServer] = []

    def start(environment: dict[str, str]) -> Gunicorn:
        (tmp_path / "secret_app.py").write_text(APP_MODULE)
        (tmp_path / "gunicorn.conf.py").write_text(
            "workers = 1\n"
            f"accesslog = {str(tmp_path / 'access.log')!r}\n"
            f"errorlog = {str(tmp_path / 'error.log')!r}\n"
            "loglevel = 'debug'\n"
            f"access_log_format = {ACCESS_FORMAT!r}\n"
            'logger_class = "flask_mcp_auth.redaction.GunicornLogger"\n'
        )
        server = GunicornServer(
            "secret_app:app",
            config=tmp_path / "gunicorn.conf.py",
            env=environment,
            ready_path="/mcp/status",
            cwd=tmp_path,
            pythonpath=[tmp_path, TESTS_DIR],
            log_path=tmp_path / "output.log",
        )
        servers.append(server)
        server.start()
        assert server.process is not None
        return Gunicorn(server.process, server.url, tmp_path)

    yield start
    for server in servers:
        server.stop()


def send_raw(base_url: str, request_line: str) -> None:
    """A malformed request, so that gunicorn's error log sees the request line."""
    host, port = base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request_line.encode() + b"\r\nHost: x\r\n\r\n")
        sock.recv(4096)


def test_secrets_never_logged_by_gunicorn(gunicorn_server):
    s = Secrets()
    server = gunicorn_server(
        {
            "DEBUG": "auth:*",
            "MCP_API_KEYS": s.keys_json(),
            "JWT_SECRET": JWT_SECRET,
            "MCP_AUDIT_LOG": "audit.log",
        }
    )
    responses = {}
    statuses = []
    for index, (method, path, headers) in enumerate(requests_to_send(s)):
        status, text = send(server.base_url, method, path, headers)
        statuses.append(status)
        responses[f"response {index}"] = text
    assert statuses == EXPECTED_STATUSES
    send_raw(server.base_url, f"GET /data?api_key={s.live}")  # no HTTP version: rejected
    send_raw(server.base_url, f"GET  /data?x=1&api_key={s.live} HTTP/1.1")
    stop_process(server.process)

    files = {p.name: p.read_text() for p in server.directory.glob("*.log")}
    assert {"access.log", "error.log", "output.log", "audit.log"} <= set(files)
    assert_no_secret(s, {**responses, **files})
    # The logs did record the requests, with the key positions redacted.
    access = files["access.log"]
    assert len(access.splitlines()) == len(EXPECTED_STATUSES) + 1  # + the readiness probe
    assert "q=api_key=[REDACTED]" in access and "qs=api_key=[REDACTED]" in access
    assert "raw=/data?api_key=[REDACTED]" in access
    assert "hk=[REDACTED]" in access and 'auth="[REDACTED]"' in access
    assert 'f="http://x.test/?api_key=[REDACTED]"' in access
    assert "auth:request GET /data: credential from query: key Live" in files["output.log"]
    # The rejected request lines were logged, redacted.
    assert files["error.log"].count("Invalid HTTP request line") == 2
    assert files["error.log"].count("api_key=[REDACTED]") == 2
    assert len(files["audit.log"].splitlines()) == 19


# -- through the test client, and reprs --------------------------------------------

CREDENTIAL_SOURCES = ["header", "bearer", "query"]


class ClientSecrets:
    """Unique values (fresh per test) that must appear nowhere a user or operator can see."""

    def __init__(self) -> None:
        tag = secrets.token_hex(8)
        self.jwt_secret = f"jwt-{tag}-secret"
        self.plain_id = f"plain-{tag}-key"
        self.signed_id = f"signed_{tag}-key"
        self.expired_id = f"expired-{tag}-key"
        self.signed_key = generate_api_key(self.signed_id, self.jwt_secret)
        self.expired_signed_key = generate_api_key(self.expired_id, self.jwt_secret)
        self.unknown_plain = f"unknown-{tag}-key"
        self.forged_key = generate_api_key(self.signed_id, f"other-{tag}")
        self.unknown_signed = generate_api_key(f"nobody-{tag}", self.jwt_secret)

    @property
    def key_store(self) -> dict[str, Any]:
        return {
            self.plain_id: {"name": "Plain", "userId": "u-plain", "role": "user"},
            self.signed_id: {"name": "Signed", "userId": "u-signed", "role": "developer"},
            self.expired_id: {"name": "Expired", "expiresAt": "2020-01-01T00:00:00Z"},
        }

    @property
    def presented(self) -> dict[str, tuple[str, int]]:
        """Every credential a caller presents, with the status it must get."""
        return {
            self.plain_id: (self.plain_id, 200),
            self.signed_key: (self.signed_key, 200),
            self.unknown_plain: (self.unknown_plain, 401),
            self.forged_key: (self.forged_key, 401),
            self.unknown_signed: (self.unknown_signed, 401),
            self.expired_id: (self.expired_id, 401),
            self.expired_signed_key: (self.expired_signed_key, 401),
        }

    def forbidden(self) -> Iterator[str]:
        yield self.jwt_secret
        yield from (self.plain_id, self.signed_id, self.expired_id)
        yield from self.presented
        # the signature part of every signed value, on its own
        for value in (self.signed_key, self.expired_signed_key, self.forged_key):
            yield value[-43:]

    def assert_absent(self, text: str, where: str) -> None:
        for secret in self.forbidden():
            assert secret not in text, f"a secret leaked into {where}"


def send_through(app: Flask, source: str, credential: str, method: str, path: str) -> Any:
    headers: dict[str, str] = {}
    query: dict[str, str] = {}
    if source == "header":
        headers["X-API-Key"] = credential
    elif source == "bearer":
        headers["Authorization"] = f"Bearer {credential}"
    else:
        query["api_key"] = credential
    body = {"jsonrpc": "2.0", "id": 3, "method": "tools/call"} if method == "POST" else None
    return app.test_client().open(
        path, method=method, headers=headers, query_string=query, json=body
    )


def log_text(records: list[logging.LogRecord]) -> str:
    parts = []
    for record in records:
        parts.append(record.getMessage())
        parts.append(repr(record.args))
        if record.exc_info:
            parts.append("".join(traceback.format_exception(*record.exc_info)))
        if record.exc_text:
            parts.append(record.exc_text)
        if record.stack_info:
            parts.append(record.stack_info)
    return "\n".join(parts)


@pytest.mark.parametrize("default_role", ["guest", ""])
@pytest.mark.parametrize("source", CREDENTIAL_SOURCES)
def test_no_secret_in_logs_bodies_headers_or_reprs(
    caplog: pytest.LogCaptureFixture, source: str, default_role: str
) -> None:
    caplog.set_level(logging.DEBUG)
    values = ClientSecrets()
    app = build_app(values.key_store, JWT_SECRET=values.jwt_secret, MCP_DEFAULT_ROLE=default_role)
    principals: list[Principal] = []
    errors: list[HTTPException] = []

    @app.after_request
    def keep_principal(response: Any) -> Any:
        principals.append(current_principal._get_current_object())  # type: ignore[attr-defined]
        return response

    @app.errorhandler(401)
    def keep_error(error: HTTPException) -> Any:
        errors.append(error)
        return error.get_response()

    outcomes = []
    for credential, (_, expected) in values.presented.items():
        for method, path in (("GET", "/whoami"), ("GET", "/mcp/status"), ("POST", "/mcp")):
            response = send_through(app, source, credential, method, path)
            assert response.status_code == expected, (method, path)
            outcomes.append(response)
            values.assert_absent(response.get_data(as_text=True), "a response body")
            values.assert_absent(repr(list(response.headers.items())), "a response header")

    # Every request was logged about (the check above would pass vacuously otherwise)...
    assert any(r.name.startswith("flask_mcp_auth") for r in caplog.records)
    assert len(outcomes) == 21
    # ... and nothing logged, from start-up on, holds a secret.
    values.assert_absent(log_text(caplog.records), "a log record")
    values.assert_absent(caplog.text, "the formatted log")

    assert principals and errors
    for principal in principals:
        values.assert_absent(repr(principal), "repr(Principal)")
        values.assert_absent(str(principal.to_dict()), "Principal.to_dict()")
    for error in errors:
        assert isinstance(error, MCPAuthError)
        values.assert_absent(repr(error) + str(error) + repr(error.data), "an error")


def test_no_secret_in_the_reprs_of_keys_stores_and_credentials() -> None:
    values = ClientSecrets()
    store = KeyStore.load(values.key_store, values.jwt_secret)
    keys: list[APIKey] = list(store)
    assert len(keys) == 3
    for key in keys:
        values.assert_absent(repr(key) + str(key) + key.label, "an APIKey")
        values.assert_absent(repr(Principal.from_key(key, "header")), "a Principal")
    values.assert_absent(repr(store) + str(store), "the KeyStore")

    app = build_app(values.key_store)
    headers = {"X-API-Key": values.signed_key}
    with app.test_request_context("/", headers=headers):
        credential = extract_credential(request, "X-API-Key", True, "api_key")
        assert isinstance(credential, Credential)
        assert credential.value == values.signed_key
        values.assert_absent(repr(credential) + str(credential), "a Credential")


def test_no_secret_in_start_up_warnings_or_debug_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    values = ClientSecrets()
    build_app(values.key_store, JWT_SECRET=values.jwt_secret)
    assert any("expired" in r.getMessage() for r in caplog.records)
    values.assert_absent(log_text(caplog.records), "a start-up log record")
