"""docs/benchmarks.md: the generated page around the table, and the hand-written part it keeps."""

from __future__ import annotations

from pathlib import Path

from loading import KEY_SOURCE
from machine import describe_machine
from report import Results, noise_line, scaling_lines, summary, table, target_lines

#: Everything after this line of the Markdown page is written by hand and kept when the
#: page is regenerated (the analysis of a run, which the script cannot write).
KEPT_MARKER = (
    "<!-- Everything below this line is kept when benchmarks/bench.py rewrites the page. -->"
)


def with_kept_notes(document: str, output: Path) -> str:
    kept = "\n"
    if output.exists():
        previous = output.read_text(encoding="utf-8")
        if KEPT_MARKER in previous:
            kept = previous.split(KEPT_MARKER, 1)[1]
    return f"{document}\n{KEPT_MARKER}{kept}"


#: The heading of the targets section (tests/processes/test_benchmarks_smoke.py looks for it).
TARGETS_HEADING = "### Targets"

#: The page up to the results: what it is and how to regenerate it.
INTRO = [
    "# Benchmarks",
    "",
    "What flask-mcp-auth costs per request, compared with bare Flask and with the stack "
    "users assemble by hand (Flask-HTTPAuth + flask-limiter + a hand-written audit line). "
    "Regenerate this page with:",
    "",
    "```bash",
    "tox -e bench                         # full run (about 3 minutes), rewrites this page",
    "tox -e bench -- --no-gunicorn        # in-process and scaling only",
    "tox -e bench -- --only mcp_auth      # quick A/B of some stacks against bare Flask",
    "tox -e bench -- --profile mcp_full   # cProfile of one stack's requests",
    "tox -e bench -- --smoke --output /tmp/b.md  # seconds; what the test suite runs",
    "tox -e bench -- --smoke-gunicorn --output /tmp/b.md  # the smoke run with gunicorn too",
    "```",
    "",
    "`python benchmarks/bench.py --help` lists every option. The numbers are ratios to "
    "bare Flask measured in the same run, because the machine's absolute speed drifts. "
    "The run needs Flask-HTTPAuth (installed by the tox environment), gunicorn, `wrk` and "
    "`redis-server`; without one of them the rows that need it say n/a and why. "
    "`MCP_*`, `JWT_SECRET` and `DEBUG` from the calling shell are ignored.",
    "",
]

#: The page after the results: what each stack is and how it is measured.
WHAT_EACH_STACK_IS = [
    "## What each stack is",
    "",
    'All stacks serve `GET /data` returning `{"ok": true}`; the key is sent in '
    "`X-API-Key`. Rate limits are a minute and an hour window set high enough never to "
    "trigger (fixed window). Every stack is checked before it is timed: 200 with the key, "
    "401 without it or with a wrong one, rate-limit headers and an audit line where the "
    "stack promises them. The definitions are in `benchmarks/stacks.py`. Timing uses the "
    "process's CPU time by default (`--clock wall` for elapsed time): on a shared "
    "machine it leaves out the time the benchmark waits for a core, and it includes "
    "the timer thread in which `limits`' memory storage expires counters (the flask-limiter "
    "stacks; flask-mcp-auth counts `memory://` without one).",
    "",
    "- **bare Flask**: the route alone; measured twice, the second time as a control.",
    '- **Flask-HTTPAuth token auth**: `HTTPTokenAuth(header="X-API-Key")`, '
    "`verify_token` a dictionary lookup, `@auth.login_required` on the route.",
    "- **flask-limiter**: `Limiter(key_func=<the X-API-Key header>, "
    'default_limits=[minute, hour], storage_uri="memory://")`.',
    "- **hand-assembled**: the two above plus an `after_request` hook writing one JSON "
    "line (time, user, method, path, status, address) through a `logging.FileHandler`.",
    "- **flask-mcp-auth, authentication only**: a signed key (`mcp_<keyId>_<signature>`, "
    "`JWT_SECRET`), 10 keys without `rateLimit`, no default limit, audit off, "
    '`MCP_DEFAULT_ROLE=""` so that a request without a key gets 401 like '
    "Flask-HTTPAuth's.",
    "- **flask-mcp-auth full**: the same with `rateLimit` (per minute and per hour) on "
    "every key, `RATELIMIT_STORAGE_URI` `memory://` (or Redis under gunicorn), "
    "`MCP_AUDIT_LOG` a file, the failed-attempt lockout at its default. The audit "
    "destination is process-wide, so in process both full rows write to the same file.",
    "- **Scaling**: the full configuration with `--keys` keys (the presented key is one "
    "of them); load time and resident memory come from fresh processes that build the "
    f"app with keys from {KEY_SOURCE} (written beforehand by the parent process) and "
    "answer one request.",
    "- **Gunicorn**: each stack in its own `gunicorn --workers 2` on 127.0.0.1, all "
    "started before the first measurement, warmed for a second each, then measured "
    "round by round in rotating order; a private `redis-server` on a free port serves "
    "the Redis rows. Requests per second are wrk's; any non-2xx answer invalidates the "
    "run. Redis round trips per request are counted with `MONITOR` over 100 requests "
    "(commands a Lua script runs inside Redis are not round trips).",
    "- **The one-round-trip floor**: bare Flask plus one `EVALSHA` of `return 1` per "
    "request, through a client built as `limits` builds the storage's "
    "(`redis.from_url`). Exact counting shared by several workers cannot cost less than "
    "that round trip; the full Redis stack's ratio to this row says how close it comes.",
    "- **One connection per worker**: the floor and the full Redis stack again with "
    '`RATELIMIT_STORAGE_OPTIONS = {"single_connection_client": True}`: redis-py keeps '
    "one connection instead of taking one from its pool for every command.",
    "- **CPU inside the workers**: every gunicorn stack is wrapped in a meter "
    "(`benchmarks/worker_cpu.py`) that adds up the thread's CPU time around each WSGI "
    "call and reports it with the worker process's CPU time. The CPU table is the "
    "difference over each wrk round divided by the requests served (the best round): "
    "what a request costs where users pay for it, with cold caches and the cores shared "
    "with the HTTP parsing, the kernel and wrk.",
    "- **Redis clients** (`benchmarks/redis_clients.py`, run separately): client CPU "
    "time per `EVALSHA` of the extension's hit script, by redis-py version, with and "
    "without hiredis, with the connection pool or one connection, RESP2 or RESP3.",
    "",
]


def method_line(results: Results) -> str:
    """How this run measured, in one paragraph."""
    args = results.args
    method = (
        f"In process: {args.iterations:,} direct WSGI calls per stack per round, {args.repeats} "
        "rounds, order rotated each round, garbage collection off in the timed loops, "
        f"{'process CPU time' if args.clock == 'cpu' else 'wall-clock time'}; per-request "
        "cost is the best round, spread is median over best."
    )
    if results.throughput.rps:
        method += (
            f" Gunicorn: 2 sync workers per stack, `wrk -t1 -c{args.connections}` on loopback for "
            f"{args.duration:g} s, {args.wrk_rounds} interleaved rounds, best round per stack."
        )
    else:
        method += f" Gunicorn: {results.throughput.note or 'not run'}."
    return method


def render(results: Results) -> tuple[str, str]:
    """The table for the terminal, and the whole Markdown document."""
    document = "\n".join(
        [
            *INTRO,
            f"## Results ({results.started:%Y-%m-%d %H:%M} UTC)",
            "",
            method_line(results),
            "",
            *table(results),
            "",
            noise_line(results),
            "",
            "### Scaling",
            "",
            *scaling_lines(results),
            "",
            TARGETS_HEADING,
            "",
            *target_lines(results),
            "",
            "### Machine",
            "",
            *describe_machine(results.load_before),
            "",
            *WHAT_EACH_STACK_IS,
        ]
    )
    return summary(results), document
