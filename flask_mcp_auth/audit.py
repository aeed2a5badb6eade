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

Where the lines go, and when they are written, is :mod:`flask_mcp_auth.audit_output`.
A line is assembled from JSON fragments rather than by encoding a dict: the
fragment of a key (name, fingerprint, user id, role) is encoded once per key, and
every other value is escaped as ``json.dumps`` would (the tests check it, byte for
byte, against ``json.dumps`` on hostile input).
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import re
import time
from typing import Any

from flask import Request, request
from werkzeug.wrappers import Response

from . import audit_output, context
from .audit_output import (
    AUDIT_LOGGER,
    audit_enabled,
    audit_log,
    configure_audit_output,
    flush,
    write_event,
)
from .context import RequestContext
from .keys.model import APIKey
from .principal import Principal

REQUEST_ID_HEADER = "X-Request-ID"
#: A caller's request id is kept if it is 1-128 characters of this safe set.
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:+=/@-]{1,128}")

AUTH_SUCCESS = "auth_success"
AUTH_FAILURE = "auth_failure"
FORBIDDEN = "forbidden"
RATE_LIMITED = "rate_limited"


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
    req: Request = request._get_current_object()  # type: ignore[attr-defined]
    request_context = context.of(req.environ)
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
        write_event(_event_line(req, request_context, status, source, request_id))
    except Exception as error:  # a handler the application added raised
        audit_output.report_write_failure(error)
    return response


# -- the line ---------------------------------------------------------------------------

#: A string as json.dumps writes it (ASCII, the C encoder when there is one).
_escape = json.encoder.encode_basestring_ascii


def _json_str(value: str | None) -> str:
    return "null" if value is None else _escape(value)


#: The second last formatted, and its text.
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


#: ',"event":...,"reason":' for each event, encoded once.
_EVENT_FRAGMENTS = {
    event: f',"event":"{event}","reason":'
    for event in (AUTH_SUCCESS, AUTH_FAILURE, FORBIDDEN, RATE_LIMITED)
}

#: The name, key_fingerprint, user_id and role fields of a key, encoded once per key
#: object (identity: APIKey's own hash and equality compare every field). Each entry
#: holds its key, so an id is not reused while cached; bounded, as keys are reloaded.
_key_fragments: dict[int, tuple[APIKey, str]] = {}
_anonymous_fragments: dict[str | None, str] = {}
KEY_FRAGMENT_CACHE_SIZE = 4096


def _key_fragment(key: APIKey) -> str:
    cached = _key_fragments.get(id(key))
    if cached is not None and cached[0] is key:
        return cached[1]
    fragment = _fields_fragment(key.name, key.fingerprint, key.user_id, key.role)
    if len(_key_fragments) >= KEY_FRAGMENT_CACHE_SIZE:
        _key_fragments.clear()
    _key_fragments[id(key)] = (key, fragment)
    return fragment


def _no_key_fragment(role: str | None) -> str:
    fragment = _anonymous_fragments.get(role)
    if fragment is None:
        fragment = _anonymous_fragments[role] = _fields_fragment(None, None, None, role)
    return fragment


def _fields_fragment(
    name: str | None, fingerprint: str | None, user_id: str | None, role: str | None
) -> str:
    return (
        f',"name":{_json_str(name)},"key_fingerprint":{_json_str(fingerprint)}'
        f',"user_id":{_json_str(user_id)},"role":{_json_str(role)}'
    )


def _event_line(
    req: Request,
    request_context: RequestContext | None,
    status: int,
    source: str | None,
    request_id: str,
) -> str:
    principal: Principal | None
    if request_context is not None:
        principal = request_context.principal
        error = request_context.error
        if error is not None and request_context.error_status != status:
            error = None  # raised, then handled by the application: not this response's cause
        started = request_context.started
    else:
        principal = error = started = None
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
    if key is not None:
        key_fields = _key_fragment(key)
    else:
        key_fields = _no_key_fragment(principal.role if principal is not None else None)
    duration = (
        repr(round((time.perf_counter() - started) * 1000, 3)) if started is not None else "null"
    )
    client = principal.oauth_client_id if principal is not None else None
    # A token: which client used it.
    oauth_fields = "" if client is None else f',"oauth_client_id":{_escape(client)}'
    return (
        f'{{"ts":"{_timestamp()}"{_EVENT_FRAGMENTS[event]}'
        f"{_json_str(error.reason if error is not None else None)}{key_fields}"
        f',"method":{_escape(req.method)},"path":{_escape(req.path)},"status":{int(status)}'
        f',"remote_addr":{_json_str(req.remote_addr)},"credential_source":{_json_str(source)}'
        f',"request_id":{_escape(request_id)},"duration_ms":{duration}{oauth_fields}}}'
    )


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
    "flush",
    "request_id_from",
]
