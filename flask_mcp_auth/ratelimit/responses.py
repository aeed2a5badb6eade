"""What a counted request is told: the X-RateLimit-* headers and the 429 errors."""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime

from flask import Response

from .._time import utc_iso
from ..errors import RateLimitExceeded, TooManyFailedAttempts
from ..keys.model import APIKey
from .counters import Window
from .limits import describe

_HEADER_LIMIT = "X-RateLimit-Limit"
_HEADER_REMAINING = "X-RateLimit-Remaining"
_HEADER_RESET = "X-RateLimit-Reset"


def add_headers(window: Window, response: Response) -> Response:
    """X-RateLimit-* on the response (success or 429) of a request counted against a limit."""
    headers = response.headers
    headers.add(_HEADER_LIMIT, str(window.item.amount))
    headers.add(_HEADER_REMAINING, str(max(window.remaining, 0)))
    headers.add(_HEADER_RESET, str(math.ceil(window.reset_at)))
    return response


def locked_out(reset_at: float) -> TooManyFailedAttempts:
    retry_after = _seconds_until(reset_at)
    return TooManyFailedAttempts(
        "Too many failed authentication attempts from this address. "
        f"Try again in {retry_after} seconds (at {_iso(reset_at)}).",
        headers=[("Retry-After", str(retry_after))],
        data={"retry_after": retry_after},
    )


def reported_window(windows: tuple[Window, ...]) -> Window:
    """The window the headers report: the breached one, else the nearest to refusing
    (fewest requests left, then the earliest reset)."""
    if windows[-1].breached:
        return windows[-1]
    return min(windows, key=_closeness)


def _closeness(window: Window) -> tuple[int, float]:
    return window.remaining, window.reset_at


def key_advice(key: APIKey) -> str:
    if key.requests_per_minute is None and key.requests_per_hour is None:
        return "Set rateLimit for this key (or raise MCP_DEFAULT_RATE_LIMIT), or wait."
    return "Increase rateLimit in the key configuration, or wait for the window to reset."


def exceeded(window: Window, whose: str, advice: str) -> RateLimitExceeded:
    retry_after = _seconds_until(window.reset_at)
    return RateLimitExceeded(
        f"Rate limit exceeded: {describe(window.item)} {whose}. The {window.item.GRANULARITY.name} "
        f"window resets in {retry_after} seconds (at {_iso(window.reset_at)}). {advice}",
        headers=[("Retry-After", str(retry_after))],
        data={
            "limit": str(window.item),
            "window": window.item.GRANULARITY.name,
            "retry_after": retry_after,
        },
    )


def _seconds_until(moment: float) -> int:
    return max(1, math.ceil(moment - time.time()))


def _iso(moment: float) -> str:
    return utc_iso(datetime.fromtimestamp(math.ceil(moment), UTC))


__all__ = ["add_headers", "exceeded", "key_advice", "locked_out", "reported_window"]
