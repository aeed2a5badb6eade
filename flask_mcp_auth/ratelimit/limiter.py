"""Per-key rate limits and failed-attempt throttling on flask-limiter's storage.

flask-limiter owns the configuration (``RATELIMIT_STORAGE_URI``,
``RATELIMIT_STORAGE_OPTIONS``, ``RATELIMIT_STRATEGY``, ``RATELIMIT_KEY_PREFIX``)
and the storage; :class:`RateLimits` counts through the limiter's ``limits``
strategy directly (see :mod:`.counters`), with limit items parsed once at
start-up, instead of going through flask-limiter's per-request decorator
machinery (which costs about as much as the whole Flask request).

Storage identifiers use the key's fingerprint, never the key id (which in
plain-key mode is the secret), and the client address for anonymous callers
and failed attempts.  A refused credential is marked as counted by a keyed hash
of it (:func:`failed_attempt_secret`), never by its value.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
import math
import secrets
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from flask import Flask, after_this_request, request
from limits import RateLimitItem
from limits.storage import MemoryStorage
from limits.strategies import RateLimiter

from ..errors import AuthServiceUnavailable, ConfigError
from ..keys.model import APIKey, fingerprint, secret_bytes
from ..principal import Principal
from .counters import Counter, Gate, Outcome, Window
from .limits import Limit, key_limits, parse_limits
from .redis_counters import make_counter, scope_tagger
from .responses import add_headers, exceeded, key_advice, locked_out, reported_window
from .storage import create_limiter, own_connection_per_process, warn_if_memory_under_workers

if TYPE_CHECKING:
    from flask_limiter import Limiter

log = logging.getLogger("flask_mcp_auth.ratelimit")

#: While the storage is down, how often (seconds) a request tries it again.
STORAGE_RETRY_INTERVAL = 1.0

# First identifier of every storage key this module writes, after the limiter's prefix.
_NAMESPACE = "mcp-auth"


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
        mark_secret: bytes | None = None,
    ) -> None:
        self.strategy = strategy
        self.default_limits = tuple(Limit.of(item) for item in default_limits)
        self.anonymous_limits = tuple(Limit.of(item) for item in anonymous_limits)
        self.failure_limit = Limit.of(failure_limit) if failure_limit is not None else None
        # "This credential was counted in this window": one hit of the failure window's length.
        self._failure_mark = (
            Limit.of(type(failure_limit)(1, failure_limit.multiples, failure_limit.namespace))
            if failure_limit is not None
            else None
        )
        # Key of the marks' HMAC (see failed_attempt_secret); without one, this process's own.
        self._mark_secret = mark_secret or secrets.token_bytes(32)
        self.fail_closed = fail_closed
        # Scopes are single identifiers "[prefix/]mcp-auth/<kind>/<id>": a key's fingerprint
        # or a client address, never a key id.
        self._scope = f"{key_prefix}/{_NAMESPACE}/" if key_prefix else f"{_NAMESPACE}/"
        self._counter: Counter = make_counter(strategy)
        # How the fingerprint or address in a scope is written: a hash tag on Redis
        # Cluster (so one script's keys share a slot), as it is everywhere else.
        self._tag = scope_tagger(strategy.storage)
        # Same strategy over process memory: where counting goes while the storage is down
        # (the fixed window: the extension's own memory counter, as on memory://).
        self._fallback: Counter = make_counter(type(strategy)(MemoryStorage()))
        self._down_since: float | None = None  # time.monotonic() of the outage's first error
        self._next_retry = 0.0
        # (requestsPerMinute, requestsPerHour) -> limits, parsed once per distinct pair.
        self._key_limits: dict[tuple[int | None, int | None], tuple[Limit, ...]] = {}

    @property
    def counter(self) -> Counter:
        """What counts this app's requests while the storage is up (see ``make_counter``);
        on ``memory://`` with the fixed window, a ``MemoryFixedWindowCounter``."""
        return self._counter

    # -- set-up ------------------------------------------------------------------------

    @classmethod
    def from_settings(
        cls,
        app: Flask,
        settings: dict[str, Any],
        limiter: Limiter | None,
        keys: Iterable[APIKey] = (),
        mark_secret: bytes | None = None,
    ) -> RateLimits:
        """Build from resolved (so already validated) settings, creating a Limiter if the
        app passed none, with the limits of ``keys`` parsed (:meth:`preload`).
        ``mark_secret``: see :func:`failed_attempt_secret`.

        Knowing every limit, it warns about memory:// under several workers only when
        some limit is configured."""
        failure = parse_limits("MCP_AUTH_FAILURE_LIMIT", settings["MCP_AUTH_FAILURE_LIMIT"])
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
        own_connection_per_process(strategy.storage)
        rate_limits = cls(
            strategy,
            default_limits=default_limits,
            anonymous_limits=anonymous_limits,
            failure_limit=failure[0] if failure else None,
            fail_closed=settings["MCP_RATELIMIT_FAIL_CLOSED"],
            key_prefix=str(app.config.get("RATELIMIT_KEY_PREFIX") or ""),
            mark_secret=mark_secret,
        )
        rate_limits.preload(keys)
        if rate_limits.any_configured:
            warn_if_memory_under_workers(strategy.storage)
        return rate_limits

    @property
    def any_configured(self) -> bool:
        """Whether anything is counted: a default, anonymous or failed-attempt limit, or a
        key's own rateLimit among the keys preloaded so far."""
        return bool(
            self.default_limits
            or self.anonymous_limits
            or self.failure_limit is not None
            or any(self._key_limits.values())
        )

    def limits_for(self, key: APIKey) -> tuple[Limit, ...]:
        """The windows a key is held to: its rateLimit, else MCP_DEFAULT_RATE_LIMIT."""
        pair = (key.requests_per_minute, key.requests_per_hour)
        limits = self._key_limits.get(pair)
        if limits is None:
            limits = self._parse_limits(pair)
        return limits

    def _parse_limits(self, pair: tuple[int | None, int | None]) -> tuple[Limit, ...]:
        items = key_limits(*pair)
        limits = tuple(Limit.of(item) for item in items) if items else self.default_limits
        self._key_limits[pair] = limits
        return limits

    def preload(self, keys: Iterable[APIKey]) -> None:
        """Parse every key's limits now, so no request pays for it (once per distinct pair)."""
        pairs = {(key.requests_per_minute, key.requests_per_hour) for key in keys}
        for pair in pairs - self._key_limits.keys():
            self._parse_limits(pair)

    # -- per request -------------------------------------------------------------------

    def check_key(self, key: APIKey) -> None:
        """Count a request by an authenticated key; raise a 429 when over a limit."""
        gate = self._gate()
        limits = self.limits_for(key)
        if not limits and gate is None:
            return
        scope = f"{self._scope}key/{self._tag(key.fingerprint)}"
        outcome: Outcome = self._with_storage(lambda counter: counter.hit(limits, scope, gate))
        if outcome.locked_until is not None:
            raise locked_out(outcome.locked_until)
        if self._settle(outcome.windows):
            raise exceeded(outcome.windows[-1], f"for key {key.label}", key_advice(key))

    def check_anonymous(self) -> None:
        """Count a request without a credential against MCP_ANONYMOUS_RATE_LIMIT."""
        if not self.anonymous_limits:
            return
        scope = f"{self._scope}anonymous/{self._tag(client_address())}"
        outcome: Outcome = self._with_storage(
            lambda counter: counter.hit(self.anonymous_limits, scope, None)
        )
        if self._settle(outcome.windows):
            raise exceeded(
                outcome.windows[-1],
                "for anonymous callers from this address",
                "Send an API key, or wait for the window to reset.",
            )

    def failed_attempt(self, counted: bool, credential: str) -> None:
        """A credential was refused; raise 429 if the address is (now) locked out.

        ``counted``: the credential was invalid (a guess) and counts as a
        failed attempt, once per failure window however often it is presented
        (a client retrying a wrong key repeats one value; a guesser needs new ones);
        an expired key is only checked against the lock.  ``credential``: the
        presented value.
        """
        gate = self._gate()
        if gate is None:
            return
        if counted:
            mark = self._mark(gate, credential)
            window: Window = self._with_storage(lambda counter: counter.fail(gate, mark))
            if window.breached:
                log.debug("failed-attempt limit reached for address %s", client_address())
                raise locked_out(window.reset_at)
        else:
            window = self._with_storage(lambda counter: counter.peek(*gate))
            if window.remaining <= 0:
                raise locked_out(window.reset_at)

    def window_stats(self, principal: Principal) -> list[dict[str, Any]]:
        """For the status route: each window of the caller, read without counting a hit."""
        if principal.is_authenticated and principal.key is not None:
            limits = self.limits_for(principal.key)
            scope = f"{self._scope}key/{self._tag(principal.key.fingerprint)}"
        else:
            limits = self.anonymous_limits
            scope = f"{self._scope}anonymous/{self._tag(client_address())}"
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
        return self.failure_limit, f"{self._scope}failures/{self._tag(client_address())}"

    def _mark(self, gate: Gate, credential: str) -> Gate:
        """The mark of a refused credential: a keyed hash, never the value."""
        assert self._failure_mark is not None  # there is a gate
        return self._failure_mark, f"{gate[1]}/seen/{fingerprint(credential, self._mark_secret)}"

    @staticmethod
    def _settle(windows: tuple[Window, ...]) -> bool:
        """Remember the window the headers report; True if the last one was breached."""
        if not windows:
            return False
        reported = reported_window(windows)
        # A hook for this response only: requests that no limit counted pay nothing.
        after_this_request(functools.partial(add_headers, reported))
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
                "rate-limit storage is reachable again after %.1f s; limits are shared again",
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


def failed_attempt_secret(
    signing_secret: str | bytes | None, key_ids: Iterable[str]
) -> bytes | None:
    """The key under which refused credentials are marked as counted.

    The mark of a wrong value is ``fingerprint(value, key)``, an HMAC, never the value
    or an unkeyed hash of it: in plain-key mode a wrong value is often a typo of a real
    key id, and an unkeyed hash in Redis would let anyone who can read Redis test
    guesses of it offline.  Every worker and host sharing the storage must derive the
    same key, so that a value repeated through several of them counts once:

    - with a signing secret (JWT_SECRET, else SECRET_KEY): a key derived from it
      (domain-separated, so a mark never equals a key's fingerprint);
    - without one, every key is plain: a key derived from all configured key ids,
      which are the deployment's secrets (a reader who knew them all would have
      nothing left to guess).  It is fixed at start-up: a worker started on another
      key set marks under another key, so a value may count once per such key;
    - no key ids either: None, and each process uses a random key of its own.
    """
    if signing_secret:
        return hmac.new(
            secret_bytes(signing_secret), b"flask-mcp-auth/failed-attempt", hashlib.sha256
        ).digest()
    ids = sorted({secret_bytes(key_id) for key_id in key_ids})
    if not ids:
        return None
    derived = hashlib.sha256(b"flask-mcp-auth/failed-attempt/key-ids")
    for key_id in ids:
        derived.update(len(key_id).to_bytes(8, "big") + key_id)
    return derived.digest()


def client_address() -> str:
    # request.remote_addr is the peer; behind a proxy, ProxyFix makes it the client.
    return request.remote_addr or "unknown"


__all__ = ["RateLimits", "failed_attempt_secret"]
