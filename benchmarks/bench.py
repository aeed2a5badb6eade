"""What flask-mcp-auth costs per request, against the stacks users assemble by hand.

Run with ``tox -e bench`` (or ``python benchmarks/bench.py`` in an environment
with Flask-HTTPAuth and gunicorn installed).  Prints one table and writes it,
with a description of the machine, to ``docs/benchmarks.md``.

How the numbers are made (see docs/benchmarks.md for the reasoning):

* In process: each stack's WSGI callable is called directly with a prepared
  environ and its body consumed.  Every stack runs ``--iterations`` requests
  per round, round after round, the order rotating each round so that drift of
  the machine's speed touches every stack alike.  Garbage collection is off
  inside the timed loops.  Per-request cost is the minimum over the rounds,
  reported as a ratio to bare Flask of the same run; a second bare-Flask
  measurement is a control that shows how noisy the run was.
* Scaling: the full configuration with 10 and with ``--keys`` keys, the time to
  load that many keys, and the resident memory of a fresh process holding them.
* Throughput: gunicorn with 2 sync workers per stack on loopback, loaded by
  ``wrk``; rounds interleaved across stacks, best round per stack.

The work is split by job; this file parses the command line and calls them:

* ``inprocess.py``: the timing loop, the stack list, ``--only``; ``checks.py``: what each
  stack is checked to do before it is timed; ``stacks.py``: the stacks themselves.
* ``loading.py``: key loading time; ``memory.py``: resident memory per key (fresh processes).
* ``gunicorn_wrk.py``: throughput under gunicorn + wrk, Redis round trips.
* ``profiling.py`` (``--profile``) and ``breakdown.py`` (``--breakdown``).
* ``report.py``: the table and summary lines; ``page.py``: docs/benchmarks.md;
  ``machine.py``: the machine description; ``common.py``: helpers shared by all of them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

# The directory is not a package: its modules import each other from it, and gunicorn
# imports stacks.py the same way (--pythonpath).
sys.path.insert(0, str(Path(__file__).resolve().parent))

import inprocess
from breakdown import breakdown
from common import REPO_ROOT
from gunicorn_wrk import measure_throughput, skipped_throughput
from memory import measure_scaling, probe_memory
from page import render, with_kept_notes
from profiling import profile
from report import Results


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=5000, help="requests per stack per round")
    parser.add_argument(
        "--clock",
        choices=sorted(inprocess.CLOCKS),
        default="cpu",
        help="cpu: process CPU time, robust on a shared machine (default); wall: elapsed time",
    )
    parser.add_argument("--repeats", type=int, default=7, help="rounds; the best one counts")
    parser.add_argument("--keys", type=int, default=100_000, help="key count for the scaling rows")
    parser.add_argument("--probes", type=int, default=3, help="fresh processes per key count")
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--wrk-rounds", type=int, default=4, help="wrk runs per stack")
    parser.add_argument("--connections", type=int, default=8, help="wrk connections")
    parser.add_argument("--no-gunicorn", action="store_true", help="skip the throughput part")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="a few iterations, 1,000 keys, no gunicorn: checks that every row is produced",
    )
    parser.add_argument(
        "--smoke-gunicorn",
        action="store_true",
        help="--smoke plus one 1-second wrk round per gunicorn stack: checks those rows too",
    )
    parser.add_argument(
        "--output", type=Path, default=REPO_ROOT / "docs" / "benchmarks.md", help="Markdown file"
    )
    parser.add_argument("--workdir", type=Path, help="where logs go (default: a temporary dir)")
    parser.add_argument("--profile", metavar="STACK", help="profile one in-process stack and exit")
    parser.add_argument(
        "--breakdown", metavar="STACK", help="time each request hook of one stack and exit"
    )
    parser.add_argument(
        "--only",
        metavar="STACKS",
        help="comma-separated in-process stacks (e.g. mcp_auth,bare_control) to compare with "
        "bare Flask; prints ratios and exits without writing the document",
    )
    parser.add_argument("--probe-memory", type=int, metavar="KEYS", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.smoke or args.smoke_gunicorn:
        args.iterations, args.repeats, args.keys, args.probes = 30, 2, 1000, 1
        args.no_gunicorn = not args.smoke_gunicorn
        args.duration, args.wrk_rounds = 1, 1
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # The stacks are configured explicitly; settings or DEBUG=auth:* from the
    # caller's shell would change what is measured (and reach the subprocesses).
    for name in list(os.environ):
        if name.startswith("MCP_") or name in ("DEBUG", "JWT_SECRET"):
            del os.environ[name]
    inprocess.use_clock(args.clock)
    with contextlib.ExitStack() as cleanup:
        if args.workdir is None:
            args.workdir = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="bench-")))
        args.workdir.mkdir(parents=True, exist_ok=True)
        if args.probe_memory is not None:
            print(json.dumps(probe_memory(args.probe_memory, args.workdir)))
            return 0
        if args.profile:
            print(profile(args.profile, args.iterations, args.workdir, 40))
            return 0
        if args.breakdown:
            print(breakdown(args.breakdown, args.iterations, args.workdir))
            return 0
        if args.only:
            only = args.only.split(",")
            print(inprocess.compare(only, args.workdir, args.keys, args.iterations, args.repeats))
            return 0
        return run(args)
    return 0


def run(args: argparse.Namespace) -> int:
    started = datetime.now(UTC)
    load_before = os.getloadavg()
    all_stacks = inprocess.in_process_stacks(args.workdir, args.keys)
    for stack in all_stacks:
        inprocess.prepare(stack)
    runnable = [s for s in all_stacks if not s.unavailable]
    print(
        f"in process: {len(runnable)} stacks x {args.repeats} rounds x {args.iterations} requests",
        file=sys.stderr,
    )
    inprocess.measure_in_process(runnable, args.iterations, args.repeats)
    print("scaling: memory probes", file=sys.stderr)
    scaling = measure_scaling(args.keys, args.workdir, args.probes)
    if args.no_gunicorn:
        throughput = skipped_throughput(
            "skipped (--no-gunicorn)" if not args.smoke else "skipped (--smoke)"
        )
    else:
        print("throughput: gunicorn + wrk", file=sys.stderr)
        throughput = measure_throughput(
            args.workdir, args.duration, args.wrk_rounds, args.connections
        )
    results = Results(args, all_stacks, scaling, throughput, started, load_before)
    terminal, document = render(results)
    print(terminal)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(with_kept_notes(document, args.output), encoding="utf-8")
    print(f"\nwritten to {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
