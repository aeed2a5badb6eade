"""The memory:// fixed window (MemoryFixedWindowCounter) against limits' own.

The differential test runs random operation sequences (clock advances, landing
exactly on window boundaries too; hits with a gate; records; peeks; failed attempts
with marks; lockout reads) on the extension's counter and on ``FixedWindowCounter``
over ``FixedWindowRateLimiter(MemoryStorage())``, the path memory:// took before,
under one controlled clock, and requires the same result from every operation
(admitted or refused, remaining, reset time: the same ``Outcome`` and ``Window``
values) and the same running counters after each one.

limits' memory storage reads ``time.time()`` from its module, and
``FixedWindowCounter.fail`` from ``counters``: both modules' ``time`` are replaced
by the controlled clock.  The storage's expiry timer is stopped: ``get`` and
``incr`` drop an expired counter themselves before using it (every counter path
reads a key through one of them before its expiry), so expiry is deterministic.
Clock values are multiples of 1/64 s, so the reference's
``now + (expiry - now)`` for a mark's expiry is exactly the window's expiry, as
the counter stores it (with arbitrary floats it may be one ulp off).
"""

from __future__ import annotations

import sys
import threading
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

import limits.storage.memory
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from limits import RateLimitItem, parse, parse_many
from limits.storage import MemoryStorage
from limits.strategies import (
    FixedWindowRateLimiter,
    MovingWindowRateLimiter,
    SlidingWindowCounterRateLimiter,
)

from flask_mcp_auth import _forksafe
from flask_mcp_auth.ratelimit import Limit, memory_counter
from flask_mcp_auth.ratelimit import counters as ratelimit_counters
from flask_mcp_auth.ratelimit.counters import FixedWindowCounter, StrategyCounter
from flask_mcp_auth.ratelimit.memory_counter import MemoryFixedWindowCounter
from flask_mcp_auth.ratelimit.redis_counters import make_counter

TICK = 1 / 64  # the clock's resolution in these tests


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now


def limits_of(spec: str) -> tuple[Limit, ...]:
    return tuple(Limit.of(item) for item in parse_many(spec))


def mark_limit(item: RateLimitItem) -> Limit:
    """As RateLimits builds it: one hit per failure window."""
    return Limit.of(type(item)(1, item.multiples, item.namespace))


# A key's or an address's windows: per second, per minute, multiples, two windows,
# and windows shared between sets (3/minute in two of them).
LIMIT_SETS = [
    limits_of("1/second"),
    limits_of("3/minute"),
    limits_of("3/minute;5/hour"),
    limits_of("2 per 3 seconds;4/minute"),
    limits_of("5/second;7 per 10 seconds"),
    limits_of("1 per 2 seconds"),
]
SINGLE_LIMITS = [limit for limits in LIMIT_SETS for limit in limits]
SCOPES = ["mcp-auth/key/aaa", "mcp-auth/anonymous/10.0.0.9"]
FAILURE_LIMITS = [Limit.of(parse("3 per 10 seconds")), Limit.of(parse("2/minute"))]
GATES = [
    (FAILURE_LIMITS[0], "mcp-auth/failures/10.0.0.1"),
    (FAILURE_LIMITS[0], "mcp-auth/failures/10.0.0.2"),
    (FAILURE_LIMITS[1], "mcp-auth/failures/10.0.0.3"),
]
MARK_NAMES = ["m1", "m2", "m3", "m4"]

# Mostly short steps, so that windows fill up before they reset; sometimes long ones.
short_advance = st.tuples(st.just("advance"), st.integers(0, 2 * 64).map(lambda n: n * TICK))
long_advance = st.tuples(st.just("advance"), st.integers(0, 130 * 64).map(lambda n: n * TICK))
to_boundary = st.tuples(
    st.just("to_boundary"), st.integers(0, 20), st.sampled_from([-TICK, 0.0, 0.0, TICK])
)
hit = st.tuples(
    st.just("hit"),
    st.integers(0, len(SCOPES) - 1),
    st.integers(0, len(LIMIT_SETS) - 1),
    st.one_of(st.none(), st.integers(0, len(GATES) - 1)),
)
record = st.tuples(
    st.just("record"), st.integers(0, len(SCOPES) - 1), st.integers(0, len(SINGLE_LIMITS) - 1)
)
peek = st.tuples(  # every window of a set, as the status route reads them
    st.just("peek"), st.integers(0, len(SCOPES) - 1), st.integers(0, len(LIMIT_SETS) - 1)
)
peek_gate = st.tuples(st.just("peek_gate"), st.integers(0, len(GATES) - 1))
fail = st.tuples(
    st.just("fail"), st.integers(0, len(GATES) - 1), st.integers(0, len(MARK_NAMES) - 1)
)
locked = st.tuples(st.just("locked_until"), st.integers(0, len(GATES) - 1))
operations = st.lists(
    st.one_of(
        *[short_advance] * 2,
        long_advance,
        to_boundary,
        *[hit] * 4,
        record,
        *[peek] * 2,
        peek_gate,
        *[fail] * 3,
        locked,
    ),
    min_size=40,
    max_size=200,
)


@contextmanager
def reference_counter(clock: Clock) -> Iterator[tuple[FixedWindowCounter, MemoryStorage]]:
    """FixedWindowCounter on a MemoryStorage reading ``clock``, its timer stopped."""
    stand_in = types.SimpleNamespace(time=clock.time, monotonic=clock.monotonic)
    with (
        mock.patch.object(limits.storage.memory, "time", stand_in),
        mock.patch.object(ratelimit_counters, "time", stand_in),
    ):
        storage = MemoryStorage()
        storage.timer.cancel()
        storage.timer.join()
        # incr would start the timer again; get and incr expire counters themselves.
        storage._MemoryStorage__schedule_expiry = lambda: None  # type: ignore[attr-defined]
        yield FixedWindowCounter(FixedWindowRateLimiter(storage)), storage


def live_counts(storage: MemoryStorage, now: float) -> dict[str, int]:
    return {k: n for k, n in storage.storage.items() if storage.expirations.get(k, 0) > now}


def run(counter: Any, op: tuple[Any, ...]) -> Any:
    kind = op[0]
    if kind == "hit":
        gate = GATES[op[3]] if op[3] is not None else None
        return counter.hit(LIMIT_SETS[op[2]], SCOPES[op[1]], gate)
    if kind == "record":
        return counter.record(SINGLE_LIMITS[op[2]], SCOPES[op[1]])
    if kind == "peek":
        return [counter.peek(limit, SCOPES[op[1]]) for limit in LIMIT_SETS[op[2]]]
    if kind == "peek_gate":
        return counter.peek(*GATES[op[1]])
    if kind == "fail":
        limit, scope = GATES[op[1]]
        return counter.fail((limit, scope), (mark_limit(limit.item), f"{scope}/seen/{op[2]}"))
    assert kind == "locked_until"
    return counter.locked_until(*GATES[op[1]])


def differential(ops: list[tuple[Any, ...]], start: int, sweep_min: int) -> list[Any]:
    """Run ``ops`` on both counters; return the results of the counting operations."""
    clock = Clock(1_700_000_000 + start * TICK)
    results = []
    with reference_counter(clock) as (reference, storage):
        ours = MemoryFixedWindowCounter(clock.time, sweep_min=sweep_min)
        for step, op in enumerate(ops):
            if op[0] == "advance":
                clock.now += op[1]
                continue
            if op[0] == "to_boundary":
                # Onto (or a tick either side of) a running window's reset time.
                ahead = sorted(e for e in set(storage.expirations.values()) if e > clock.now)
                if ahead:
                    clock.now = max(clock.now, ahead[op[1] % len(ahead)] + op[2])
                continue
            expected, got = run(reference, op), run(ours, op)
            assert got == expected, (step, op, clock.now)
            assert ours.counts() == live_counts(storage, clock.now), (step, op)
            results.append(got)
    return results


@settings(max_examples=3 * settings.default.max_examples)
@given(ops=operations, start=st.integers(0, 64 * 3600), sweep_min=st.sampled_from([2, 1024]))
def test_same_admissions_remaining_and_resets_as_limits_fixed_window(
    ops: list[tuple[Any, ...]], start: int, sweep_min: int
) -> None:
    differential(ops, start, sweep_min)


def test_the_differential_sees_windows_reset_on_their_boundary() -> None:
    """A fixed sequence through the same harness: the window resets exactly at its
    expiry (not a tick later), a refused hit still counts, a mark dies with its window."""
    ops: list[tuple[Any, ...]] = [
        ("hit", 0, 0, None),  # 1/second
        ("hit", 0, 0, None),  # refused
        ("to_boundary", 0, -TICK),
        ("hit", 0, 0, None),  # still refused
        ("advance", TICK),  # exactly the reset time
        ("hit", 0, 0, None),  # a new window
        ("fail", 2, 0),
        ("fail", 2, 0),  # the same mark: not counted again
        ("fail", 2, 1),
        ("fail", 2, 2),  # 2/minute used up: locked out
        ("hit", 1, 1, 2),
        ("advance", 60.0),
        ("fail", 2, 0),  # counts again in the new window
        ("peek_gate", 2),
    ]
    first, refused, still, reset, *failures, locked, again, peeked = differential(ops, 0, 2)
    start = 1_700_000_000.0
    assert first.windows[0].remaining == 0 and first.windows[0].reset_at == start + 1
    assert refused.windows[0].breached and still.windows[0].breached
    assert reset.windows[0].remaining == 0 and reset.windows[0].reset_at == start + 2
    assert [w.remaining for w in failures] == [1, 1, 0, -1]
    assert locked.locked_until == start + 1 + 60 and locked.windows == ()
    assert again.remaining == 1 and again.reset_at == start + 1 + 120
    assert peeked == again


# -- make_counter ----------------------------------------------------------------------------


def test_make_counter_picks_the_memory_counter_for_the_fixed_window_on_memory_only() -> None:
    storage = MemoryStorage()
    counter = make_counter(FixedWindowRateLimiter(storage))
    assert type(counter) is MemoryFixedWindowCounter
    # One counter per storage: apps sharing a Limiter share its counts.
    assert make_counter(FixedWindowRateLimiter(storage)) is counter
    assert make_counter(FixedWindowRateLimiter(MemoryStorage())) is not counter
    for strategy in (MovingWindowRateLimiter, SlidingWindowCounterRateLimiter):
        assert type(make_counter(strategy(storage))) is StrategyCounter

    class OwnMemoryStorage(MemoryStorage):
        pass

    assert type(make_counter(FixedWindowRateLimiter(OwnMemoryStorage()))) is FixedWindowCounter


def test_no_thread_is_started() -> None:
    storage = MemoryStorage()
    storage.timer.join()  # the one limits starts when the storage is created
    before = set(threading.enumerate())
    counter = make_counter(FixedWindowRateLimiter(storage))
    assert type(counter) is MemoryFixedWindowCounter
    windows, gate = limits_of("5/second;100/minute"), GATES[0]
    mark = (mark_limit(gate[0].item), f"{gate[1]}/seen/x")
    for n in range(2000):
        counter.hit(windows, f"mcp-auth/key/{n % 50}", gate)
        counter.fail(gate, mark)
        counter.peek(windows[0], "mcp-auth/key/1")
        counter.record(windows[1], "mcp-auth/anonymous/1")
    assert set(threading.enumerate()) == before
    assert not storage.timer.is_alive()  # nothing restarted limits' timer either


# -- threads ---------------------------------------------------------------------------------


@pytest.fixture
def fast_switching() -> Iterator[None]:
    """Switch threads as often as CPython allows, so updates interleave."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(interval)


def hammer(threads: int, calls: int, work: Callable[[], Any]) -> list[Any]:
    results: list[list[Any]] = [[] for _ in range(threads)]
    start = threading.Barrier(threads)

    def worker(out: list[Any]) -> None:
        start.wait()
        for _ in range(calls):
            out.append(work())

    pool = [threading.Thread(target=worker, args=(out,)) for out in results]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return [result for out in results for result in out]


def test_eight_threads_on_one_scope_count_exactly(fast_switching: None) -> None:
    counter = MemoryFixedWindowCounter()
    windows = limits_of("1000000/hour;1000000/day")
    outcomes = hammer(8, 5000, lambda: counter.hit(windows, "mcp-auth/key/one", None))
    # Every hit got its own count: 40000 distinct remainings, in both windows.
    for index in range(2):
        remaining = sorted(outcome.windows[index].remaining for outcome in outcomes)
        assert remaining == list(range(1_000_000 - 40_000, 1_000_000))
    assert set(counter.counts().values()) == {40_000}


def test_eight_threads_admit_exactly_the_limit(fast_switching: None) -> None:
    counter = MemoryFixedWindowCounter()
    windows = limits_of("100/hour")
    outcomes = hammer(8, 500, lambda: counter.hit(windows, "mcp-auth/key/one", GATES[0]))
    assert sum(not outcome.windows[0].breached for outcome in outcomes) == 100
    assert counter.counts() == {windows[0].key("mcp-auth/key/one"): 4000}


def test_eight_threads_failing_count_each_mark_once(fast_switching: None) -> None:
    counter = MemoryFixedWindowCounter()
    gate = (Limit.of(parse("50/minute")), "mcp-auth/failures/10.0.0.1")
    mark = mark_limit(gate[0].item)
    same = hammer(8, 200, lambda: counter.fail(gate, (mark, f"{gate[1]}/seen/typo")))
    assert {window.remaining for window in same} == {49}  # the typo counted once
    names = iter(range(10**6))
    lock = threading.Lock()

    def distinct() -> Any:
        with lock:
            name = next(names)
        return counter.fail(gate, (mark, f"{gate[1]}/seen/{name}"))

    windows = hammer(8, 50, distinct)
    assert sorted(w.remaining for w in windows if not w.breached) == list(range(49))
    assert counter.counts()[gate[0].key(gate[1])] == 50
    # Only the values that were counted are marked (the typo and 49 others).
    assert sum("/seen/" in key for key in counter.counts()) == 50


def test_a_lock_held_at_fork_is_replaced_in_the_child() -> None:
    counter = MemoryFixedWindowCounter()
    counter._lock.acquire()  # as if another thread held it when the process forked
    _forksafe.renew_locks()
    assert not counter.hit(limits_of("1/second"), "mcp-auth/key/a", None).windows[0].breached


# -- memory stays bounded --------------------------------------------------------------------


def test_expired_windows_of_many_scopes_are_swept() -> None:
    clock = Clock(1_700_000_000.0)
    counter = MemoryFixedWindowCounter(clock.time)
    per_second = limits_of("10/second")
    for n in range(100_000):
        counter.hit(per_second, f"mcp-auth/anonymous/{n}", None)
        if n % 100 == 99:
            clock.now += 1.0  # the last 100 scopes' windows expire
        assert len(counter) <= memory_counter.SWEEP_MIN
    assert counter.sweep_at == memory_counter.SWEEP_MIN


def test_running_windows_are_never_swept() -> None:
    clock = Clock(1_700_000_000.0)
    counter = MemoryFixedWindowCounter(clock.time, sweep_min=16)
    per_hour = limits_of("2/hour")
    for n in range(5000):
        counter.hit(per_hour, f"mcp-auth/key/{n}", None)
        clock.now += 0.5
    assert len(counter.counts()) == 5000
    assert counter.sweep_at >= 5000  # twice what was running at the last sweep
    clock.now += 3600  # all expired: the next new scope's insert sweeps them out
    for n in range(counter.sweep_at - len(counter) + 1):
        counter.hit(per_hour, f"mcp-auth/key/new-{n}", None)
    assert len(counter) < 5000
