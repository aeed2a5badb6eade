"""``--breakdown STACK``: the median wall time of each request hook of one stack.

It wraps the functions in Flask's ``app.before_request_funcs`` and
``app.after_request_funcs`` (Flask internals, read and rewrapped here only),
so it lives apart from the measurements that treat a stack as a black box.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common import call
from inprocess import prepared_stack


def breakdown(stack_name: str, iterations: int, workdir: Path) -> str:
    """Median wall time of each request hook of one stack, in real requests.

    cProfile's overhead distorts small functions; a perf_counter_ns pair
    around each hook (about 0.1 us) does not.
    """
    stack = prepared_stack(stack_name, workdir)
    app = stack.app
    timings: dict[str, list[int]] = {}

    def timed(name: str, hook: Callable[..., Any]) -> Callable[..., Any]:
        samples = timings.setdefault(name, [])

        def run(*args: Any) -> Any:
            started = time.perf_counter_ns()
            try:
                return hook(*args)
            finally:
                samples.append(time.perf_counter_ns() - started)

        return run

    for kind, registry in (
        ("before", app.before_request_funcs),
        ("after", app.after_request_funcs),
    ):
        for blueprint, hooks in registry.items():
            registry[blueprint] = [
                timed(f"{kind}_request {getattr(h, '__qualname__', None) or repr(h)[:60]}", h)
                for h in hooks
            ]
    whole: list[int] = []
    gc.disable()
    try:
        for _ in range(iterations):
            started = time.perf_counter_ns()
            call(app, stack.environ)
            whole.append(time.perf_counter_ns() - started)
    finally:
        gc.enable()
    lines = [f"{stack.label}: median wall time over {iterations:,} requests"]
    for name, samples in timings.items():
        lines.append(f"  {statistics.median(samples) / 1000:7.2f} us  {name}")
    lines.append(f"  {statistics.median(whole) / 1000:7.2f} us  the whole request (hooks included)")
    return "\n".join(lines)
