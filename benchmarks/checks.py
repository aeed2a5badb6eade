"""What each stack must do before it is timed; every check raises if the stack does not."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import stacks
from common import call, make_environ

from flask_mcp_auth.audit import flush

Check = Callable[[Any, dict[str, Any]], None]


def expect_ok(app: Any, environ: dict[str, Any]) -> None:
    status, _headers, body = call(app, environ)
    if status != 200 or json.loads(body) != {"ok": True}:
        raise AssertionError(f"expected 200 {{'ok': true}}, got {status} {body[:200]!r}")


def expect_refusal(app: Any, environ: dict[str, Any]) -> None:
    """Without a key and with a wrong key the stack answers 401: it really authenticates."""
    for headers in ({}, {stacks.HEADER: stacks.API_KEY[:-4] + "AAAA"}):
        status, _headers, _body = call(app, make_environ(headers))
        if status != 401:
            raise AssertionError(f"expected 401 with headers {sorted(headers)}, got {status}")


def expect_rate_limit_headers(app: Any, environ: dict[str, Any]) -> None:
    _status, headers, _body = call(app, environ)
    if "X-RateLimit-Limit" not in headers:
        raise AssertionError("the key's rate limit is not applied (no X-RateLimit-Limit header)")


def expect_audit_line(path: Path) -> Check:
    def check(app: Any, environ: dict[str, Any]) -> None:
        before = path.stat().st_size if path.exists() else 0
        call(app, environ)
        flush()  # the line may still be in the batch that is written within 100 ms
        if not path.exists() or path.stat().st_size <= before:
            raise AssertionError(f"no audit line was written to {path}")

    return check
