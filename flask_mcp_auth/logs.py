"""Where the package's log records go when the application configured no logging.

A library should not print: ``flask_mcp_auth`` records go to the application's
handlers.  But with ``flask run`` or gunicorn and no logging configured, a
``NullHandler`` would swallow the warnings an operator needs ("no API keys are
configured", "API key ... expired", a rejected key-file edit), and Python's
``logging.lastResort`` never fires because the ``NullHandler`` counts as a
handler.  So the package logger gets a :class:`StderrFallbackHandler` instead: it
prints WARNING and above to stderr, one line each, only when nothing else on the
record's way up the logger tree would write it.

The walk itself (:func:`handlers_reached`) is shared with the ``DEBUG=auth:*``
handlers, which skip a line an application handler already writes to stderr.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from typing import TextIO

PACKAGE_LOGGER = "flask_mcp_auth"

#: The fallback line: ``flask_mcp_auth WARNING: MCP_API_KEYS is unset or empty: ...``.
FALLBACK_FORMAT = "flask_mcp_auth %(levelname)s: %(message)s"


class StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A handler writing to whatever ``sys.stderr`` is at the time of the write.

    Test runners and daemonisers replace ``sys.stderr``; a stream captured at
    start-up may be closed by then.
    """

    def __init__(self, stream_name: str = "stderr") -> None:
        logging.Handler.__init__(self)
        self._stream_name = stream_name

    @property
    def stream(self) -> TextIO:
        stream: TextIO = getattr(sys, self._stream_name)
        return stream

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass  # always follow sys.<stream_name>


class OwnHandler(logging.Handler):
    """Marks a handler the package installed itself, which is not the application's output."""


def handlers_reached(logger: logging.Logger) -> Iterator[logging.Handler]:
    """Every handler a record of ``logger`` reaches: the logger's own, then its
    ancestors' while ``propagate`` is true (the walk ``Logger.callHandlers`` does)."""
    current: logging.Logger | None = logger
    while current is not None:
        yield from current.handlers
        current = current.parent if current.propagate else None


def application_handlers(logger: logging.Logger) -> Iterator[logging.Handler]:
    """The handlers of :func:`handlers_reached` that the application configured:
    neither a ``NullHandler`` nor one of the package's own."""
    for handler in handlers_reached(logger):
        if not isinstance(handler, (logging.NullHandler, OwnHandler)):
            yield handler


def application_writes_to_stderr(record: logging.LogRecord) -> bool:
    """True if an application handler will write ``record`` to the current ``sys.stderr``:
    a ``StreamHandler`` on that stream whose level admits the record."""
    stderr = sys.stderr
    return any(
        isinstance(handler, logging.StreamHandler)
        and handler.stream is stderr
        and record.levelno >= handler.level
        for handler in application_handlers(logging.getLogger(record.name))
    )


class StderrFallbackHandler(OwnHandler, StderrHandler):
    """WARNING and above to stderr, when no other handler would write the record.

    "Other" is any handler on the record's way up except ``NullHandler`` and this
    kind: an application handler (its configuration decides, whatever its level,
    as with ``logging.lastResort``), or a ``DEBUG=auth:*`` handler (which already
    prints the line).
    """

    def __init__(self) -> None:
        super().__init__()
        self.setLevel(logging.WARNING)
        self.setFormatter(logging.Formatter(FALLBACK_FORMAT))

    def emit(self, record: logging.LogRecord) -> None:
        if sys.stderr is None:  # pythonw, or a daemon that closed it
            return
        for handler in handlers_reached(logging.getLogger(record.name)):
            if not isinstance(handler, (logging.NullHandler, StderrFallbackHandler)):
                return  # written there
        super().emit(record)


def install_stderr_fallback(logger_name: str = PACKAGE_LOGGER) -> StderrFallbackHandler:
    """Put the fallback handler on the package logger once (idempotent)."""
    logger = logging.getLogger(logger_name)
    for handler in logger.handlers:
        if isinstance(handler, StderrFallbackHandler):
            return handler
    handler = StderrFallbackHandler()
    logger.addHandler(handler)
    return handler


__all__ = [
    "FALLBACK_FORMAT",
    "OwnHandler",
    "StderrFallbackHandler",
    "StderrHandler",
    "application_handlers",
    "application_writes_to_stderr",
    "handlers_reached",
    "install_stderr_fallback",
]
