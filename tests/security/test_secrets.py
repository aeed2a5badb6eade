"""Secrets never leave: no key id or presented credential in logs, bodies, headers or reprs."""

from __future__ import annotations

import logging
import secrets
import traceback
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask, request
from support.flask_app import build_app
from werkzeug.exceptions import HTTPException

from flask_mcp_auth import APIKey, KeyStore, MCPAuthError, Principal, generate_api_key
from flask_mcp_auth.credentials import Credential, extract_credential
from flask_mcp_auth.principal import current_principal

SOURCES = ["header", "bearer", "query"]


class Secrets:
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


def send(app: Flask, source: str, credential: str, method: str, path: str) -> Any:
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
@pytest.mark.parametrize("source", SOURCES)
def test_no_secret_in_logs_bodies_headers_or_reprs(
    caplog: pytest.LogCaptureFixture, source: str, default_role: str
) -> None:
    caplog.set_level(logging.DEBUG)
    values = Secrets()
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
            response = send(app, source, credential, method, path)
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
    values = Secrets()
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
    values = Secrets()
    build_app(values.key_store, JWT_SECRET=values.jwt_secret)
    assert any("expired" in r.getMessage() for r in caplog.records)
    values.assert_absent(log_text(caplog.records), "a start-up log record")
