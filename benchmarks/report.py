"""The results table and the summary lines under it (noise, scaling, targets).

The same lines go to the terminal and into docs/benchmarks.md (see page.py).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from datetime import datetime

from common import (
    AUTH_ONLY_TARGET,
    FULL_TARGET,
    GUNICORN_FLOOR_TARGET,
    GUNICORN_MEMORY_TARGET,
    GUNICORN_REDIS_TARGET,
    MANY_KEYS_TARGET,
    OAUTH_TARGET,
)
from gunicorn_wrk import Throughput
from inprocess import Stack, by_name
from loading import KEY_SOURCE
from memory import Scaling

#: In-process rows that have a gunicorn measurement in the same table row.
GUNICORN_TWIN = {"bare": "bare", "mcp_full": "mcp_full_memory"}
#: Rows measured only under gunicorn: name -> (label, reference figure or target).
GUNICORN_ONLY = {
    "floor_redis": ("bare Flask + one EVALSHA per request (the one-round-trip floor)", "floor"),
    "mcp_full_redis": ("flask-mcp-auth full, Redis storage", f"target >= {GUNICORN_REDIS_TARGET}"),
    "floor_redis_one": (
        "the floor, one Redis connection per worker",
        "floor, one connection",
    ),
    "mcp_full_redis_one": (
        "flask-mcp-auth full, Redis, one connection per worker",
        f"target >= {GUNICORN_REDIS_TARGET}",
    ),
    "hand_redis": ("Flask-HTTPAuth + flask-limiter + audit line, Redis storage", "0.30"),
}


@dataclass
class Results:
    args: argparse.Namespace
    stacks: list[Stack]
    scaling: Scaling
    throughput: Throughput
    started: datetime
    load_before: tuple[float, ...]


def ratio_text(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def verdict(value: float | None, target: float, at_most: bool) -> str:
    if value is None:
        return "not measured"
    met = value <= target if at_most else value >= target
    return "met" if met else "**missed**"


def in_process_ratio(results: Results, name: str) -> float | None:
    measured = by_name(results.stacks)
    stack, bare = measured[name], measured["bare"]
    if stack.unavailable or not stack.samples:
        return None
    return stack.best / bare.best


def gunicorn_ratio(results: Results, name: str) -> float | None:
    rps = results.throughput.rps
    if name not in rps or "bare" not in rps:
        return None
    return rps[name] / rps["bare"]


def floor_ratio(results: Results, suffix: str = "") -> float | None:
    """Full with Redis against the floor row with the same Redis client set-up."""
    rps = results.throughput.rps
    full, floor = rps.get(f"mcp_full_redis{suffix}"), rps.get(f"floor_redis{suffix}")
    if full is None or floor is None:
        return None
    return full / floor


#: Every gunicorn stack's label in the CPU table.
GUNICORN_LABELS = {
    "bare": "bare Flask",
    "mcp_full_memory": "flask-mcp-auth full, memory://",
    **{name: label for name, (label, _) in GUNICORN_ONLY.items()},
}


def cpu_table(results: Results) -> list[str]:
    """CPU per request inside the gunicorn workers, and what each stack adds to bare Flask's."""
    cpu = results.throughput.cpu
    if "bare" not in cpu:
        return []
    bare_app, bare_process = cpu["bare"]
    rows = [
        "CPU time per request inside the gunicorn workers (best round; the application is "
        "the WSGI call, the worker adds gunicorn's HTTP and socket work):",
        "",
        "| stack | application, µs | + vs bare | worker process, µs | + vs bare |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, label in GUNICORN_LABELS.items():
        if name not in cpu:
            continue
        app_cpu, process_cpu = cpu[name]
        rows.append(
            f"| {label} | {app_cpu * 1e6:.0f} | {(app_cpu - bare_app) * 1e6:+.0f} "
            f"| {process_cpu * 1e6:.0f} | {(process_cpu - bare_process) * 1e6:+.0f} |"
        )
    return rows


def gunicorn_cells(results: Results, name: str) -> list[str]:
    rps = results.throughput.rps.get(name)
    if rps is None:
        return ["n/a", "n/a"]
    return [f"{rps:,.0f}", ratio_text(gunicorn_ratio(results, name))]


def table(results: Results) -> list[str]:
    """The one table: in-process rows, then the gunicorn-only rows, then why any cell is n/a."""
    rows = [
        "| stack | µs per request | x bare, in process | spread | reference or target | "
        "req/s, gunicorn | x bare, gunicorn |",
        "|---|---:|---:|---:|---|---:|---:|",
    ]
    notes: list[str] = []
    throughput = results.throughput
    for stack in results.stacks:
        if stack.unavailable:
            cells = ["n/a", "n/a", ""]
            notes.append(f"{stack.label}: {stack.unavailable}")
        else:
            ratio = ratio_text(in_process_ratio(results, stack.name))
            cells = [f"{stack.best * 1e6:.1f}", ratio, f"{stack.spread:.0%}"]
        cells.append(stack.reference)
        gunicorn_name = GUNICORN_TWIN.get(stack.name)
        cells += gunicorn_cells(results, gunicorn_name) if gunicorn_name else ["", ""]
        rows.append(f"| {stack.label} | {' | '.join(cells)} |")
    for name, (label, reference) in GUNICORN_ONLY.items():
        rows.append(
            f"| {label} | | | | {reference} | {' | '.join(gunicorn_cells(results, name))} |"
        )
    for name in (*GUNICORN_TWIN.values(), *GUNICORN_ONLY):
        if name not in throughput.rps and name in throughput.skipped:
            notes.append(f"gunicorn {name}: {throughput.skipped[name]}")
    if throughput.round_trips:
        counts = "; ".join(
            f"{GUNICORN_ONLY[name][0]}: {count:.2f}"
            for name, count in throughput.round_trips.items()
        )
        rows += ["", f"Redis round trips per request (MONITOR): {counts}."]
    if notes:
        rows += ["", "n/a:", *(f"- {note}" for note in dict.fromkeys(notes))]
    cpu_rows = cpu_table(results)
    if cpu_rows:
        rows += ["", *cpu_rows]
    return rows


def noise_line(results: Results) -> str:
    control = in_process_ratio(results, "bare_control")
    if control is None:
        return ""
    if abs(control - 1) > 0.03:
        return (
            f"**Noisy run:** the two bare-Flask measurements differ by {abs(control - 1):.0%}; "
            "treat differences of that size as noise."
        )
    return f"The control (bare Flask measured twice) agrees within {abs(control - 1):.1%}."


def scaling_lines(results: Results) -> list[str]:
    scaling = results.scaling
    measured = by_name(results.stacks)
    few, many = measured["mcp_full"], measured["mcp_full_many"]
    auth_few, auth_many = measured["mcp_auth"], measured["mcp_auth_many"]
    delta_mib = (scaling.rss_many_kib - scaling.rss_few_kib) / 1024
    return [
        f"- Request cost, full configuration, {scaling.many_keys:,} keys vs 10 keys: "
        f"{many.best / few.best:.3f}x",
        f"- Request cost, authentication only (the per-key lookups without the noise of "
        f"the memory storage's timer thread), {scaling.many_keys:,} keys vs 10 keys: "
        f"{auth_many.best / auth_few.best:.3f}x",
        f"- Start-up (full configuration): loading {scaling.many_keys:,} keys "
        f"from {KEY_SOURCE} takes {scaling.load_seconds:.2f} s of CPU time "
        "(best of the probes).",
        f"- Resident memory of a fresh process serving the full configuration "
        f"(what each gunicorn worker holds): {scaling.rss_few_kib / 1024:.1f} MiB with 10 keys, "
        f"{scaling.rss_many_kib / 1024:.1f} MiB with {scaling.many_keys:,} keys "
        f"(+{delta_mib:.1f} MiB, {delta_mib * 1024 * 1024 / scaling.many_keys:.0f} bytes a key).",
    ]


def target_lines(results: Results) -> list[str]:
    """One line per target of the project: the measured ratio and whether it is met."""
    measured = by_name(results.stacks)
    keys_ratio = measured["mcp_full_many"].best / measured["mcp_full"].best
    oauth_ratio = measured["mcp_full_oauth"].best / measured["mcp_full"].best
    many_keys = results.args.keys
    checks = [
        (
            "authentication only <= 1.15x bare",
            in_process_ratio(results, "mcp_auth"),
            AUTH_ONLY_TARGET,
            True,
        ),
        ("full <= 1.5x bare, in process", in_process_ratio(results, "mcp_full"), FULL_TARGET, True),
        (
            f"{many_keys:,} keys <= 1.05x the cost of 10",
            keys_ratio,
            MANY_KEYS_TARGET,
            True,
        ),
        (
            "an OAuth access token <= 1.10x the cost of the signed key",
            oauth_ratio,
            OAUTH_TARGET,
            True,
        ),
        (
            "gunicorn, full with memory:// >= 0.85x bare",
            gunicorn_ratio(results, "mcp_full_memory"),
            GUNICORN_MEMORY_TARGET,
            False,
        ),
        (
            "gunicorn, full with Redis >= 0.70x bare",
            gunicorn_ratio(results, "mcp_full_redis"),
            GUNICORN_REDIS_TARGET,
            False,
        ),
        (
            "gunicorn, full with Redis >= 0.90x the one-round-trip floor",
            floor_ratio(results),
            GUNICORN_FLOOR_TARGET,
            False,
        ),
        (
            "gunicorn, full with Redis, one connection per worker, >= 0.70x bare",
            gunicorn_ratio(results, "mcp_full_redis_one"),
            GUNICORN_REDIS_TARGET,
            False,
        ),
        (
            "gunicorn, the same >= 0.90x the floor with one connection per worker",
            floor_ratio(results, "_one"),
            GUNICORN_FLOOR_TARGET,
            False,
        ),
    ]
    return [
        f"- {what}: {ratio_text(value)} — {verdict(value, target, at_most)}"
        for what, value, target, at_most in checks
    ]


def summary(results: Results) -> str:
    """What the terminal shows: the table and every summary line."""
    return "\n".join(
        [
            *table(results),
            "",
            noise_line(results),
            "",
            *scaling_lines(results),
            "",
            *target_lines(results),
        ]
    )
