"""Counting hits: the storage operations, and the counters for any storage.

:class:`StrategyCounter` works with any ``limits`` strategy and storage;
:class:`FixedWindowCounter` drives the fixed-window counters at storage level.
The Redis counters, and :func:`~.redis_counters.make_counter`, which picks the
fastest counter for a storage, are in :mod:`.redis_counters`; the fixed window on
``memory://`` is :mod:`.memory_counter`'s (no timer thread), tested equal to
:class:`FixedWindowCounter` on ``MemoryStorage``.

``fail`` counts a refused credential on the failed-attempt gate at most once per
failure window: the caller passes a *mark* for the credential (a limit and scope
naming a keyed hash of it, never the value), set when the credential is counted and
expiring with the window.  A mark is only set for a credential that was counted, never
while the address is locked out, so values queued during a lockout count when it opens.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from limits import RateLimitItem
from limits.storage import (
    MemoryStorage,
    Storage,
)
from limits.strategies import RateLimiter

from .limits import Limit

#: A gate: a limit and scope that must not be exhausted for the request to be counted.
Gate = tuple[Limit, str]


@dataclass(frozen=True, slots=True)
class Window:
    """One limit window after a request: what the X-RateLimit-* headers report."""

    item: RateLimitItem
    remaining: int  # -1 when this request was refused by the window
    reset_at: float  # epoch seconds

    @property
    def breached(self) -> bool:
        return self.remaining < 0


@dataclass(frozen=True, slots=True)
class Outcome:
    """Result of counting one request: locked out by the gate, or the windows hit."""

    locked_until: float | None
    windows: tuple[Window, ...]


class Counter(Protocol):
    def hit(self, limits: Sequence[Limit], scope: str, gate: Gate | None) -> Outcome:
        """Check the gate (without counting), then count one hit on each window in order.

        Stops at the first breached window, as flask-limiter does, so a request
        refused by the minute window does not use up the hour window.
        """

    def record(self, limit: Limit, scope: str) -> Window:
        """Count one event on a single window."""

    def peek(self, limit: Limit, scope: str) -> Window:
        """Read a window without counting."""

    def fail(self, gate: Gate, mark: Gate) -> Window:
        """A refused credential: count it on ``gate`` unless ``mark`` says it was counted
        in this window, or the gate is already used up.

        ``remaining`` is -1 when the address is (now) locked out.
        """


class StrategyCounter:
    """Any storage and strategy, through the public ``limits`` strategy API."""

    def __init__(self, strategy: RateLimiter) -> None:
        self.strategy = strategy

    def hit(self, limits: Sequence[Limit], scope: str, gate: Gate | None) -> Outcome:
        if gate is not None:
            locked_until = self.locked_until(*gate)
            if locked_until is not None:
                return Outcome(locked_until, ())
        windows: list[Window] = []
        for limit in limits:
            window = self.record(limit, scope)
            windows.append(window)
            if window.breached:
                break
        return Outcome(None, tuple(windows))

    def record(self, limit: Limit, scope: str) -> Window:
        allowed = self.strategy.hit(limit.item, scope)
        reset_at, remaining = self.strategy.get_window_stats(limit.item, scope)
        return Window(limit.item, remaining if allowed else -1, reset_at)

    def peek(self, limit: Limit, scope: str) -> Window:
        reset_at, remaining = self.strategy.get_window_stats(limit.item, scope)
        return Window(limit.item, remaining, reset_at)

    def locked_until(self, limit: Limit, scope: str) -> float | None:
        """When a used-up gate (the failed-attempt lockout) opens; None if it is open."""
        if self.strategy.test(limit.item, scope):
            return None
        return self.peek(limit, scope).reset_at

    def fail(self, gate: Gate, mark: Gate) -> Window:
        # The mark is a one-hit window of the gate's length (``mark`` holds a limit of 1):
        # its first hit succeeds, later ones within its window do not.  Its window starts at
        # the credential's first counted presentation, which for a moving window is exactly
        # when that attempt leaves the count; public strategy API only, so any storage works.
        limit, scope = gate
        locked_until = self.locked_until(limit, scope)
        if locked_until is not None:
            return Window(limit.item, -1, locked_until)
        mark_limit, mark_scope = mark
        if not self.strategy.hit(mark_limit.item, mark_scope):
            window = self.peek(limit, scope)  # counted before in this window
            return window if window.remaining > 0 else Window(limit.item, -1, window.reset_at)
        window = self.record(limit, scope)
        if window.breached:
            # Another request used up the gate meanwhile: this one was not counted.
            self.strategy.clear(mark_limit.item, mark_scope)
        return window


class FixedWindowCounter(StrategyCounter):
    """Fixed window on any storage: the counters of ``FixedWindowRateLimiter``, with
    one increment and one expiry read per window instead of three storage calls."""

    def __init__(self, strategy: RateLimiter) -> None:
        super().__init__(strategy)
        self.storage: Storage = strategy.storage

    def locked_until(self, limit: Limit, scope: str) -> float | None:
        key = limit.key(scope)
        if self.storage.get(key) < limit.item.amount:
            return None
        return self.storage.get_expiry(key)

    def record(self, limit: Limit, scope: str) -> Window:
        key = limit.key(scope)
        item = limit.item
        count = self.storage.incr(key, item.get_expiry())
        remaining = item.amount - count if count <= item.amount else -1
        return Window(item, remaining, self.storage.get_expiry(key))

    def fail(self, gate: Gate, mark: Gate) -> Window:
        if type(self.storage) is not MemoryStorage:
            return super().fail(gate, mark)  # other storages: the public strategy API
        # Process memory (make_counter gives MemoryFixedWindowCounter instead; this path,
        # the same counting through MemoryStorage, is its differential test's reference):
        # the mark is a counter that expires when the gate's window does,
        # so a repeated credential counts again as soon as the window resets.  Its first
        # increment (atomic) decides which request counts the credential.
        storage = self.storage
        limit, scope = gate
        item = limit.item
        key = limit.key(scope)
        count = storage.get(key)
        if count >= item.amount:
            return Window(item, -1, storage.get_expiry(key))
        ttl = storage.get_expiry(key) - time.time() if count else float(item.get_expiry())
        mark_key = mark[0].key(mark[1])
        if storage.incr(mark_key, ttl) > 1:
            return Window(item, item.amount - count, storage.get_expiry(key))
        window = self.record(limit, scope)
        if window.breached:
            storage.clear(mark_key)  # another request used up the gate meanwhile
        return window


__all__ = ["Counter", "FixedWindowCounter", "Gate", "Outcome", "StrategyCounter", "Window"]
