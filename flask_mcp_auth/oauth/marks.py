"""One-time use of codes and refresh tokens: "already used" marks in the rate-limit storage.

The only state the sign-in shares between workers and hosts.  Each mark is one
atomic ``incr`` of the ``limits`` storage the rate limits use (Redis, Sentinel,
Cluster or memory), with an expiry no shorter than the value it marks can
live.  Storage keys hold random token ids, never a credential.

Unlike rate limiting, this never falls back to process memory: a code redeemed
in a worker that forgot the mark could be replayed, so while the storage is
down redemption and refresh fail closed (:class:`MarksUnavailable`).
"""

from __future__ import annotations

import logging
import math

from limits.storage import Storage

log = logging.getLogger("flask_mcp_auth.oauth")


class MarksUnavailable(Exception):
    """The shared storage could not be reached: no code or refresh token can be spent."""


class UsedMarks:
    """Spend-once marks and ended families over one ``limits`` storage."""

    def __init__(self, storage: Storage, prefix: str = "") -> None:
        self._storage = storage
        self._prefix = f"{prefix}/mcp-auth/oauth/" if prefix else "mcp-auth/oauth/"

    def spend(self, token_id: str, lifetime: float) -> bool:
        """Mark ``token_id`` used; True the first time, False on every later call."""
        return self._incr(f"used/{token_id}", lifetime) == 1

    def end_family(self, family: str, lifetime: float) -> None:
        """End everything issued from one sign-in (a replay or a reuse was seen)."""
        self._incr(f"ended/{family}", lifetime)
        log.warning("OAuth grant family ended after a replayed code or reused refresh token")

    def family_ended(self, family: str) -> bool:
        try:
            return bool(self._storage.get(f"{self._prefix}ended/{family}"))
        except Exception as exc:  # any storage client error
            raise MarksUnavailable(str(exc)) from exc

    def _incr(self, name: str, lifetime: float) -> int:
        try:
            return int(self._storage.incr(f"{self._prefix}{name}", max(1, math.ceil(lifetime))))
        except Exception as exc:  # any storage client error
            log.error("OAuth one-time marks unavailable (%s): failing closed", type(exc).__name__)
            raise MarksUnavailable(str(exc)) from exc


__all__ = ["MarksUnavailable", "UsedMarks"]
