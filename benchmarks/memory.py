"""Resident memory per key: fresh processes holding 10 and many keys.

Each probe is a new run of ``bench.py --probe-memory KEYS``, which builds the
full configuration (timing the load), answers one request and reports its
resident set size.  The parent writes the key files beforehand.
"""

from __future__ import annotations

import gc
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from checks import expect_ok
from common import KEY_HEADERS, SCRIPT, make_environ
from loading import key_file, load_full_app


def resident_kib() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("VmRSS not found in /proc/self/status")


def probe_memory(key_count: int, workdir: Path) -> dict[str, Any]:
    """Build the full configuration with ``key_count`` keys in this process, answer one
    request, report load time and RSS."""
    app, load_seconds = load_full_app(key_count, workdir)
    expect_ok(app, make_environ(KEY_HEADERS))
    gc.collect()
    return {"keys": key_count, "load_seconds": load_seconds, "rss_kib": resident_kib()}


def run_probe(key_count: int, workdir: Path) -> dict[str, Any]:
    key_file(key_count, workdir)
    command = [
        sys.executable,
        str(SCRIPT),
        "--probe-memory",
        str(key_count),
        "--workdir",
        str(workdir),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"memory probe failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


@dataclass
class Scaling:
    many_keys: int
    load_seconds: float
    rss_few_kib: int
    rss_many_kib: int


def measure_scaling(many_keys: int, workdir: Path, probes: int) -> Scaling:
    few = [run_probe(10, workdir) for _ in range(probes)]
    many = [run_probe(many_keys, workdir) for _ in range(probes)]
    return Scaling(
        many_keys=many_keys,
        load_seconds=min(p["load_seconds"] for p in many),
        rss_few_kib=min(p["rss_kib"] for p in few),
        rss_many_kib=min(p["rss_kib"] for p in many),
    )
