"""Limit strings and limit windows: parsed once at start-up, never per request."""

from __future__ import annotations

from dataclasses import dataclass

from limits import RateLimitItem, RateLimitItemPerHour, RateLimitItemPerMinute, parse_many

from ..errors import ConfigError


def parse_limits(name: str, value: str) -> tuple[RateLimitItem, ...]:
    """Parse a flask-limiter limit string ("100/minute;1000/hour"); empty means none."""
    if not value or value.strip().lower() in ("off", "none"):
        return ()
    try:
        items = tuple(parse_many(value))
    except ValueError as exc:
        raise ConfigError(
            f"{name}: {value!r} is not a rate limit string; expected e.g. "
            f"'100 per minute' or '100/minute;1000/hour' ({exc})"
        ) from None
    if any(item.amount < 1 for item in items):
        # '0 per minute' refuses every request it applies to (as a failure limit, every
        # key too); a key's own rateLimit must be positive for the same reason.
        raise ConfigError(
            f"{name}: {value!r} allows no request at all; give a positive amount, "
            "or leave it empty (or 'off') for no limit"
        )
    return items


def key_limits(per_minute: int | None, per_hour: int | None) -> tuple[RateLimitItem, ...]:
    """The windows of a key's ``rateLimit`` object, shortest first."""
    items: list[RateLimitItem] = []
    if per_minute is not None:
        items.append(RateLimitItemPerMinute(per_minute))
    if per_hour is not None:
        items.append(RateLimitItemPerHour(per_hour))
    return tuple(items)


def describe(item: RateLimitItem) -> str:
    """'100 requests per minute', '3 requests per 2 seconds'."""
    unit = item.GRANULARITY.name
    period = unit if item.multiples == 1 else f"{item.multiples} {unit}s"
    noun = "request" if item.amount == 1 else "requests"
    return f"{item.amount} {noun} per {period}"


@dataclass(frozen=True, slots=True)
class Limit:
    """A parsed limit item with its storage key pre-split, so a request only concatenates.

    ``key(scope)`` equals ``item.key_for(scope)``, so counters written here and
    read through the ``limits`` strategy API are the same counters.
    """

    item: RateLimitItem
    head: str
    tail: str

    @classmethod
    def of(cls, item: RateLimitItem) -> Limit:
        return cls(
            item, f"{item.namespace}/", f"/{item.amount}/{item.multiples}/{item.GRANULARITY.name}"
        )

    def key(self, scope: str) -> str:
        return self.head + scope + self.tail


__all__ = ["Limit", "describe", "key_limits", "parse_limits"]
