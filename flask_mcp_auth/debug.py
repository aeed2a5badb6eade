"""``DEBUG=auth:*``: debug output per namespace, with the Node ``debug`` syntax.

The value is a list of namespaces separated by commas or whitespace; ``*``
matches any run of characters; a namespace starting with ``-`` is excluded,
and exclusions win (``auth:*,-auth:ratelimit``).  Each namespace maps to a
logger under ``flask_mcp_auth``; an enabled one is set to DEBUG and writes
readable lines to stderr.  Its records still propagate, so the application's
handlers (its own, the root logger's, pytest's ``caplog``) receive them too;
a line an application handler already writes to stderr is not printed twice.
Without ``DEBUG`` the loggers are left alone and stay silent.
"""

from __future__ import annotations

import logging
import re

from flask import has_request_context, request

from .logs import OwnHandler, StderrHandler, application_writes_to_stderr

#: Namespace -> logger.  auth:keys: loading the key store; auth:request: each
#: authentication decision; auth:ratelimit: rate-limit decisions.
NAMESPACES: dict[str, str] = {
    "auth:keys": "flask_mcp_auth.keys",
    "auth:request": "flask_mcp_auth.request",
    "auth:ratelimit": "flask_mcp_auth.ratelimit",
}
_NAMESPACE_OF_LOGGER = {logger: namespace for namespace, logger in NAMESPACES.items()}


def _template(pattern: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in pattern.split("*")))


def parse_debug_spec(spec: str | None) -> tuple[list[re.Pattern[str]], list[re.Pattern[str]]]:
    """(included patterns, excluded patterns) of a DEBUG value."""
    included: list[re.Pattern[str]] = []
    excluded: list[re.Pattern[str]] = []
    for item in re.split(r"[\s,]+", spec or ""):
        if item.startswith("-"):
            if item[1:]:
                excluded.append(_template(item[1:]))
        elif item:
            included.append(_template(item))
    return included, excluded


def namespace_enabled(namespace: str, spec: str | None) -> bool:
    """True if ``namespace`` is on under the DEBUG value ``spec``."""
    included, excluded = parse_debug_spec(spec)
    if any(p.fullmatch(namespace) for p in excluded):
        return False
    return any(p.fullmatch(namespace) for p in included)


def enabled_namespaces(spec: str | None) -> list[str]:
    """The known namespaces ``spec`` turns on."""
    return [ns for ns in NAMESPACES if namespace_enabled(ns, spec)]


class DebugFormatter(logging.Formatter):
    """``<time> auth:request GET /mcp: <message>``: the namespace, and the request if any."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        prefix = _NAMESPACE_OF_LOGGER.get(record.name, record.name)
        if record.levelno != logging.DEBUG:
            prefix += f" {record.levelname}"
        if has_request_context():
            # The path only: the query string may hold a key.
            prefix += f" {request.method} {request.path}:"
        return f"{record.asctime} {prefix} {record.message}"


class _DebugHandler(OwnHandler, StderrHandler):
    """Prints a namespace's lines on stderr, unless an application handler already does.

    Marked, so reconfiguring removes exactly the handlers this module installed.
    """

    def emit(self, record: logging.LogRecord) -> None:
        if application_writes_to_stderr(record):
            return  # the application's own StreamHandler on stderr prints it
        super().emit(record)


# logger name -> level before this module changed it
_saved_level: dict[str, int] = {}


def configure_debug(spec: str | None) -> list[str]:
    """Turn the namespaces ``spec`` names on and every other one back off.

    Logging is process-wide, so the last call wins.  An enabled namespace's
    logger is set to DEBUG and gets a stderr handler; it keeps propagating, so
    the application's handlers see its records as well, and the stderr handler
    skips a record an application handler writes to stderr itself, so each line
    appears once.  Returns the enabled namespaces.
    """
    enabled = enabled_namespaces(spec)
    for namespace, logger_name in NAMESPACES.items():
        logger = logging.getLogger(logger_name)
        for handler in [h for h in logger.handlers if isinstance(h, _DebugHandler)]:
            logger.removeHandler(handler)
        if logger_name in _saved_level:
            logger.setLevel(_saved_level.pop(logger_name))
        if namespace in enabled:
            _saved_level[logger_name] = logger.level
            handler = _DebugHandler()
            handler.setFormatter(DebugFormatter())
            logger.addHandler(handler)
            logger.setLevel(logging.DEBUG)
            logger.disabled = False
    return enabled


__all__ = ["NAMESPACES", "configure_debug", "enabled_namespaces", "namespace_enabled"]
