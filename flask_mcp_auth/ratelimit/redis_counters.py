"""The Redis counters: every window of a request, and the gate, in one round trip.

:class:`RedisFixedWindowCounter` checks the gate and every window of a request in
one Lua round trip, on plain Redis and through Sentinel;
:class:`RedisClusterFixedWindowCounter` does the same on Redis Cluster, where the
gate and the windows live in different hash slots.  :func:`make_counter` picks the
fastest counter that keeps the strategy's semantics on its storage (on ``memory://``,
:mod:`.memory_counter`'s);
:func:`scope_tagger` says how a scope's identifier is written so that a script's
keys share a hash slot.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable, Sequence
from typing import Any

from limits.storage import (
    MemoryStorage,
    RedisClusterStorage,
    RedisSentinelStorage,
    RedisStorage,
    Storage,
)
from limits.strategies import FixedWindowRateLimiter, RateLimiter

from .counters import Counter, FixedWindowCounter, Gate, Outcome, StrategyCounter, Window
from .limits import Limit
from .memory_counter import MemoryFixedWindowCounter

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


# KEYS: failure counter, the credential's mark.  ARGV: window expiry, limit.
# Counts the failure unless the address is locked out or the mark exists (the
# credential was counted in this window); a new mark expires with the counter
# (same millisecond).  Returns {remaining, counter ttl in ms}, remaining -1 when
# locked out.  Same counter and expiry rule as _REDIS_HIT.
_REDIS_FAIL = """
local limit = tonumber(ARGV[2])
local count = tonumber(redis.call("get", KEYS[1]) or "0")
if count >= limit then
    return {-1, redis.call("pttl", KEYS[1])}
end
if redis.call("exists", KEYS[2]) == 1 then
    return {limit - count, redis.call("pttl", KEYS[1])}
end
count = redis.call("incrby", KEYS[1], 1)
local ttl = redis.call("pttl", KEYS[1])
if count == 1 or ttl < 0 then
    redis.call("expire", KEYS[1], ARGV[1])
    ttl = tonumber(ARGV[1]) * 1000
elseif ttl == 0 then
    ttl = 1  -- expiring this millisecond; PX needs a positive time
end
redis.call("set", KEYS[2], "1", "PX", ttl)
return {limit - count, ttl}
"""


# KEYS: window keys a locked-out request counted.  Gives each hit back, never
# creating a key or going below zero.
_REDIS_UNHIT = """
for i = 1, #KEYS do
    if tonumber(redis.call("get", KEYS[i]) or "0") > 0 then
        redis.call("decrby", KEYS[i], 1)
    end
end
return #KEYS
"""


class RedisFixedWindowCounter(FixedWindowCounter):
    """Fixed window on Redis: the gate and every window in one round trip (Lua).

    Plain Redis and Sentinel.  Through Sentinel, ``get_connection()`` is the
    ``master_for`` client: the scripts are registered on that client, not on a
    connection, so after a failover they run on whichever server the sentinels name
    as the primary (each new connection asks them); the new primary has no script
    cache yet, and redis-py's ``Script`` answers its NOSCRIPT with SCRIPT LOAD and
    runs the script again, once per script and server.
    """

    def __init__(self, strategy: RateLimiter) -> None:
        super().__init__(strategy)
        storage: Any = self.storage
        self._prefixed: Callable[[str], str] = storage.prefixed_key
        connection = storage.get_connection()
        self._script = connection.register_script(_REDIS_HIT)
        self._fail_script = connection.register_script(_REDIS_FAIL)

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
        return self._outcome(limits, reply, now)

    @staticmethod
    def _outcome(limits: Sequence[Limit], reply: Sequence[Any], now: float) -> Outcome:
        """The windows from the hit script's {count, ttl} pairs."""
        windows = []
        for limit, count, ttl in zip(limits, reply[::2], reply[1::2], strict=False):
            amount = limit.item.amount
            remaining = amount - int(count) if int(count) <= amount else -1
            windows.append(Window(limit.item, remaining, now + max(int(ttl), 0)))
        return Outcome(None, tuple(windows))

    def fail(self, gate: Gate, mark: Gate) -> Window:
        limit, scope = gate
        keys = [self._prefixed(limit.key(scope)), self._prefixed(mark[0].key(mark[1]))]
        remaining, ttl_ms = self._fail_script(
            keys=keys, args=[limit.item.get_expiry(), limit.item.amount]
        )
        return Window(limit.item, int(remaining), time.time() + max(int(ttl_ms), 0) / 1000)


class RedisClusterFixedWindowCounter(RedisFixedWindowCounter):
    """Fixed window on Redis Cluster: still one round trip per request.

    A script may only touch keys of one hash slot.  Each scope's identifier is a hash
    tag (:func:`scope_tagger`), so a key's windows share its fingerprint's slot and an
    address's failure counter and marks share the address's slot: ``fail``, a hit
    without a gate and an anonymous hit are the plain-Redis scripts, unchanged, routed
    by the cluster client.  Only a key's hit with the failed-attempt gate touches two
    slots (the key's and the address's, usually on two nodes).  It writes the windows'
    script to the key's node and a GET of the gate to the address's node before
    reading either reply (:meth:`_both`): one round trip.  The script therefore counts
    before the gate is known; when the address turns out to be locked out (a valid key
    from an address that sent too many wrong ones), the hits are given back
    (``_REDIS_UNHIT``) with the gate's expiry read: one more round trip, on that
    refused request only.

    (redis-py's cluster pipeline refuses EVALSHA, and asks a node for a command's keys
    on every call, so the two commands go out on the nodes' own connections.)
    """

    def __init__(self, strategy: RateLimiter) -> None:
        super().__init__(strategy)
        from redis import exceptions  # installed: the storage is built on it

        self._response_error: type[Exception] = exceptions.ResponseError
        # Replies after which the command did not run: send it again through the
        # cluster client, which loads the script, follows redirections and refreshes
        # its slot map.
        self._not_run: tuple[type[Exception], ...] = (
            exceptions.NoScriptError,
            exceptions.AskError,  # MovedError is one
            exceptions.TryAgainError,
            exceptions.ClusterDownError,
        )
        self._cluster: Any = self.storage.get_connection()  # type: ignore[attr-defined]
        self._unhit_script = self._cluster.register_script(_REDIS_UNHIT)

    def hit(self, limits: Sequence[Limit], scope: str, gate: Gate | None) -> Outcome:
        if gate is None or not limits:
            return super().hit(limits, scope, gate)
        prefixed = self._prefixed
        keys = [prefixed(limit.key(scope)) for limit in limits]
        args: list[int] = [0]  # no gate in the script: it is read beside it
        for limit in limits:
            args += (limit.item.get_expiry(), limit.item.amount)
        gate_key = prefixed(gate[0].key(gate[1]))
        failures, reply = self._both(
            (gate_key, ("GET", gate_key), lambda: self._cluster.get(gate_key)),
            (
                keys[0],
                ("EVALSHA", self._script.sha, len(keys), *keys, *args),
                lambda: self._script(keys=keys, args=args),
            ),
        )
        now = time.time()
        if int(failures or 0) < gate[0].item.amount:
            return self._outcome(limits, reply, now)
        counted = keys[: len(reply) // 2]
        ttl, _ = self._both(
            (gate_key, ("TTL", gate_key), lambda: self._cluster.ttl(gate_key)),
            (
                counted[0],
                ("EVALSHA", self._unhit_script.sha, len(counted), *counted),
                lambda: self._unhit_script(keys=counted),
            ),
        )
        return Outcome(now + max(int(ttl), 0), ())

    def _both(self, *commands: tuple[str, tuple[Any, ...], Callable[[], Any]]) -> list[Any]:
        """Run each ``(routing key, command, again)`` on the primary of its key's slot.

        Every command is written before any reply is read, so all cost one round trip.
        A reply saying the command did not run (no script on that node, the slot moved,
        the cluster is re-forming) is retried with ``again()`` through the cluster
        client; any other error is raised.
        """
        cluster = self._cluster
        sent: list[tuple[Any, Any]] = []
        try:
            for key, command, _ in commands:
                pool = cluster.get_node_from_key(key).redis_connection.connection_pool
                connection = pool.get_connection()
                sent.append((pool, connection))
                connection.send_command(*command)
            replies: list[Any] = []
            for _, connection in sent:
                try:
                    replies.append(connection.read_response())
                except self._response_error as exc:  # a reply: the connection is in step
                    replies.append(exc)
        except BaseException:
            for _, connection in sent:
                connection.disconnect()  # replies may be left unread on it
            raise
        finally:
            for pool, connection in sent:
                pool.release(connection)
        results = []
        for (_, _, again), reply in zip(commands, replies, strict=True):
            if isinstance(reply, self._not_run):
                reply = again()
            elif isinstance(reply, Exception):
                raise reply
            results.append(reply)
        return results


def scope_tagger(storage: Storage) -> Callable[[str], str]:
    """How ``storage`` wants a scope's identifier (a fingerprint, an address) written.

    Redis Cluster: as a hash tag, ``{identifier}``, so every key of one scope (a key's
    windows; an address's windows, failure counter and marks) is in one hash slot and
    one script can touch them, while different keys and addresses spread over the
    slots.  Braces inside the identifier (an address is whatever the proxy forwarded)
    are escaped, so the tag is always the whole identifier.  Every other storage: the
    identifier as it is, so key names stay as they always were.
    """
    if type(storage) is RedisClusterStorage:
        return _hash_tag
    return _untagged


def _hash_tag(identifier: str) -> str:
    return "{" + identifier.replace("{", "%7B").replace("}", "%7D") + "}"


def _untagged(identifier: str) -> str:
    return identifier


#: The memory counter standing in for each MemoryStorage: counters made for one
#: storage (apps sharing a Limiter) share its counts, as they did in the storage.
_memory_counters: weakref.WeakKeyDictionary[Storage, MemoryFixedWindowCounter] = (
    weakref.WeakKeyDictionary()
)


def make_counter(strategy: RateLimiter) -> Counter:
    """The fastest counter that keeps ``strategy``'s semantics on its storage.

    The fixed window on ``limits``' own ``MemoryStorage`` is counted by
    :class:`~.memory_counter.MemoryFixedWindowCounter` (no timer thread), one per
    storage object, reading this module's clock; everything else by ``limits``.
    """
    if type(strategy) is not FixedWindowRateLimiter:
        return StrategyCounter(strategy)
    storage = strategy.storage
    if type(storage) is MemoryStorage:
        counter = _memory_counters.get(storage)
        if counter is None:
            counter = _memory_counters[storage] = MemoryFixedWindowCounter(time.time)
        return counter
    if not (hasattr(storage, "prefixed_key") and hasattr(storage, "get_connection")):
        return FixedWindowCounter(strategy)
    if type(storage) in (RedisStorage, RedisSentinelStorage):
        return RedisFixedWindowCounter(strategy)
    if type(storage) is RedisClusterStorage:
        return RedisClusterFixedWindowCounter(strategy)
    return FixedWindowCounter(strategy)


__all__ = [
    "RedisClusterFixedWindowCounter",
    "RedisFixedWindowCounter",
    "make_counter",
    "scope_tagger",
]
