"""Rate limiting: limit strings (:mod:`.limits`), counters per storage kind
(:mod:`.counters`), the 429s and headers (:mod:`.responses`), the flask-limiter
storage (:mod:`.storage`), and :class:`RateLimits`, which one app counts through."""

from .limiter import RateLimits
from .limits import Limit, describe, parse_limits
from .storage import create_limiter, server_worker_count

__all__ = [
    "Limit",
    "RateLimits",
    "create_limiter",
    "describe",
    "parse_limits",
    "server_worker_count",
]
