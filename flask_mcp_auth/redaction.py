"""Keeping API keys out of access logs.

Werkzeug's development server and gunicorn log the request line, query string
included, so ``?api_key=<key>`` would be written in plain text.  ``init_app``
installs :class:`RedactingFilter` on the ``werkzeug`` logger; for gunicorn,
one line in its configuration file enables :class:`GunicornLogger`::

    logger_class = "flask_mcp_auth.redaction.GunicornLogger"

The value of every parameter named like the configured query parameter
(``MCP_API_KEY_QUERY_PARAM``, and always ``api_key``) is replaced by
``[REDACTED]``, however its name is percent-encoded; gunicorn log atoms of the
credential headers (``{x-api-key}i``, ``{authorization}i``) are redacted too.

gunicorn is imported only when ``GunicornLogger`` is first used, so it is not a
dependency of the package.
"""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import unquote_plus

from .credentials import DEFAULT_HEADER, DEFAULT_QUERY_PARAM

REDACTED = "[REDACTED]"

# Names whose values are redacted; only ever grows (several apps may share a process).
_query_params: set[str] = {DEFAULT_QUERY_PARAM}
_headers: set[str] = {DEFAULT_HEADER.lower(), "authorization"}

# One query pair: at the start of the text or right after '?' or '&', a name, '=',
# and a value that runs to the next '&' or whitespace (never stopping at a quote,
# '?' or '#', so nothing of a key's value can be left behind).
_QUERY_PAIR = re.compile(r"(?<![^?&])([^=&?\s]+)=([^&\s]*)")


def register(query_param: str | None, header: str | None) -> None:
    """Redact this query parameter and header too (called by ``init_app``)."""
    if query_param:
        _query_params.add(query_param)
    if header:
        _headers.add(header.lower())


def _redact_pair(match: re.Match[str]) -> str:
    name, value = match.group(1), match.group(2)
    if unquote_plus(name) in _query_params:
        return f"{name}={REDACTED}"
    if "=" in value:  # '?a=b?api_key=...': not read as a key, but it may be one
        return f"{name}={redact_query(value)}"
    return match.group(0)


def redact_query(text: str) -> str:
    """``text`` with the value of every key-carrying query parameter replaced.

    Works on a request line, a URL, or a bare query string.
    """
    if "=" not in text:
        return text
    return _QUERY_PAIR.sub(_redact_pair, text)


class RedactingFilter(logging.Filter):
    """Rewrites a log record so that its message holds no query-string key."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: let logging report it as usual
            return True
        redacted = redact_query(message)
        if redacted is not message:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            record.exc_text = redact_query(logging.Formatter().formatException(record.exc_info))
        return True


_FILTER = RedactingFilter()


def _add_filter(logger: logging.Logger) -> None:
    if not any(isinstance(f, RedactingFilter) for f in logger.filters):
        logger.addFilter(_FILTER)


def install_redaction(query_param: str | None, header: str | None) -> None:
    """Register the app's credential names and filter Werkzeug's request log."""
    register(query_param, header)
    _add_filter(logging.getLogger("werkzeug"))


def _header_atoms() -> set[str]:
    atoms = set()
    for header in _headers:
        atoms.add(f"{{{header}}}i")
        atoms.add(f"{{http_{header.replace('-', '_')}}}e")
    return atoms


def redact_atoms(atoms: dict[str, Any]) -> dict[str, Any]:
    """gunicorn access-log atoms with credential headers and query values redacted."""
    for name in _header_atoms():
        if name in atoms:
            atoms[name] = REDACTED
    for name, value in atoms.items():
        # 'q', '{query_string}e' have no leading '?'; 'r', 'f', '{raw_uri}e' ... do.
        if isinstance(value, str) and "=" in value:
            atoms[name] = redact_query(value)
    return atoms


def _make_gunicorn_logger() -> type:
    from gunicorn.glogging import Logger

    class GunicornLogger(Logger):  # type: ignore[misc]
        """gunicorn's logger, with API keys redacted from access and error logs.

        Enable with ``logger_class = "flask_mcp_auth.redaction.GunicornLogger"``.
        """

        def setup(self, cfg: Any) -> None:
            super().setup(cfg)
            # Error lines can carry the URI too ("Error handling request /x?api_key=...").
            # Access lines are redacted atom by atom instead (see atoms()), which also
            # covers the bare query string and keeps the format's quotes intact.
            _add_filter(self.error_log)

        def atoms(self, resp: Any, req: Any, environ: Any, request_time: Any) -> dict[str, Any]:
            return redact_atoms(super().atoms(resp, req, environ, request_time))

    GunicornLogger.__module__ = __name__
    GunicornLogger.__qualname__ = "GunicornLogger"
    return GunicornLogger


_lazy: dict[str, type] = {}


def __getattr__(name: str) -> type:
    # PEP 562: build GunicornLogger on first use, importing gunicorn only then.
    if name == "GunicornLogger":
        if name not in _lazy:
            _lazy[name] = _make_gunicorn_logger()
        return _lazy[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# GunicornLogger is left out on purpose: a star import would import gunicorn.
__all__ = ["REDACTED", "RedactingFilter", "install_redaction", "redact_query"]
