"""Counting hits: the storage operations, one implementation per storage kind.

:class:`StrategyCounter` works with any ``limits`` strategy and storage;
:class:`FixedWindowCounter` drives the fixed-window counters at storage level;
:class:`RedisFixedWindowCounter` checks the gate and every window of a request
in one Lua round trip.  :func:`make_counter` picks the fastest that keeps the
strategy's semantics.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from limits import RateLimitItem
from limits.storage import RedisStorage, Storage
from limits.strategies import FixedWindowRateLimiter, RateLimiter

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


# KEYS: [gate key], window keys.  ARGV: gate limit (0: no gate), then expiry and
# amount of each window.  Returns {-1, gate ttl} when locked out, else
# {count, ttl} per window counted, stopping after the first one over its limit.
# Same counters and expiry rule as limits' own incr script.
_REDIS_HIT = """
local gate_limit = tonumber(ARGV[1])
local first = 1
if gate_limit > 0 then
    local failures = tonumber(redis.call("get", KEYS[1]) or "0")
    if failures >= gate_limit then
        return {-1, redis.call("ttl", KEYS[1])}
    end
    first = 2
end
local result = {}
for i = first, #KEYS do
    local arg = 2 + (i - first) * 2
    local expiry = tonumber(ARGV[arg])
    local count = redis.call("incrby", KEYS[i], 1)
    local ttl = redis.call("ttl", KEYS[i])
    if count == 1 or ttl < 0 then
        redis.call("expire", KEYS[i], expiry)
        ttl = expiry
    end
    result[#result + 1] = count
    result[#result + 1] = ttl
    if count > tonumber(ARGV[arg + 1]) then
        break
    end
end
return result
"""


class RedisFixedWindowCounter(FixedWindowCounter):
    """Fixed window on Redis: the gate and every window in one round trip (Lua)."""

    def __init__(self, strategy: RateLimiter) -> None:
        super().__init__(strategy)
        storage: Any = self.storage
        self._prefixed: Callable[[str], str] = storage.prefixed_key
        self._script = storage.get_connection().register_script(_REDIS_HIT)

    def hit(self, limits: Sequence[Limit], scope: str, gate: Gate | None) -> Outcome:
        prefixed = self._prefixed
        keys: list[str] = []
        args: list[int] = [0]
        if gate is not None:
            keys.append(prefixed(gate[0].key(gate[1])))
            args[0] = gate[0].item.amount
        for limit in limits:
            keys.append(prefixed(limit.key(scope)))
            args += (limit.item.get_expiry(), limit.item.amount)
        reply = self._script(keys=keys, args=args)
        now = time.time()
        if reply and int(reply[0]) == -1:
            return Outcome(now + max(int(reply[1]), 0), ())
        windows = []
        for limit, count, ttl in zip(limits, reply[::2], reply[1::2], strict=False):
            amount = limit.item.amount
            remaining = amount - int(count) if int(count) <= amount else -1
            windows.append(Window(limit.item, remaining, now + max(int(ttl), 0)))
        return Outcome(None, tuple(windows))


def make_counter(strategy: RateLimiter) -> Counter:
    """The fastest counter that keeps ``strategy``'s semantics on its storage."""
    if type(strategy) is not FixedWindowRateLimiter:
        return StrategyCounter(strategy)
    storage = strategy.storage
    if (
        type(storage) is RedisStorage
        and hasattr(storage, "prefixed_key")
        and hasattr(storage, "get_connection")
    ):
        return RedisFixedWindowCounter(strategy)
    return FixedWindowCounter(strategy)


__all__ = ["Counter", "Gate", "Outcome", "Window", "make_counter"]
