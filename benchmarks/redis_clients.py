"""Client CPU per ``EVALSHA`` of the extension's hit script, by redis-py version and set-up.

Run with ``.tox/bench/bin/python benchmarks/redis_clients.py`` (any Python with
redis-py and ``redis-server`` on the PATH).  For each redis-py version
(``--versions``) it builds a virtual environment under ``--venvs`` (kept between
runs), with and without ``hiredis``, and in each one times the script the rate
limits send per request (both windows and the lockout gate, from
``ratelimit/redis_counters.py``) against a private ``redis-server``, under every
client set-up worth choosing between:

* ``pool``: ``redis.from_url(uri)``, what ``RATELIMIT_STORAGE_URI`` gives by default;
* ``single``: ``single_connection_client=True``, one connection kept by the client;
* ``resp3``: ``protocol=3``; ``resp3+single``: both.

Rounds rotate over the environments (one process each) and inside a process over
the set-ups; the best round counts.  CPU is the client's process CPU time, wall
the elapsed time of a round trip.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import json
import subprocess
import sys
import tempfile
import time
import venv
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
COUNTERS = BENCH_DIR.parent / "flask_mcp_auth" / "ratelimit" / "redis_counters.py"
DEFAULT_VERSIONS = "4.6.0,5.2.1,6.4.0,7.4.1,8.1.0"
#: What one authenticated request sends: the gate and two windows, high limits.
KEYS = ["LIMITS:bench-gate", "LIMITS:bench/minute", "LIMITS:bench/hour"]
ARGS = [5, 60, 10**9, 3600, 10**9]


def hit_script() -> str:
    """The extension's hit script, read from its source (the child has only redis-py)."""
    for node in ast.parse(COUNTERS.read_text()).body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "_REDIS_HIT":
            return str(ast.literal_eval(node.value))
    raise RuntimeError(f"_REDIS_HIT not found in {COUNTERS}")


# -- the child: one environment, every set-up ----------------------------------------------


def set_ups(redis: Any) -> dict[str, dict[str, Any]]:
    configs: dict[str, dict[str, Any]] = {
        "pool": {},
        "single": {"single_connection_client": True},
    }
    if int(redis.__version__.split(".")[0]) >= 5:  # RESP3 arrived in redis-py 5
        configs["resp3"] = {"protocol": 3}
        configs["resp3+single"] = {"protocol": 3, "single_connection_client": True}
    return configs


def child(uri: str, calls: int, round_number: int) -> dict[str, Any]:
    import gc

    import redis

    script_text = hit_script()
    runs = []
    for name, options in set_ups(redis).items():
        client = redis.Redis.from_url(uri, **options)
        script = client.register_script(script_text)
        script(keys=KEYS, args=ARGS)  # loads the script, opens the connection
        runs.append((name, script))
    shift = round_number % len(runs)
    result: dict[str, list[float]] = {}
    gc.disable()
    for name, script in runs[shift:] + runs[:shift]:
        cpu, wall = time.process_time(), time.perf_counter()
        for _ in range(calls):
            script(keys=KEYS, args=ARGS)
        result[name] = [
            (time.process_time() - cpu) / calls * 1e6,
            (time.perf_counter() - wall) / calls * 1e6,
        ]
    try:
        import hiredis  # noqa: F401

        parser = "hiredis"
    except ImportError:
        parser = "python"
    return {"redis": redis.__version__, "parser": parser, "runs": result}


# -- the parent: environments, rounds, the table ------------------------------------------


def environment(root: Path, version: str, with_hiredis: bool) -> Path:
    """A virtual environment with redis-py ``version`` (and hiredis): its python."""
    path = root / f"redis-{version}{'-hiredis' if with_hiredis else ''}"
    python = path / "bin" / "python"
    if not python.exists():
        venv.create(path, with_pip=True)
        packages = [f"redis=={version}", *(["hiredis"] if with_hiredis else [])]
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", *packages], check=True, timeout=600
        )
    return python


def study(uri: str, pythons: list[Path], rounds: int, calls: int) -> dict[str, dict[str, Any]]:
    best: dict[str, dict[str, Any]] = {}
    for round_number in range(rounds):
        shift = round_number % len(pythons)
        for python in pythons[shift:] + pythons[:shift]:
            command = [str(python), __file__, "--child", uri]
            command += ["--calls", str(calls), "--round", str(round_number)]
            done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=True)
            report = json.loads(done.stdout.strip().splitlines()[-1])
            label = f"{report['redis']} ({report['parser']} parser)"
            entry = best.setdefault(label, {})
            for name, (cpu, wall) in report["runs"].items():
                previous = entry.get(name, (float("inf"), float("inf")))
                entry[name] = (min(previous[0], cpu), min(previous[1], wall))
    return best


def table(best: dict[str, dict[str, Any]]) -> list[str]:
    names = ["pool", "single", "resp3", "resp3+single"]
    rows = [
        "| redis-py | " + " | ".join(f"{name}: CPU / wall µs" for name in names) + " |",
        "|---|" + "---:|" * len(names),
    ]
    for label, runs in best.items():
        cells = [
            f"{runs[name][0]:.0f} / {runs[name][1]:.0f}" if name in runs else "n/a"
            for name in names
        ]
        rows.append(f"| {label} | " + " | ".join(cells) + " |")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--versions", default=DEFAULT_VERSIONS, help="comma-separated")
    parser.add_argument("--venvs", type=Path, default=Path(tempfile.gettempdir()) / "redis-venvs")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=3000, help="EVALSHA per set-up per round")
    parser.add_argument("--child", metavar="URI", help=argparse.SUPPRESS)
    parser.add_argument("--round", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.calls, args.round)))
        return 0
    sys.path.insert(0, str(BENCH_DIR))
    from gunicorn_wrk import redis_server

    pythons = [
        environment(args.venvs, version, with_hiredis)
        for version in args.versions.split(",")
        for with_hiredis in (False, True)
    ]
    with contextlib.ExitStack() as cleanup:
        workdir = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="redis-study-")))
        uri = cleanup.enter_context(redis_server(workdir))
        best = study(uri, pythons, args.rounds, args.calls)
    print("\n".join(table(best)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
