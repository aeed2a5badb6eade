"""The clock, and how the package writes instants: ISO 8601 in UTC with a ``Z`` suffix."""

from __future__ import annotations

from datetime import UTC, datetime


def now() -> datetime:
    """The current instant (UTC). Callers use ``_time.now()``, so tests can pin the clock
    by replacing this one function."""
    return datetime.now(UTC)


def utc_iso(moment: datetime) -> str:
    """``moment`` as ISO 8601 UTC, ``Z`` for the offset (``2026-12-31T23:59:59Z``)."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
