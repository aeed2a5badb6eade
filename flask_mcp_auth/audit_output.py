"""Where audit lines go: the extension's own stderr, stdout and file handlers.

``MCP_AUDIT_LOG`` names the destination: ``stderr`` (the default when the
application configured no handler on the logger), ``stdout``, a file path, or
``off``.  A failed write never fails the request: it is reported as an error on
the ``flask_mcp_auth`` logger, at most once a minute, with the count of lines
lost (on stderr when the application configured no logging: :mod:`flask_mcp_auth.logs`).

Lines are batched (``MCP_AUDIT_FLUSH_MS``, 100 by default): each handler keeps
the lines of the last few milliseconds and writes them with one system call,
where one write and one flush per line cost more than building the line.  A batch
is written at most the interval after its first line was produced (by one idle
daemon thread per process, woken only when a line lands in an empty buffer), when
it reaches ``BATCH_LIMIT`` characters, at interpreter exit (gunicorn workers stop
through ``SystemExit``, so that includes them), before ``fork()`` and on a SIGTERM
the process would otherwise die of.  A SIGKILL loses at most the last interval's
lines.  ``MCP_AUDIT_FLUSH_MS=0`` writes and flushes every line as it is produced.
Lines that reach the application's own handlers (through ``logging``) are theirs
to write: they are not batched here.
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import sys
import threading
import time
import weakref
from collections.abc import Iterable
from logging.handlers import WatchedFileHandler

from .logs import StderrHandler

AUDIT_LOGGER = "flask_mcp_auth.audit"
audit_log = logging.getLogger(AUDIT_LOGGER)
log = logging.getLogger("flask_mcp_auth")

_STREAMS = ("stderr", "stdout")
OFF = "off"

#: How often (seconds) a failing audit destination is reported.
FAILURE_REPORT_INTERVAL = 60.0
#: How often (seconds) an audit file is checked for rotation (renamed or deleted).
ROTATION_CHECK_INTERVAL = 1.0
#: MCP_AUDIT_FLUSH_MS: its default and its largest value (milliseconds).
DEFAULT_FLUSH_MS = 100
MAX_FLUSH_MS = 100
#: A batch this large (characters; the lines are ASCII, so bytes) is written at once.
BATCH_LIMIT = 64 * 1024
#: Writes to a pipe up to this size are atomic (POSIX PIPE_BUF, 4096 on Linux): stderr
#: and stdout, often a pipe shared by every gunicorn worker, get batches in such pieces
#: of whole lines, so lines of different workers never interleave.
PIPE_CHUNK = 4096


# -- failures ---------------------------------------------------------------------------


class _FailureReporter:
    """Reports failed audit writes: the first one, then at most once an interval."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last_report = float("-inf")
        self._lost = 0

    def __call__(self, error: BaseException | None, lines: int = 1) -> None:
        with self._lock:
            self._lost += lines
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


# -- the handlers -----------------------------------------------------------------------


class _OwnedHandler(logging.Handler):
    """Base of the handlers this module installs: they batch, report failures, never raise.

    The handler's lock (logging's, re-entrant) guards the batch and the writes, so
    batches are written whole and in order, whichever thread writes them.
    """

    #: Seconds a line may wait in the batch; 0: each line is written as it is produced.
    flush_interval = 0.0
    _pending: list[str]
    _pending_size = 0
    #: The thread writing a batch right now (see _on_sigterm), else None.
    _writer: int | None = None

    def handleError(self, record: logging.LogRecord) -> None:
        report_write_failure(sys.exc_info()[1])

    def format(self, record: logging.LogRecord) -> str:
        return record.getMessage()  # the line is already the JSON object

    def emit(self, record: logging.LogRecord) -> None:
        """A line that came through ``logging`` (the application added handlers or
        filters) joins the same batch, so lines stay in order."""
        try:
            line = self.format(record)
        except Exception:
            self.handleError(record)
            return
        self.write_line(line)

    def write_line(self, line: str) -> None:
        """Write one line, or add it to the batch: the per-request fast path."""
        with self.lock:  # type: ignore[union-attr]
            if not self.flush_interval:
                try:
                    self._write(line + "\n")
                except Exception as error:
                    report_write_failure(error)
                return
            pending = self._pending
            first = not pending
            pending.append(line + "\n")
            self._pending_size += len(line) + 1
            if self._pending_size >= BATCH_LIMIT:
                self._write_pending()
        if first:
            _flusher.wake()

    def write_pending(self) -> None:
        """Write the batch now (the flusher's deadline, exit, fork, a test)."""
        with self.lock:  # type: ignore[union-attr]
            self._write_pending()

    def _write_pending(self) -> None:
        pending = self._pending
        if not pending:
            return
        self._writer = threading.get_ident()
        try:
            self._write_batch(pending)
        except Exception as error:
            report_write_failure(error, len(pending))
        finally:
            self._pending = []
            self._pending_size = 0
            self._writer = None
        if _sigterm.deferred and threading.current_thread() is threading.main_thread():
            _sigterm.die()  # a SIGTERM arrived while this thread was writing the batch

    def flush(self) -> None:
        self.write_pending()
        super().flush()

    def close(self) -> None:
        self.write_pending()  # a file handler opened with delay=True has no stream yet
        _flusher.handlers.discard(self)
        super().close()

    def _write(self, text: str) -> None:
        raise NotImplementedError

    def _write_batch(self, lines: list[str]) -> None:
        self._write("".join(lines))


class _AuditStreamHandler(_OwnedHandler, StderrHandler):
    def _write(self, text: str) -> None:
        stream = self.stream
        stream.write(text)
        stream.flush()

    def _write_batch(self, lines: list[str]) -> None:
        for chunk in _chunks(lines, PIPE_CHUNK):
            self._write(chunk)


def _chunks(lines: list[str], limit: int) -> Iterable[str]:
    """The lines joined in pieces of at most ``limit`` characters (a longer line alone)."""
    start, size = 0, 0
    for index, line in enumerate(lines):
        if size + len(line) > limit and index > start:
            yield "".join(lines[start:index])
            start, size = index, 0
        size += len(line)
    yield "".join(lines[start:])


class _AuditFileHandler(_OwnedHandler, WatchedFileHandler):
    """Appends to a file; reopens it after log rotation, retries opening after a failure.

    Rotation is checked (a ``stat`` of the path) at most every
    ROTATION_CHECK_INTERVAL seconds, not for every write, where it cost about
    as much as the rest of the write.  Lines written in between still land,
    in the file that was just renamed.  A batch is one ``write`` to a file
    opened for appending, so workers sharing the file never interleave lines.
    """

    _next_rotation_check = 0.0

    def _write(self, text: str) -> None:
        now = time.monotonic()
        if now >= self._next_rotation_check:
            self._next_rotation_check = now + ROTATION_CHECK_INTERVAL
            self.reopenIfNeeded()
        if self.stream is None:
            self.stream = self._open()
        self.stream.write(text)
        self.stream.flush()


# -- when batches are written ----------------------------------------------------------


class _Flusher:
    """One daemon thread per process that writes each batch by its deadline.

    It sleeps on an event that only a line landing in an empty buffer sets, so an
    idle process, or a busy one between batches, pays nothing for it.  It is
    started with the first batch, and again in a forked child, where it does not
    exist.
    """

    def __init__(self) -> None:
        self.handlers: weakref.WeakSet[_OwnedHandler] = weakref.WeakSet()
        self.interval = DEFAULT_FLUSH_MS / 1000
        self._reset()

    def _reset(self) -> None:
        self._event = threading.Event()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def wake(self) -> None:
        if self._thread is None:
            with self._start_lock:
                if self._thread is None:
                    thread = threading.Thread(
                        target=self._run, name="flask_mcp_auth audit flusher", daemon=True
                    )
                    thread.start()
                    self._thread = thread
        self._event.set()

    def _run(self) -> None:
        event = self._event
        while True:
            event.wait()
            time.sleep(self.interval)
            # Cleared before the batches are taken: a line landing from now on sets it again.
            event.clear()
            self.write_all()

    def write_all(self) -> None:
        for handler in list(self.handlers):
            handler.write_pending()

    def after_fork_in_child(self) -> None:
        """The child's buffers start empty (the parent writes its own lines) and it gets
        its own thread; the parent's does not exist here."""
        for handler in list(self.handlers):
            handler._pending = []
            handler._pending_size = 0
            handler._writer = None
        self._reset()


_flusher = _Flusher()


def flush() -> None:
    """Write every batched audit line now (for tests, and before reading the destination)."""
    _flusher.write_all()


atexit.register(flush)
if hasattr(os, "register_at_fork"):  # POSIX only; nothing forks elsewhere
    # Written before fork() so a line is never in two processes' buffers; emptied in the
    # child all the same, for lines another thread added in between.
    os.register_at_fork(before=flush, after_in_child=_flusher.after_fork_in_child)


class _SigtermFlush:
    """Writes the batches when SIGTERM ends a process that left it at its default.

    Installed only in the main thread and only over ``SIG_DFL``: a server's or the
    application's own handler (gunicorn workers', Werkzeug's reloader's) is never
    replaced; those exit through ``SystemExit``, so the atexit flush writes the lines.
    After writing, the default action is re-delivered: the process still dies of SIGTERM.
    """

    installed = False
    deferred = False

    def install(self) -> None:
        if self.installed or threading.current_thread() is not threading.main_thread():
            return
        if not hasattr(signal, "SIGTERM") or signal.getsignal(signal.SIGTERM) != signal.SIG_DFL:
            return
        signal.signal(signal.SIGTERM, self._handle)
        self.installed = True

    def _handle(self, signum: int, frame: object) -> None:
        main = threading.main_thread().ident
        if any(handler._writer == main for handler in list(_flusher.handlers)):
            # This thread was interrupted while writing a batch: finish it first.
            self.deferred = True
            return
        flush()
        self.die()

    def die(self) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        self.installed = False
        signal.raise_signal(signal.SIGTERM)


_sigterm = _SigtermFlush()


# -- configuration ---------------------------------------------------------------------


#: The handler lines can be written to directly, while it is the logger's only output.
_direct_handler: _OwnedHandler | None = None


def write_event(line: str) -> None:
    """Write one audit line: to our handler directly while it is the logger's only
    output, else through ``logging``, honouring the application's handlers and filters."""
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
        audit_log.info(line)


def _owned(handler: logging.Handler) -> bool:
    return isinstance(handler, _OwnedHandler)


_saved_propagate: list[bool] = []


def audit_enabled(destination: str | None) -> bool:
    """False when ``MCP_AUDIT_LOG`` is ``off``: then no hooks run and nothing costs."""
    return (destination or "").strip().lower() != OFF


def configure_audit_output(
    destination: str | None, flush_ms: int = DEFAULT_FLUSH_MS
) -> logging.Handler | None:
    """Point the audit logger at ``destination`` (an ``MCP_AUDIT_LOG`` value), batching
    lines for up to ``flush_ms`` milliseconds (``MCP_AUDIT_FLUSH_MS``; 0: none).

    None: stderr unless the application put a handler on the logger.  Logging
    is process-wide: the last call wins.  Returns the handler installed, if any.
    """
    global _direct_handler
    _direct_handler = None
    for previous in [h for h in audit_log.handlers if _owned(h)]:
        audit_log.removeHandler(previous)
        try:
            previous.close()  # writes its batch
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
    handler._pending = []
    handler.flush_interval = flush_ms / 1000
    if flush_ms:
        _flusher.interval = handler.flush_interval
        _flusher.handlers.add(handler)
        _sigterm.install()
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


__all__ = [
    "AUDIT_LOGGER",
    "BATCH_LIMIT",
    "DEFAULT_FLUSH_MS",
    "MAX_FLUSH_MS",
    "audit_enabled",
    "audit_log",
    "configure_audit_output",
    "flush",
    "report_write_failure",
    "write_event",
]
