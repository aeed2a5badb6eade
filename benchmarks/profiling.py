"""``--profile STACK``: cProfile of one in-process stack's requests.

(Not named ``profile.py``: that would shadow the standard module cProfile imports.)
"""

from __future__ import annotations

import cProfile
import io
import pstats
from pathlib import Path

from inprocess import prepared_stack, time_requests


def profile(stack_name: str, iterations: int, workdir: Path, limit: int) -> str:
    stack = prepared_stack(stack_name, workdir)
    profiler = cProfile.Profile()
    profiler.enable()
    time_requests(stack.app, stack.environ, iterations)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(limit)
    return out.getvalue()
