"""The audit log: one JSON object per line on the ``flask_mcp_auth.audit`` logger.

An event is written for every request that presents a credential (``auth_success``
with the final status, or ``auth_failure`` with its reason), and for every 403
(``forbidden``) and 429 (``rate_limited``), anonymous callers included.  Every
response carries ``X-Request-ID``: the caller's value when it is sane, else a
generated one, also written in the event.

The events are written by an ``after_request`` hook, which Flask runs for
responses made from errors raised in ``before_request`` hooks and views too.
Everything an event says comes from the request context
(:mod:`flask_mcp_auth.context`): the principal, the credential source, and the
:class:`~flask_mcp_auth.errors.MCPAuthError` that refused the request, so the
reason is right even when an ``app.errorhandler(401)`` replaced the body.

Where the lines go is ``MCP_AUDIT_LOG``: ``stderr`` (the default when the
application configured no handler on the logger), ``stdout``, a file path, or
``off``.  A failed write never fails the request: it is reported as an error
on the ``flask_mcp_auth`` logger, at most once a minute (on stderr when the
application configured no logging: :mod:`flask_mcp_auth.logs`).
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import re
import sys
import threading
import time
from logging.handlers import WatchedFileHandler
from typing import Any

from flask import request
from werkzeug.wrappers import Response

from . import context
from .context import RequestContext
from .logs import StderrHandler

AUDIT_LOGGER = "flask_mcp_auth.audit"
audit_log = logging.getLogger(AUDIT_LOGGER)
log = logging.getLogger("flask_mcp_auth")

REQUEST_ID_HEADER = "X-Request-ID"
#: A caller's request id is kept if it is 1-128 characters of this safe set.
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:+=/@-]{1,128}")

AUTH_SUCCESS = "auth_success"
AUTH_FAILURE = "auth_failure"
FORBIDDEN = "forbidden"
RATE_LIMITED = "rate_limited"

_STREAMS = ("stderr", "stdout")
OFF = "off"

#: How often (seconds) a failing audit destination is reported.
FAILURE_REPORT_INTERVAL = 60.0
#: How often (seconds) an audit file is checked for rotation (renamed or deleted).
ROTATION_CHECK_INTERVAL = 1.0


# -- where the lines go ---------------------------------------------------------


class _FailureReporter:
    """Reports failed audit writes: the first one, then at most once an interval."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last_report = float("-inf")
        self._lost = 0

    def __call__(self, error: BaseException | None) -> None:
        with self._lock:
            self._lost += 1
            now = time.monotonic()
            if now - self._last_report < FAILURE_REPORT_INTERVAL:
                return
            lost, self._lost, self._last_report = self._lost, 0, now
        what = f"{type(error).__name__}: {error}" if error is not None else "unknown error"
        # With no logging configured, the package's stderr fallback prints it.
        log.error(
            "could not write the audit log (%s); %d audit line(s) lost since the last "
            "report. Requests are still being served.",
            what,
            lost,
        )


report_write_failure = _FailureReporter()


class _OwnedHandler(logging.Handler):
    """Base of the handlers this module installs: they report failures, never raise."""

    def handleError(self, record: logging.LogRecord) -> None:
        report_write_failure(sys.exc_info()[1])

    def format(self, record: logging.LogRecord) -> str:
        return record.getMessage()  # the line is already the JSON object

    def write_line(self, line: str) -> None:
        """Write one line without building a LogRecord: the per-request fast path."""
        self.acquire()
        try:
            self._write_line(line)
        except Exception as error:
            report_write_failure(error)
        finally:
            self.release()

    def _write_line(self, line: str) -> None:
        raise NotImplementedError


class _AuditStreamHandler(_OwnedHandler, StderrHandler):
    def _write_line(self, line: str) -> None:
        stream = self.stream
        stream.write(line + "\n")
        stream.flush()


class _AuditFileHandler(_OwnedHandler, WatchedFileHandler):
    """Appends to a file; reopens it after log rotation, retries opening after a failure.

    Rotation is checked (a ``stat`` of the path) at most every
    ROTATION_CHECK_INTERVAL seconds, not for every line, where it cost about
    as much as the rest of the write.  Lines written in between still land,
    in the file that was just renamed.
    """

    _next_rotation_check = 0.0

    def _write_line(self, line: str) -> None:
        now = time.monotonic()
        if now >= self._next_rotation_check:
            self._next_rotation_check = now + ROTATION_CHECK_INTERVAL
            self.reopenIfNeeded()
        if self.stream is None:
            self.stream = self._open()
        self.stream.write(line + "\n")
        self.stream.flush()


#: The handler lines can be written to directly, while it is the logger's only output.
_direct_handler: _OwnedHandler | None = None


def _write_event(line: str) -> None:
    handler = _direct_handler
    handlers = audit_log.handlers
    if (
        handler is not None
        and len(handlers) == 1
        and handlers[0] is handler
        and not audit_log.propagate
        and not audit_log.filters
        and not handler.filters
    ):
        handler.write_line(line)  # the same bytes logging would write, without a LogRecord
    else:
        audit_log.info(line)  # the application added handlers or filters: honour them


def _owned(handler: logging.Handler) -> bool:
    return isinstance(handler, _OwnedHandler)


_saved_propagate: list[bool] = []


def audit_enabled(destination: str | None) -> bool:
    """False when ``MCP_AUDIT_LOG`` is ``off``: then no hooks run and nothing costs."""
    return (destination or "").strip().lower() != OFF


def configure_audit_output(destination: str | None) -> logging.Handler | None:
    """Point the audit logger at ``destination`` (an ``MCP_AUDIT_LOG`` value).

    None: stderr unless the application put a handler on the logger.  Logging
    is process-wide: the last call wins.  Returns the handler installed, if any.
    """
    global _direct_handler
    _direct_handler = None
    for previous in [h for h in audit_log.handlers if _owned(h)]:
        audit_log.removeHandler(previous)
        try:
            previous.close()
        except OSError as error:  # flushing what was left failed (e.g. a full disk)
            report_write_failure(error)
    if _saved_propagate:
        audit_log.propagate = _saved_propagate.pop()
    audit_log.disabled = False  # logging.config.dictConfig may have disabled it
    if audit_log.level == logging.NOTSET:
        audit_log.setLevel(logging.INFO)

    target = (destination or "").strip()
    if target.lower() == OFF:
        return None
    if not target:
        if audit_log.handlers:
            return None  # the application chose where audit lines go
        target = "stderr"

    handler: _OwnedHandler
    if target.lower() in _STREAMS:
        handler = _AuditStreamHandler(target.lower())
    else:
        path = os.path.abspath(os.path.expanduser(target))
        handler = _AuditFileHandler(path, encoding="utf-8", delay=True)
        _check_writable(path)
    audit_log.addHandler(handler)
    audit_log.setLevel(logging.INFO)
    # The lines go where MCP_AUDIT_LOG says, once, not also to the root logger.
    _saved_propagate.append(audit_log.propagate)
    audit_log.propagate = False
    _direct_handler = handler
    return handler


def _check_writable(path: str) -> None:
    """Report an unwritable audit file at start-up; requests are served regardless."""
    try:
        with open(path, "a", encoding="utf-8"):
            pass
    except OSError as error:
        report_write_failure(error)


# -- per request ------------------------------------------------------------------


def request_id_from(value: str | None) -> str:
    """The caller's request id if sane, else a new unique one."""
    if value is not None and _SANE_REQUEST_ID.fullmatch(value):
        return value
    return f"{_id_prefix}{next(_id_counter):016x}"


# Generated ids are a random per-process prefix and a counter: unique across
# workers and restarts without a system call per request (os.urandom was the
# largest single cost of the audit hooks). A request id is a correlation handle,
# not a secret, so it need not be unpredictable.
def _new_id_prefix() -> None:
    global _id_prefix, _id_counter
    _id_prefix = os.urandom(8).hex()
    _id_counter = itertools.count()


_id_prefix = ""
_id_counter = itertools.count()
_new_id_prefix()
os.register_at_fork(after_in_child=_new_id_prefix)  # forked workers must not share ids


_REQUEST_ID_ENVIRON = "HTTP_" + REQUEST_ID_HEADER.upper().replace("-", "_")


def begin_request(request_context: RequestContext, environ: dict[str, Any]) -> None:
    """Stamp the start of the request and its id (called first by the request hook)."""
    request_context.started = time.perf_counter()
    request_context.request_id = request_id_from(environ.get(_REQUEST_ID_ENVIRON))


def finish_request(response: Response) -> Response:
    """The ``after_request`` hook: X-Request-ID on every response, the event where due."""
    request_context = context.current()
    status = response.status_code
    if request_context is None:  # an earlier before_request hook answered: no credential read
        request_id = request_id_from(None)
        source = None
    else:
        request_id = request_context.request_id or request_id_from(None)
        source = request_context.credential_source
    response.headers[REQUEST_ID_HEADER] = request_id
    if source is None and status != 403 and status != 429:
        return response
    if not audit_log.isEnabledFor(logging.INFO):
        return response
    try:
        _write_event(_event_line(request_context, status, source, request_id))
    except Exception as error:  # a handler the application added raised
        report_write_failure(error)
    return response


# One compact encoder for every line: json.dumps(..., separators=...) builds a new
# JSONEncoder per call.
_encode_line = json.JSONEncoder(separators=(",", ":")).encode

_second_prefix: tuple[int, str] = (0, "")


def _timestamp() -> str:
    """Now, ISO 8601 UTC with milliseconds; the formatted second is reused within a second."""
    global _second_prefix
    now = time.time()
    second = int(now)
    cached_second, prefix = _second_prefix
    if cached_second != second:
        prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        _second_prefix = (second, prefix)
    return f"{prefix}.{int((now - second) * 1000):03d}Z"


def _event_line(
    request_context: RequestContext | None, status: int, source: str | None, request_id: str
) -> str:
    principal = request_context.principal if request_context is not None else None
    error = request_context.error if request_context is not None else None
    if error is not None and request_context is not None and request_context.error_status != status:
        error = None  # raised, then handled by the application: not this response's cause
    authenticated = principal is not None and principal.is_authenticated
    if status == 429:
        event = RATE_LIMITED
    elif status == 403:
        event = FORBIDDEN
    elif authenticated:
        event = AUTH_SUCCESS
    else:
        event = AUTH_FAILURE
    if principal is not None and principal.is_authenticated:
        key = principal.key
    elif error is not None:
        key = error.key
    else:
        key = None
    started = request_context.started if request_context is not None else None
    req = request._get_current_object()  # type: ignore[attr-defined]
    fields = {
        "ts": _timestamp(),
        "event": event,
        "reason": error.reason if error is not None else None,
        "name": key.name if key is not None else None,
        "key_fingerprint": key.fingerprint if key is not None else None,
        "user_id": key.user_id if key is not None else None,
        "role": key.role if key is not None else (principal.role if principal else None),
        "method": req.method,
        "path": req.path,
        "status": status,
        "remote_addr": req.remote_addr,
        "credential_source": source,
        "request_id": request_id,
        "duration_ms": (
            round((time.perf_counter() - started) * 1000, 3) if started is not None else None
        ),
    }
    if principal is not None and principal.oauth_client_id is not None:
        fields["oauth_client_id"] = principal.oauth_client_id  # a token: which client used it
    return _encode_line(fields)


__all__ = [
    "AUDIT_LOGGER",
    "AUTH_FAILURE",
    "AUTH_SUCCESS",
    "FORBIDDEN",
    "RATE_LIMITED",
    "REQUEST_ID_HEADER",
    "audit_enabled",
    "begin_request",
    "configure_audit_output",
    "finish_request",
    "request_id_from",
]
