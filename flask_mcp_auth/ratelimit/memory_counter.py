"""The fixed window over plain process memory: ``memory://`` without a timer thread.

``limits``' ``MemoryStorage`` expires its counters from a ``threading.Timer`` that
wakes up to 100 times a second while anything is counted, which cost 12-17 µs a
request in this project's benchmark.  :class:`MemoryFixedWindowCounter` keeps the
same counters as ``FixedWindowRateLimiter`` on ``MemoryStorage`` (the counter of
``item.key_for(scope)``, created at its first hit and expiring ``item.get_expiry()``
seconds later, incremented by every hit, refused ones included), in one dict,
with no thread at all:

- an expired window is dropped when it is next touched (a hit starts a new one);
- expired windows nobody touches again are swept out when an insert finds the dict
  at ``sweep_at`` entries (first :data:`SWEEP_MIN`); ``sweep_at`` is then set to
  twice the windows still running (at least :data:`SWEEP_MIN`), so the dict holds
  at most twice the peak of running windows, or :data:`SWEEP_MIN`, and each insert
  pays O(1) for the sweeps on average (a sweep of n entries comes after at least
  n/2 inserts);
- one ``threading.Lock`` around each compound update (a request's gate and windows,
  a failed attempt and its mark): counting is exact under threaded workers.

tests/unit/test_memory_counter.py shows, for random hit sequences under a controlled
clock, the same admissions, remaining counts and reset times as ``limits``'
``FixedWindowCounter`` on ``MemoryStorage``.  Every other storage and strategy is
counted by ``limits`` (:func:`~.redis_counters.make_counter`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from limits import RateLimitItem

from .._forksafe import fork_safe_lock
from .counters import Gate, Outcome, Window
from .limits import Limit

#: By default the dict is never swept below this many entries.
SWEEP_MIN = 1024


class _Entry:
    """One window: its count and when it expires (epoch seconds)."""

    __slots__ = ("count", "expiry")

    def __init__(self, expiry: float) -> None:
        self.count = 1
        self.expiry = expiry


class MemoryFixedWindowCounter:
    """Fixed-window counters in this process's memory (see the module docstring).

    ``clock`` returns epoch seconds (``time.time`` by default); tests pass their own.
    ``sweep_min``: the dict is never swept below this many entries.
    """

    def __init__(
        self, clock: Callable[[], float] = time.time, *, sweep_min: int = SWEEP_MIN
    ) -> None:
        self._clock = clock
        self._windows: dict[str, _Entry] = {}
        self._lock = fork_safe_lock(self)
        self._sweep_min = sweep_min
        #: Size of the dict at which the next insert sweeps it first.
        self.sweep_at = sweep_min

    # -- the Counter protocol ------------------------------------------------------------

    def hit(self, limits: Sequence[Limit], scope: str, gate: Gate | None) -> Outcome:
        now = self._clock()
        windows: list[Window] = []
        with self._lock:
            if gate is not None:
                locked_until = self._locked_until(gate[0], gate[1], now)
                if locked_until is not None:
                    return Outcome(locked_until, ())
            for limit in limits:
                entry = self._count(limit.key(scope), limit.item, now)
                window = _window(limit.item, entry.count, entry.expiry)
                windows.append(window)
                if window.breached:
                    break  # as flask-limiter: the later windows are not counted
        return Outcome(None, tuple(windows))

    def record(self, limit: Limit, scope: str) -> Window:
        now = self._clock()
        with self._lock:
            entry = self._count(limit.key(scope), limit.item, now)
            count, expiry = entry.count, entry.expiry
        return _window(limit.item, count, expiry)

    def peek(self, limit: Limit, scope: str) -> Window:
        now = self._clock()
        item = limit.item
        with self._lock:
            entry = self._live(limit.key(scope), now)
            if entry is None:
                return Window(item, item.amount, now)
            count, expiry = entry.count, entry.expiry
        return Window(item, max(0, item.amount - count), expiry)

    def locked_until(self, limit: Limit, scope: str) -> float | None:
        """When a used-up gate (the failed-attempt lockout) opens; None if it is open."""
        now = self._clock()
        with self._lock:
            return self._locked_until(limit, scope, now)

    def fail(self, gate: Gate, mark: Gate) -> Window:
        # As FixedWindowCounter.fail on MemoryStorage: the mark is a counter expiring
        # with the gate's window, so a repeated credential counts again once the window
        # resets.  Checked and counted under one lock, so the gate cannot be used up
        # between the check and the count.
        limit, scope = gate
        item = limit.item
        key = limit.key(scope)
        now = self._clock()
        with self._lock:
            entry = self._live(key, now)
            count = entry.count if entry is not None else 0
            if entry is not None and count >= item.amount:
                return Window(item, -1, entry.expiry)
            mark_key = mark[0].key(mark[1])
            marked = self._live(mark_key, now)
            if marked is not None:  # counted before in this window
                marked.count += 1
                return Window(item, item.amount - count, entry.expiry if entry is not None else now)
            if entry is None:
                entry = self._insert(key, now + item.get_expiry(), now)
            else:
                entry.count += 1
            self._insert(mark_key, entry.expiry, now)
            count, expiry = entry.count, entry.expiry
        return _window(item, count, expiry)

    # -- inspection ------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        """Every running window's count by storage key (what ``MemoryStorage.storage``
        holds on the other path), for tests and debugging."""
        now = self._clock()
        with self._lock:
            return {key: e.count for key, e in self._windows.items() if e.expiry > now}

    def __len__(self) -> int:
        """Windows held, expired ones not yet dropped included."""
        return len(self._windows)

    # -- internals (the lock held) -----------------------------------------------------

    def _live(self, key: str, now: float) -> _Entry | None:
        entry = self._windows.get(key)
        if entry is not None and entry.expiry <= now:
            del self._windows[key]  # expired: dropped on access
            return None
        return entry

    def _locked_until(self, limit: Limit, scope: str, now: float) -> float | None:
        entry = self._live(limit.key(scope), now)
        if entry is None or entry.count < limit.item.amount:
            return None
        return entry.expiry

    def _count(self, key: str, item: RateLimitItem, now: float) -> _Entry:
        entry = self._windows.get(key)
        if entry is None:
            return self._insert(key, now + item.get_expiry(), now)
        if entry.expiry <= now:  # expired: this hit starts a new window
            entry.count = 1
            entry.expiry = now + item.get_expiry()
        else:
            entry.count += 1
        return entry

    def _insert(self, key: str, expiry: float, now: float) -> _Entry:
        windows = self._windows
        if len(windows) >= self.sweep_at:
            self._sweep(now)
        entry = windows[key] = _Entry(expiry)
        return entry

    def _sweep(self, now: float) -> None:
        windows = self._windows
        for key in [key for key, entry in windows.items() if entry.expiry <= now]:
            del windows[key]
        self.sweep_at = max(self._sweep_min, 2 * len(windows))


def _window(item: RateLimitItem, count: int, expiry: float) -> Window:
    return Window(item, item.amount - count if count <= item.amount else -1, expiry)


__all__ = ["SWEEP_MIN", "MemoryFixedWindowCounter"]
