"""The in-process measurement: each stack's WSGI callable called directly.

Every stack runs ``iterations`` requests per round, round after round, the
order rotating each round so that drift of the machine's speed touches every
stack alike.  Garbage collection is off inside the timed loops.  Per-request
cost is the minimum over the rounds.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import stacks
from checks import (
    Check,
    expect_audit_line,
    expect_ok,
    expect_rate_limit_headers,
    expect_refusal,
)
from common import (
    AUTH_ONLY_TARGET,
    FULL_TARGET,
    KEY_HEADERS,
    MANY_KEYS_TARGET,
    OAUTH_TARGET,
    WSGIApp,
    make_environ,
    rotated,
)

#: The clock of the timed loops: "cpu" (the process's CPU time, user + system, all threads)
#: by default, so time spent descheduled on a shared machine does not count; "wall" for
#: elapsed time. All threads: limits' memory storage expires counters in a timer thread.
CLOCKS: dict[str, Callable[[], float]] = {"cpu": time.process_time, "wall": time.perf_counter}
clock = CLOCKS["cpu"]


def use_clock(name: str) -> None:
    """Time the loops of this process with ``CLOCKS[name]``."""
    global clock
    clock = CLOCKS[name]


def _discard_start_response(
    status: str, headers: list[tuple[str, str]], exc_info: Any = None
) -> Any:
    return None


def time_requests(app: WSGIApp, environ: dict[str, Any], iterations: int) -> float:
    """Seconds per request over ``iterations`` calls, garbage collection off."""
    start_response = _discard_start_response
    copy_environ = environ.copy
    gc.collect()
    gc.disable()
    try:
        started = clock()
        for _ in range(iterations):
            body = app(copy_environ(), start_response)
            for _chunk in body:
                pass
            body.close()
        elapsed = clock() - started
    finally:
        gc.enable()
    return elapsed / iterations


@dataclass
class Stack:
    """One row of the in-process measurement."""

    name: str
    label: str
    build: Callable[[], Any]
    #: The row's reference ratio (a figure to compare with, or the project's target).
    reference: str = ""
    #: Checks run once before timing; they raise if the stack does not do its job.
    checks: tuple[Check, ...] = ()
    unavailable: str = ""
    #: The request's headers, from the built app (default: the signed key in X-API-Key).
    headers: Callable[[Any], dict[str, str]] | None = None
    app: Any = None
    environ: dict[str, Any] = field(default_factory=dict)
    samples: list[float] = field(default_factory=list)

    @property
    def best(self) -> float:
        return min(self.samples)

    @property
    def spread(self) -> float:
        """Median over best, minus one."""
        return statistics.median(self.samples) / self.best - 1


def by_name(all_stacks: Iterable[Stack]) -> dict[str, Stack]:
    return {stack.name: stack for stack in all_stacks}


def in_process_stacks(workdir: Path, many_keys: int) -> list[Stack]:
    no_httpauth = stacks.httpauth_missing()
    hand_audit = workdir / "hand-audit.log"
    full_audit = workdir / "mcp-audit.log"
    many_audit = workdir / "mcp-audit-many.log"
    oauth_audit = workdir / "mcp-audit-oauth.log"
    authenticating = (expect_ok, expect_refusal)
    full_checks = (expect_ok, expect_refusal, expect_rate_limit_headers)
    return [
        Stack("bare", "bare Flask", stacks.bare, "1.00", (expect_ok,)),
        Stack(
            "httpauth",
            "Flask-HTTPAuth token auth",
            stacks.httpauth,
            "1.07",
            authenticating,
            no_httpauth,
        ),
        Stack(
            "limiter",
            "flask-limiter, key_func on the header, minute + hour limits",
            stacks.limiter,
            "3.2",
            (expect_ok,),
        ),
        Stack(
            "hand",
            "Flask-HTTPAuth + flask-limiter + one JSON audit line",
            lambda: stacks.hand_assembled(str(hand_audit)),
            "3.9",
            (*authenticating, expect_audit_line(hand_audit)),
            no_httpauth,
        ),
        Stack(
            "mcp_auth",
            "flask-mcp-auth, authentication only",
            stacks.mcp_auth_only,
            f"target <= {AUTH_ONLY_TARGET}",
            authenticating,
        ),
        Stack(
            "mcp_full",
            "flask-mcp-auth full (limits + audit), 10 keys",
            lambda: stacks.mcp_full(str(full_audit)),
            f"target <= {FULL_TARGET}",
            (*full_checks, expect_audit_line(full_audit)),
        ),
        Stack(
            "mcp_full_oauth",
            "flask-mcp-auth full, the same request with an OAuth access token",
            lambda: stacks.mcp_full_oauth(str(oauth_audit)),
            f"target <= {OAUTH_TARGET} x full",
            (*full_checks, expect_audit_line(oauth_audit)),
            headers=stacks.oauth_headers,
        ),
        Stack(
            "mcp_full_many",
            f"flask-mcp-auth full, {many_keys:,} keys",
            lambda: stacks.mcp_full(
                str(many_audit), keys=stacks.key_store(many_keys, rate_limited=True)
            ),
            f"target <= {MANY_KEYS_TARGET} x 10 keys",
            (*full_checks, expect_audit_line(many_audit)),
        ),
        Stack(
            "mcp_auth_many",
            f"flask-mcp-auth, authentication only, {many_keys:,} keys",
            lambda: stacks.mcp_auth_only(keys=stacks.key_store(many_keys, rate_limited=False)),
            "per-key lookups alone",
            authenticating,
        ),
        Stack("bare_control", "bare Flask again (control)", stacks.bare, "1.00", (expect_ok,)),
    ]


def prepare(stack: Stack) -> None:
    if stack.unavailable:
        return
    stack.app = stack.build()
    stack.environ = make_environ(stack.headers(stack.app) if stack.headers else KEY_HEADERS)
    for check in stack.checks:
        check(stack.app, stack.environ)


def measure_in_process(runnable: list[Stack], iterations: int, repeats: int) -> None:
    warm_up = max(10, iterations // 10)
    for stack in runnable:
        time_requests(stack.app, stack.environ, warm_up)
    for round_number in range(repeats):
        for stack in rotated(runnable, round_number):
            stack.samples.append(time_requests(stack.app, stack.environ, iterations))


def prepared_stack(stack_name: str, workdir: Path) -> Stack:
    """One stack, built, checked and warmed, for ``--profile`` and ``--breakdown``."""
    all_stacks = by_name(in_process_stacks(workdir, 1000))
    if stack_name not in all_stacks:
        raise SystemExit(f"unknown stack {stack_name!r}; one of {', '.join(all_stacks)}")
    stack = all_stacks[stack_name]
    if stack.unavailable:
        raise SystemExit(f"{stack_name}: {stack.unavailable}")
    prepare(stack)
    time_requests(stack.app, stack.environ, 200)
    return stack


def compare(names: list[str], workdir: Path, many_keys: int, iterations: int, repeats: int) -> str:
    """Quick A/B (``--only``): a few stacks against bare Flask, interleaved as in the full run."""
    wanted = {"bare", *names}
    chosen = [s for s in in_process_stacks(workdir, many_keys) if s.name in wanted]
    unknown = wanted - {s.name for s in chosen}
    if unknown:
        raise SystemExit(f"unknown stack(s): {', '.join(sorted(unknown))}")
    for stack in chosen:
        if stack.unavailable:
            raise SystemExit(f"{stack.name}: {stack.unavailable}")
        prepare(stack)
    measure_in_process(chosen, iterations, repeats)
    bare = chosen[0].best
    return "\n".join(
        f"{stack.name:14} {stack.best * 1e6:7.1f} us  {stack.best / bare:5.3f}x bare  "
        f"spread {stack.spread:.0%}"
        for stack in chosen
    )
