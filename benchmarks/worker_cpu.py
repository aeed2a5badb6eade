"""CPU time per request inside real gunicorn workers, per stack.

Every stack gunicorn serves is wrapped in :class:`CPUMeter`, which adds up the
calling thread's CPU time around each WSGI call (everything the application
and the extension do for a request) and answers ``GET /__bench/cpu`` with its
totals and the worker process's CPU time (which adds gunicorn's HTTP parsing
and socket work).  :func:`snapshot` asks every worker of a server for them;
the difference of two snapshots, divided by the requests in between, is the
cost of one request where users pay it, with cold caches and shared cores,
unlike the in-process loop.
"""

from __future__ import annotations

import http.client
import json
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

CPU_PATH = "/__bench/cpu"

StartResponse = Callable[..., Any]
WSGICallable = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class CPUMeter:
    """WSGI middleware: thread CPU time around each call of the wrapped application."""

    def __init__(self, app: WSGICallable) -> None:
        self.app = app
        self.requests = 0
        self.cpu = 0.0

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == CPU_PATH:
            return self._report(start_response)
        started = time.thread_time()
        try:
            return self.app(environ, start_response)
        finally:
            self.cpu += time.thread_time() - started
            self.requests += 1

    def _report(self, start_response: StartResponse) -> list[bytes]:
        body = json.dumps(
            {
                "pid": os.getpid(),
                "requests": self.requests,
                "app_cpu": self.cpu,
                "process_cpu": time.process_time(),
            }
        ).encode()
        # A new connection per report, so that the next one may reach another worker.
        headers = [("Content-Type", "application/json"), ("Connection", "close")]
        start_response("200 OK", [*headers, ("Content-Length", str(len(body)))])
        return [body]


@dataclass(frozen=True)
class Totals:
    """The sum over a server's workers of what their meters report."""

    requests: int
    app_cpu: float
    process_cpu: float

    def per_request_since(self, earlier: Totals) -> tuple[float, float, int]:
        """(app, process) CPU seconds per request between two snapshots, and the requests."""
        requests = self.requests - earlier.requests
        if requests <= 0:
            raise RuntimeError("no request was served between two CPU snapshots")
        return (
            (self.app_cpu - earlier.app_cpu) / requests,
            (self.process_cpu - earlier.process_cpu) / requests,
            requests,
        )


def _report(port: int) -> dict[str, Any]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", CPU_PATH)
        return json.loads(connection.getresponse().read())
    finally:
        connection.close()


def snapshot(port: int, workers: int, attempts: int = 200) -> Totals:
    """Every worker's totals: asks until each of ``workers`` processes has answered."""
    seen: dict[int, dict[str, Any]] = {}
    for _ in range(attempts):
        report = _report(port)
        seen[report["pid"]] = report
        if len(seen) == workers:
            return Totals(
                requests=sum(r["requests"] for r in seen.values()),
                app_cpu=sum(r["app_cpu"] for r in seen.values()),
                process_cpu=sum(r["process_cpu"] for r in seen.values()),
            )
    raise RuntimeError(f"only {len(seen)} of {workers} gunicorn workers answered {CPU_PATH}")
