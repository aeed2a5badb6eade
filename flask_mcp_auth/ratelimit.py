"""Per-key rate limits and failed-attempt throttling on flask-limiter's storage.

flask-limiter owns the configuration (``RATELIMIT_STORAGE_URI``,
``RATELIMIT_STORAGE_OPTIONS``, ``RATELIMIT_STRATEGY``, ``RATELIMIT_KEY_PREFIX``)
and the storage; this module counts through the limiter's ``limits`` strategy
directly, with limit items parsed once at start-up, instead of going through
flask-limiter's per-request decorator machinery (which costs about as much as
the whole Flask request).  For the default fixed-window strategy the counters
are driven at storage level, and on Redis every window of a request (and the
failed-attempt gate) is checked in one Lua round trip.

Storage identifiers use the key's fingerprint, never the key id (which in
plain-key mode is the secret), and the client address for anonymous callers
and failed attempts.
"""

from __future__ import annotations

import functools
import logging
import math
import re
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from flask import Flask, Response, after_this_request, request
from limits import RateLimitItem, RateLimitItemPerHour, RateLimitItemPerMinute, parse_many
from limits.errors import ConfigurationError as LimitsConfigurationError
from limits.storage import MemoryStorage, RedisStorage, Storage
from limits.strategies import FixedWindowRateLimiter, RateLimiter

from ._time import utc_iso
from .errors import AuthServiceUnavailable, ConfigError, RateLimitExceeded, TooManyFailedAttempts

if TYPE_CHECKING:
    from flask_limiter import Limiter

    from .keystore import APIKey
    from .principal import Principal

log = logging.getLogger("flask_mcp_auth.ratelimit")

#: While the storage is down, how often (seconds) a request tries it again.
STORAGE_RETRY_INTERVAL = 1.0

# First identifier of every storage key this module writes, after the limiter's prefix.
_NAMESPACE = "mcp-auth"

_HEADER_LIMIT = "X-RateLimit-Limit"
_HEADER_REMAINING = "X-RateLimit-Remaining"
_HEADER_RESET = "X-RateLimit-Reset"


# -- limit strings ---------------------------------------------------------------------


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


# -- counters: the storage operations, one implementation per storage kind ----------------

#: A gate: a limit and scope that must not be exhausted for the request to be counted.
Gate = tuple[Limit, str]


@dataclass(frozen=True, slots=True)
class Window:
    """One limit window after a request: what the X-RateLimit-* headers report."""

    item: RateLimitItem
    remaining: int  # -1 when this request was refused by the window
    reset_at: float  # epoch seconds

    @property
    def breached(self) -> bool:
        return self.remaining < 0


@dataclass(frozen=True, slots=True)
class Outcome:
    """Result of counting one request: locked out by the gate, or the windows hit."""

    locked_until: float | None
    windows: tuple[Window, ...]


class Counter(Protocol):
    def hit(self, limits: Sequence[Limit], scope: str, gate: Gate | None) -> Outcome:
        """Check the gate (without counting), then count one hit on each window in order.

        Stops at the first breached window, as flask-limiter does, so a request
        refused by the minute window does not use up the hour window.
        """

    def record(self, limit: Limit, scope: str) -> Window:
        """Count one event on a single window."""

    def peek(self, limit: Limit, scope: str) -> Window:
        """Read a window without counting."""


class StrategyCounter:
    """Any storage and strategy, through the public ``limits`` strategy API."""

    def __init__(self, strategy: RateLimiter) -> None:
        self.strategy = strategy

    def hit(self, limits: Sequence[Limit], scope: str, gate: Gate | None) -> Outcome:
        if gate is not None:
            locked_until = self.locked_until(*gate)
            if locked_until is not None:
                return Outcome(locked_until, ())
        windows: list[Window] = []
        for limit in limits:
            window = self.record(limit, scope)
            windows.append(window)
            if window.breached:
                break
        return Outcome(None, tuple(windows))

    def record(self, limit: Limit, scope: str) -> Window:
        allowed = self.strategy.hit(limit.item, scope)
        reset_at, remaining = self.strategy.get_window_stats(limit.item, scope)
        return Window(limit.item, remaining if allowed else -1, reset_at)

    def peek(self, limit: Limit, scope: str) -> Window:
        reset_at, remaining = self.strategy.get_window_stats(limit.item, scope)
        return Window(limit.item, remaining, reset_at)

    def locked_until(self, limit: Limit, scope: str) -> float | None:
        """When a used-up gate (the failed-attempt lockout) opens; None if it is open."""
        if self.strategy.test(limit.item, scope):
            return None
        return self.peek(limit, scope).reset_at


class FixedWindowCounter(StrategyCounter):
    """Fixed window on any storage: the counters of ``FixedWindowRateLimiter``, with
    one increment and one expiry read per window instead of three storage calls."""

    def __init__(self, strategy: RateLimiter) -> None:
        super().__init__(strategy)
        self.storage: Storage = strategy.storage

    def locked_until(self, limit: Limit, scope: str) -> float | None:
        key = limit.key(scope)
        if self.storage.get(key) < limit.item.amount:
            return None
        return self.storage.get_expiry(key)

    def record(self, limit: Limit, scope: str) -> Window:
        key = limit.key(scope)
        item = limit.item
        count = self.storage.incr(key, item.get_expiry())
        remaining = item.amount - count if count <= item.amount else -1
        return Window(item, remaining, self.storage.get_expiry(key))


# KEYS: [gate key], window keys.  ARGV: gate limit (0: no gate), then expiry and
# amount of each window.  Returns {-1, gate ttl} when locked out, else
# {count, ttl} per window counted, stopping after the first one over its limit.
# Same counters and expiry rule as limits' own incr script.
_REDIS_HIT = """
local gate_limit = tonumber(ARGV[1])
local first = 1
if gate_limit > 0 then
    local failures = tonumber(redis.call("get", KEYS[1]) or "0")
    if failures >= gate_limit then
        return {-1, redis.call("ttl", KEYS[1])}
    end
    first = 2
end
local result = {}
for i = first, #KEYS do
    local arg = 2 + (i - first) * 2
    local expiry = tonumber(ARGV[arg])
    local count = redis.call("incrby", KEYS[i], 1)
    local ttl = redis.call("ttl", KEYS[i])
    if count == 1 or ttl < 0 then
        redis.call("expire", KEYS[i], expiry)
        ttl = expiry
    end
    result[#result + 1] = count
    result[#result + 1] = ttl
    if count > tonumber(ARGV[arg + 1]) then
        break
    end
end
return result
"""


class RedisFixedWindowCounter(FixedWindowCounter):
    """Fixed window on Redis: the gate and every window in one round trip (Lua)."""

    def __init__(self, strategy: RateLimiter) -> None:
        super().__init__(strategy)
        storage: Any = self.storage
        self._prefixed: Callable[[str], str] = storage.prefixed_key
        self._script = storage.get_connection().register_script(_REDIS_HIT)

    def hit(self, limits: Sequence[Limit], scope: str, gate: Gate | None) -> Outcome:
        prefixed = self._prefixed
        keys: list[str] = []
        args: list[int] = [0]
        if gate is not None:
            keys.append(prefixed(gate[0].key(gate[1])))
            args[0] = gate[0].item.amount
        for limit in limits:
            keys.append(prefixed(limit.key(scope)))
            args += (limit.item.get_expiry(), limit.item.amount)
        reply = self._script(keys=keys, args=args)
        now = time.time()
        if reply and int(reply[0]) == -1:
            return Outcome(now + max(int(reply[1]), 0), ())
        windows = []
        for limit, count, ttl in zip(limits, reply[::2], reply[1::2], strict=False):
            amount = limit.item.amount
            remaining = amount - int(count) if int(count) <= amount else -1
            windows.append(Window(limit.item, remaining, now + max(int(ttl), 0)))
        return Outcome(None, tuple(windows))


def make_counter(strategy: RateLimiter) -> Counter:
    """The fastest counter that keeps ``strategy``'s semantics on its storage."""
    if type(strategy) is not FixedWindowRateLimiter:
        return StrategyCounter(strategy)
    storage = strategy.storage
    if (
        type(storage) is RedisStorage
        and hasattr(storage, "prefixed_key")
        and hasattr(storage, "get_connection")
    ):
        return RedisFixedWindowCounter(strategy)
    return FixedWindowCounter(strategy)


# -- the rate limiter the extension uses ------------------------------------------------


class RateLimits:
    """Per-key, default, anonymous and failed-attempt limits for one app."""

    def __init__(
        self,
        strategy: RateLimiter,
        *,
        default_limits: Sequence[RateLimitItem] = (),
        anonymous_limits: Sequence[RateLimitItem] = (),
        failure_limit: RateLimitItem | None = None,
        fail_closed: bool = False,
        key_prefix: str = "",
    ) -> None:
        self.strategy = strategy
        self.default_limits = tuple(Limit.of(item) for item in default_limits)
        self.anonymous_limits = tuple(Limit.of(item) for item in anonymous_limits)
        self.failure_limit = Limit.of(failure_limit) if failure_limit is not None else None
        self.fail_closed = fail_closed
        # Scopes are single identifiers "[prefix/]mcp-auth/<kind>/<id>": a key's fingerprint
        # or a client address, never a key id.
        self._scope = f"{key_prefix}/{_NAMESPACE}/" if key_prefix else f"{_NAMESPACE}/"
        self._counter: Counter = make_counter(strategy)
        # Same strategy over process memory: where counting goes while the storage is down.
        self._fallback: Counter = make_counter(type(strategy)(MemoryStorage()))
        self._down_since: float | None = None  # time.monotonic() of the outage's first error
        self._next_retry = 0.0
        # (requestsPerMinute, requestsPerHour) -> limits, parsed once per distinct pair.
        self._key_limits: dict[tuple[int | None, int | None], tuple[Limit, ...]] = {}

    # -- set-up ------------------------------------------------------------------------

    @classmethod
    def from_settings(
        cls, app: Flask, settings: dict[str, Any], limiter: Limiter | None
    ) -> RateLimits:
        """Build from the resolved settings, creating a Limiter if the app passed none."""
        failure = parse_limits("MCP_AUTH_FAILURE_LIMIT", settings["MCP_AUTH_FAILURE_LIMIT"])
        if len(failure) > 1:
            raise ConfigError(
                "MCP_AUTH_FAILURE_LIMIT: give one window (e.g. '20 per minute'), "
                f"got {len(failure)}"
            )
        default_limits = parse_limits("MCP_DEFAULT_RATE_LIMIT", settings["MCP_DEFAULT_RATE_LIMIT"])
        anonymous_limits = parse_limits(
            "MCP_ANONYMOUS_RATE_LIMIT", settings["MCP_ANONYMOUS_RATE_LIMIT"]
        )
        if limiter is None:
            limiter = create_limiter(app, settings["RATELIMIT_STORAGE_URI"])
        try:
            strategy = limiter.limiter
        except (AssertionError, AttributeError):
            raise ConfigError(
                "the Limiter passed to MCPAuth(limiter=...) is not initialised: create it with "
                "Limiter(..., app=app) or call limiter.init_app(app) before MCPAuth"
            ) from None
        warn_if_memory_under_workers(strategy.storage)
        return cls(
            strategy,
            default_limits=default_limits,
            anonymous_limits=anonymous_limits,
            failure_limit=failure[0] if failure else None,
            fail_closed=settings["MCP_RATELIMIT_FAIL_CLOSED"],
            key_prefix=str(app.config.get("RATELIMIT_KEY_PREFIX") or ""),
        )

    def limits_for(self, key: APIKey) -> tuple[Limit, ...]:
        """The windows a key is held to: its rateLimit, else MCP_DEFAULT_RATE_LIMIT."""
        pair = (key.requests_per_minute, key.requests_per_hour)
        limits = self._key_limits.get(pair)
        if limits is None:
            items = key_limits(*pair)
            limits = tuple(Limit.of(item) for item in items) if items else self.default_limits
            self._key_limits[pair] = limits
        return limits

    def preload(self, keys: Iterable[APIKey]) -> None:
        """Parse every key's limits now, so no request pays for it."""
        for key in keys:
            self.limits_for(key)

    # -- per request -------------------------------------------------------------------

    def check_key(self, key: APIKey) -> None:
        """Count a request by an authenticated key; raise a 429 when over a limit."""
        gate = self._gate()
        limits = self.limits_for(key)
        if not limits and gate is None:
            return
        scope = f"{self._scope}key/{key.fingerprint}"
        outcome: Outcome = self._with_storage(lambda counter: counter.hit(limits, scope, gate))
        if outcome.locked_until is not None:
            raise _locked_out(outcome.locked_until)
        if self._settle(outcome.windows):
            raise _exceeded(outcome.windows[-1], f"for key {key.label}", _key_advice(key))

    def check_anonymous(self) -> None:
        """Count a request without a credential against MCP_ANONYMOUS_RATE_LIMIT."""
        if not self.anonymous_limits:
            return
        scope = f"{self._scope}anonymous/{_client_address()}"
        outcome: Outcome = self._with_storage(
            lambda counter: counter.hit(self.anonymous_limits, scope, None)
        )
        if self._settle(outcome.windows):
            raise _exceeded(
                outcome.windows[-1],
                "for anonymous callers from this address",
                "Send an API key, or wait for the window to reset.",
            )

    def failed_attempt(self, counted: bool) -> None:
        """A credential was refused; raise 429 if the address is (now) locked out.

        ``counted``: the credential was invalid (a guess) and counts as a
        failed attempt; an expired key is only checked against the lock.
        """
        gate = self._gate()
        if gate is None:
            return
        if counted:
            window: Window = self._with_storage(lambda counter: counter.record(*gate))
            if window.breached:
                log.debug("failed-attempt limit reached for address %s", _client_address())
                raise _locked_out(window.reset_at)
        else:
            window = self._with_storage(lambda counter: counter.peek(*gate))
            if window.remaining <= 0:
                raise _locked_out(window.reset_at)

    def window_stats(self, principal: Principal) -> list[dict[str, Any]]:
        """For the status route: each window of the caller, read without counting a hit."""
        if principal.is_authenticated and principal.key is not None:
            limits = self.limits_for(principal.key)
            scope = f"{self._scope}key/{principal.key.fingerprint}"
        else:
            limits = self.anonymous_limits
            scope = f"{self._scope}anonymous/{_client_address()}"
        windows: list[Window] = self._with_storage(
            lambda counter: [counter.peek(limit, scope) for limit in limits]
        )
        return [
            {
                "limit": str(window.item),
                "window": window.item.GRANULARITY.name,
                "amount": window.item.amount,
                "remaining": max(window.remaining, 0),
                "reset": math.ceil(window.reset_at),
            }
            for window in windows
        ]

    # -- internals ---------------------------------------------------------------------

    def _gate(self) -> Gate | None:
        if self.failure_limit is None:
            return None
        return self.failure_limit, f"{self._scope}failures/{_client_address()}"

    @staticmethod
    def _settle(windows: tuple[Window, ...]) -> bool:
        """Remember the window the headers report; True if the last one was breached."""
        if not windows:
            return False
        reported = windows[-1] if windows[-1].breached else min(windows, key=_closeness)
        # A hook for this response only: requests that no limit counted pay nothing.
        after_this_request(functools.partial(_add_headers, reported))
        return reported.breached

    def _with_storage(self, operation: Callable[[Counter], Any]) -> Any:
        """Run ``operation`` on the storage; on failure fall back to memory or fail closed."""
        if self._down_since is not None and time.monotonic() < self._next_retry:
            return self._degraded(operation)
        try:
            result = operation(self._counter)
        except Exception as exc:  # any storage client error means the storage is unusable
            self._storage_failed(exc)
            return self._degraded(operation)
        if self._down_since is not None:
            log.warning(
                "rate-limit storage is reachable again after %.0f s; limits are shared again",
                time.monotonic() - self._down_since,
            )
            self._down_since = None
        return result

    def _degraded(self, operation: Callable[[Counter], Any]) -> Any:
        if self.fail_closed:
            raise AuthServiceUnavailable()
        return operation(self._fallback)

    def _storage_failed(self, exc: Exception) -> None:
        now = time.monotonic()
        self._next_retry = now + STORAGE_RETRY_INTERVAL
        if self._down_since is not None:
            return
        self._down_since = now
        mode = (
            "answering 503 until it is back"
            if self.fail_closed
            else "counting in this process's memory until it is back"
        )
        log.error("rate-limit storage unavailable (%s: %s); %s", type(exc).__name__, exc, mode)


def _add_headers(window: Window, response: Response) -> Response:
    """X-RateLimit-* on the response (success or 429) of a request counted against a limit."""
    headers = response.headers
    headers.add(_HEADER_LIMIT, str(window.item.amount))
    headers.add(_HEADER_REMAINING, str(max(window.remaining, 0)))
    headers.add(_HEADER_RESET, str(math.ceil(window.reset_at)))
    return response


def _locked_out(reset_at: float) -> TooManyFailedAttempts:
    retry_after = _seconds_until(reset_at)
    return TooManyFailedAttempts(
        "Too many failed authentication attempts from this address. "
        f"Try again in {retry_after} seconds (at {_iso(reset_at)}).",
        headers=[("Retry-After", str(retry_after))],
        data={"retry_after": retry_after},
    )


def _closeness(window: Window) -> tuple[int, float]:
    # The window nearest to refusing: fewest requests left, then the earliest reset.
    return window.remaining, window.reset_at


def _key_advice(key: APIKey) -> str:
    if key.requests_per_minute is None and key.requests_per_hour is None:
        return "Set rateLimit for this key (or raise MCP_DEFAULT_RATE_LIMIT), or wait."
    return "Increase rateLimit in the key configuration, or wait for the window to reset."


def _exceeded(window: Window, whose: str, advice: str) -> RateLimitExceeded:
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


def _client_address() -> str:
    # request.remote_addr is the peer; behind a proxy, ProxyFix makes it the client.
    return request.remote_addr or "unknown"


# -- the Limiter, and the multi-worker warning -----------------------------------------------


def create_limiter(app: Flask, storage_uri: str) -> Limiter:
    """A flask-limiter ``Limiter`` configured from the app's ``RATELIMIT_*`` settings.

    It is initialised on a private Flask object carrying the app's
    ``RATELIMIT_*`` configuration, so it builds its storage and strategy
    exactly as for the app but installs no request hooks there: flask-mcp-auth
    counts through it directly, and flask-limiter's per-request hooks alone
    would double the cost of a request.  Apps that also want flask-limiter's
    decorators pass their own Limiter (``MCPAuth(app, limiter=...)``).
    """
    from flask_limiter import Limiter

    holder = Flask(__name__)
    holder.config.update({k: v for k, v in app.config.items() if k.startswith("RATELIMIT_")})
    holder.config["RATELIMIT_STORAGE_URI"] = storage_uri
    # RATELIMIT_ENABLED switches flask-limiter's own limits; these are switched by their settings.
    holder.config.pop("RATELIMIT_ENABLED", None)
    limiter = Limiter(_client_address)
    try:
        limiter.init_app(holder)
    except LimitsConfigurationError as exc:  # e.g. an unknown storage scheme or strategy
        # The message may quote the storage URI: keep its password out of start-up logs.
        reason = re.sub(r"//[^/@\s]*@", "//***@", str(exc))
        raise ConfigError(f"rate-limit storage (RATELIMIT_*): {reason}") from None
    return limiter


def server_worker_count() -> int | None:
    """The number of worker processes of the server loading this app, when it is known.

    gunicorn: the app is loaded by a worker (``Worker.load_wsgi``) or, with
    ``--preload``, by the arbiter; both are on the call stack and carry the
    resolved configuration (command line, config file, ``GUNICORN_CMD_ARGS``
    and ``WEB_CONCURRENCY`` all applied) as ``self.cfg``.  uWSGI: ``uwsgi.numproc``.
    """
    base = sys.modules.get("gunicorn.workers.base")
    arbiter = sys.modules.get("gunicorn.arbiter")
    owners = tuple(
        cls
        for cls in (getattr(base, "Worker", None), getattr(arbiter, "Arbiter", None))
        if cls is not None
    )
    if owners:
        frame = sys._getframe(1)
        while frame is not None:
            owner = frame.f_locals.get("self")
            if isinstance(owner, owners):
                workers = getattr(getattr(owner, "cfg", None), "workers", None)
                if isinstance(workers, int):
                    return workers
            frame = frame.f_back
    uwsgi = sys.modules.get("uwsgi")
    numproc = getattr(uwsgi, "numproc", None)
    return numproc if isinstance(numproc, int) else None


def warn_if_memory_under_workers(storage: Storage) -> None:
    if not isinstance(storage, MemoryStorage):
        return
    workers = server_worker_count()
    if workers is not None and workers > 1:
        message = (
            f"flask-mcp-auth: rate limits use memory:// storage under a server with {workers} "
            "worker processes; each worker counts separately, so a key gets up to "
            f"{workers}x its limit. Set RATELIMIT_STORAGE_URI to a shared storage such as "
            "redis://host:6379."
        )
        warnings.warn(message, RuntimeWarning, stacklevel=2)


__all__ = ["RateLimits", "create_limiter", "describe", "parse_limits", "server_worker_count"]
