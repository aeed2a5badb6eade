"""Key rotation without restart: ``MCP_API_KEYS_FILE`` and live reload.

A :class:`StoreSource` owns the key store in force.  Keys come from
``MCP_API_KEYS`` (fixed for the life of the process) and, optionally, from a
JSON file with the same schema that is re-read while the server runs:

* At most once per ``MCP_API_KEYS_FILE_CHECK_INTERVAL`` seconds (per process),
  the request that needs the store calls ``stat()`` on the file.  Between
  checks the per-request cost is one monotonic-clock comparison.
* When the file's identity (device, inode), size, modification time or change
  time differ from the last read, it is read and validated.  A valid file
  replaces the store with one attribute assignment of a new, immutable
  :class:`KeyStore`; a request takes the store once and uses that object
  throughout, so it sees the old keys or the new ones, never a mix.
* A file that fails validation, or cannot be read, keeps the last good store
  in force and logs an error (once per bad content, once per outage).
* ``SIGHUP`` (where no other Python handler claims it) makes the next request
  re-read the file even if its metadata look unchanged.

Start-up is strict: a missing, empty or invalid file raises
:class:`ConfigError`, like an invalid ``MCP_API_KEYS``.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import signal
import time
import weakref
from collections.abc import Callable, Mapping
from types import FrameType
from typing import Any

from .. import _time
from .._forksafe import fork_safe_lock
from ..errors import ConfigError
from .model import APIKey
from .schema import SOURCE, parse_keys
from .store import KeyStore

log = logging.getLogger("flask_mcp_auth.keys")

FILE_SETTING = "MCP_API_KEYS_FILE"

#: (st_dev, st_ino, st_size, st_mtime_ns, st_ctime_ns): a new inode means an
#: atomic rename; ctime also moves on writes that restore the old mtime.
Signature = tuple[int, int, int, int, int]


#: File times come from a coarse clock (a few milliseconds on Linux, up to two
#: seconds on some file systems), so a same-size rewrite soon after a read can
#: leave the signature unchanged.  A file modified this recently before it was
#: read is read again at the next check and compared by content.
RACY_WINDOW_NS = 2_000_000_000


def _signature(stat: os.stat_result) -> Signature:
    return (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)


class StoreSource:
    """The key store in force, re-read from ``MCP_API_KEYS_FILE`` when the file changes.

    ``inline`` is the ``MCP_API_KEYS`` value (JSON text or a mapping), ``path``
    the key file or None.  Construction loads and validates both and raises
    :class:`ConfigError` on any problem.  ``clock`` is the monotonic clock that
    spaces the file checks (replaceable in tests).
    """

    def __init__(
        self,
        inline: Any = None,
        path: str | os.PathLike[str] | None = None,
        *,
        secret: str | bytes | None = None,
        check_interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if check_interval < 0 or math.isnan(check_interval):
            raise ValueError("check_interval must be >= 0 seconds")
        self._secret = secret
        self._inline: dict[str, APIKey] = parse_keys(inline, secret, SOURCE)
        self.path: str | None = os.path.abspath(path) if path else None
        #: How messages name the file: the setting and the absolute path.
        self.label = f"{FILE_SETTING} ({self.path})"
        self._interval = check_interval
        self._clock = clock
        self._lock = fork_safe_lock(self)
        self._force = False
        self._unreadable = False
        self._signature: Signature | None = None
        self._racy = False
        self._digest = b""
        if self.path is None:
            self._store = KeyStore(self._inline)
            self._next_check = math.inf
            return
        try:
            data, signature, self._racy = self._read()
        except OSError as exc:
            raise ConfigError(f"{self.label}: cannot read the key file: {_reason(exc)}") from None
        self._store = self._build(data)
        self._signature = signature
        self._digest = hashlib.sha256(data).digest()
        self._next_check = clock() + check_interval
        _watched.add(self)

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], secret: str | bytes | None) -> StoreSource:
        """Load the keys of resolved settings and warn about them."""
        source = cls(
            settings["MCP_API_KEYS"],
            settings["MCP_API_KEYS_FILE"],
            secret=secret,
            check_interval=settings["MCP_API_KEYS_FILE_CHECK_INTERVAL"],
        )
        warn_about_store(source.current(), source.describe())
        return source

    def describe(self) -> str:
        """Where the keys come from, for log messages."""
        return SOURCE if self.path is None else f"{SOURCE} and {self.label}"

    # -- per request --------------------------------------------------------

    def current(self) -> KeyStore:
        """The store in force. Call it once per request and use what it returns."""
        if self._clock() >= self._next_check:
            self._check()
        return self._store

    def request_reload(self) -> None:
        """Re-read the file at the next :meth:`current`, changed or not.

        Only assigns two attributes, so it is safe in a signal handler.
        Without a file there is nothing to re-read.
        """
        if self.path is None:
            return
        self._force = True
        self._next_check = -math.inf

    # -- checking and reloading ---------------------------------------------

    def _check(self) -> None:
        # One thread checks; the others carry on with the store in force
        # instead of queueing behind a stat() or a parse.
        if not self._lock.acquire(blocking=False):
            return
        try:
            now = self._clock()
            if now < self._next_check:
                return  # another thread checked while this one waited for the GIL
            self._next_check = now + self._interval
            force, self._force = self._force, False
            assert self.path is not None  # a source without a file never expires
            try:
                signature = _signature(os.stat(self.path))
            except OSError as exc:
                self._report_unreadable(exc)
                return
            self._report_readable()
            if force or self._racy or signature != self._signature:
                self._reload()
        finally:
            self._lock.release()

    def _read(self) -> tuple[bytes, Signature, bool]:
        """(content, signature, whether a change could hide from the next stat())."""
        assert self.path is not None
        # fstat() the open file, not the path: if the file is replaced while we
        # read, the recorded signature is the old one and the next check reads again.
        with open(self.path, "rb") as handle:
            stat = os.fstat(handle.fileno())
            racy = stat.st_mtime_ns >= time.time_ns() - RACY_WINDOW_NS
            return handle.read(), _signature(stat), racy

    def _build(self, data: bytes) -> KeyStore:
        """Validate the file's bytes and merge them with MCP_API_KEYS, or raise ConfigError."""
        if not data.strip():
            # A truncate-then-write editor leaves an empty file for a moment; it
            # must not revoke every key.  An empty store is spelled "{}".
            raise ConfigError(
                f"{self.label}: the file is empty; write {{}} for a store with no keys"
            )
        file_keys = parse_keys(data, self._secret, self.label)
        shared = self._inline.keys() & file_keys.keys()
        if shared:
            clashes = sorted(
                f"{file_keys[k].label} (in {SOURCE}: {self._inline[k].label})" for k in shared
            )
            raise ConfigError(
                f"{self.label}: {len(shared)} key id(s) also defined in {SOURCE}; "
                f"each key id must be defined in one place: {'; '.join(clashes)}"
            )
        return KeyStore({**self._inline, **file_keys} if self._inline else file_keys)

    def _reload(self) -> None:
        try:
            data, self._signature, self._racy = self._read()
        except OSError as exc:
            self._report_unreadable(exc)
            return
        digest = hashlib.sha256(data).digest()
        if digest == self._digest:
            return  # touched, or the same bad content already reported
        self._digest = digest
        try:
            store = self._build(data)
        except ConfigError as exc:
            log.error(
                "%s (keeping the last good key store in force: %d key(s))", exc, len(self._store)
            )
            return
        previous, self._store = self._store, store
        _log_changes(self.label, previous, store)

    def _report_unreadable(self, exc: OSError) -> None:
        if self._unreadable:
            return  # reported when the outage began
        self._unreadable = True
        log.error(
            "%s: cannot read the key file: %s (keeping the last good key store in force: "
            "%d key(s); reported once until the file is back)",
            self.label,
            _reason(exc),
            len(self._store),
        )

    def _report_readable(self) -> None:
        if self._unreadable:
            self._unreadable = False
            log.warning("%s: the key file is readable again", self.label)


def _reason(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def _log_changes(label: str, previous: KeyStore, store: KeyStore) -> None:
    """Say what a reload changed, naming keys by label (never by id)."""
    before = {key.fingerprint: key for key in previous}
    after = {key.fingerprint: key for key in store}
    added = sorted(after[f].label for f in after.keys() - before.keys())
    removed = sorted(before[f].label for f in before.keys() - after.keys())
    changed = sorted(after[f].label for f in after.keys() & before.keys() if after[f] != before[f])
    log.info(
        "%s reloaded: %d key(s) in force; added %s; removed %s; changed %s",
        label,
        len(store),
        ", ".join(added) or "none",
        ", ".join(removed) or "none",
        ", ".join(changed) or "none",
    )
    warn_about_store(store, label)


def warn_about_store(store: KeyStore, source: str = SOURCE) -> None:
    """Warnings about a store coming into force: empty, or keys already expired."""
    if len(store) == 0:
        log.warning("%s is unset or empty: no API keys are configured", source)
        return
    now = _time.now()
    for key in store:
        if key.expires_at is not None and key.is_expired(now):
            log.warning("API key %s expired at %s", key.label, key.expires_at.isoformat())
    log.debug("loaded %d API key(s) from %s", len(store), source)


# -- process-wide hooks ------------------------------------------------------

#: Every file-backed source in this process; weak, so apps can be discarded.
_watched: weakref.WeakSet[StoreSource] = weakref.WeakSet()


def _on_sighup(signum: int, frame: FrameType | None) -> None:
    for source in list(_watched):
        source.request_reload()


def install_sighup_handler() -> bool:
    """Make SIGHUP re-read every key file in this process, if SIGHUP is free.

    SIGHUP is taken only while its handler is the default (terminate) or
    ignore: a handler someone else installed from Python (gunicorn's master,
    for one) is left alone.  Returns whether SIGHUP now reloads the keys.
    """
    sighup = getattr(signal, "SIGHUP", None)
    if sighup is None:
        return False  # Windows
    current = signal.getsignal(sighup)
    if current is _on_sighup:
        return True
    if current not in (signal.SIG_DFL, signal.SIG_IGN):
        log.info(
            "SIGHUP already has a handler (%r); %s is re-read on its schedule only",
            current,
            FILE_SETTING,
        )
        return False
    try:
        signal.signal(sighup, _on_sighup)
    except ValueError:
        log.info("not in the main thread: SIGHUP cannot reload %s in this process", FILE_SETTING)
        return False
    # Do not interrupt a system call (a request's read or write) to reload.
    signal.siginterrupt(sighup, False)
    return True
