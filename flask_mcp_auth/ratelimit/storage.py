"""The flask-limiter ``Limiter`` whose storage the counters use, and the warning for
per-process memory under several worker processes."""

from __future__ import annotations

import logging
import re
import sys
import threading
from types import FrameType
from typing import Any

from flask import Flask
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from limits.errors import ConfigurationError as LimitsConfigurationError
from limits.storage import MemoryStorage, Storage

from .._forksafe import renew_after_fork
from ..errors import ConfigError

log = logging.getLogger("flask_mcp_auth.ratelimit")


def create_limiter(app: Flask, storage_uri: str) -> Limiter:
    """A flask-limiter ``Limiter`` configured from the app's ``RATELIMIT_*`` settings.

    It is initialised on a private Flask object carrying the app's
    ``RATELIMIT_*`` configuration, so it builds its storage and strategy
    exactly as for the app but installs no request hooks there: flask-mcp-auth
    counts through it directly, and flask-limiter's per-request hooks alone
    would double the cost of a request.  Apps that also want flask-limiter's
    decorators pass their own Limiter (``MCPAuth(app, limiter=...)``).
    """
    holder = Flask(__name__)
    holder.config.update({k: v for k, v in app.config.items() if k.startswith("RATELIMIT_")})
    holder.config["RATELIMIT_STORAGE_URI"] = storage_uri
    # RATELIMIT_ENABLED switches flask-limiter's own limits; these are switched by their settings.
    holder.config.pop("RATELIMIT_ENABLED", None)
    # The key function is never called: this Limiter installs no hooks and counts nothing itself.
    limiter = Limiter(get_remote_address)
    try:
        limiter.init_app(holder)
    except LimitsConfigurationError as exc:  # e.g. an unknown storage scheme or strategy
        # The message may quote the storage URI: keep its password out of start-up logs.
        reason = re.sub(r"//[^/@\s]*@", "//***@", str(exc))
        raise ConfigError(f"rate-limit storage (RATELIMIT_*): {reason}") from None
    except Exception as exc:  # a storage that connects when built (Redis Cluster): down
        reason = re.sub(r"//[^/@\s]*@", "//***@", str(exc))
        raise ConfigError(
            f"rate-limit storage (RATELIMIT_STORAGE_URI) unreachable at start-up "
            f"({type(exc).__name__}: {reason})"
        ) from None
    return limiter


def own_connection_per_process(storage: Storage) -> None:
    """Give each forked worker its own connection when the Redis client keeps one.

    With ``RATELIMIT_STORAGE_OPTIONS = {"single_connection_client": True}`` redis-py
    opens that connection when the storage is built.  An app built before gunicorn
    forks its workers (``--preload``) would leave every worker writing to, and reading
    replies from, the same socket; a pooled client already checks the process id.  The
    child gets a new connection, opened by its first command, and a new lock.
    """
    client = getattr(storage, "storage", None)  # limits' Redis storages keep it there
    if getattr(client, "connection", None) is not None:
        renew_after_fork(client, _new_connection)


def _new_connection(client: Any) -> None:
    # The parent's connection object closes only its file descriptor in the child:
    # redis-py shuts a socket down only in the process that opened it.
    client.connection = client.connection_pool.make_connection()
    if hasattr(client, "single_connection_lock"):  # redis-py 6 and later
        client.single_connection_lock = threading.RLock()


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
        frame: FrameType | None = sys._getframe(1)
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


def warn_if_memory_under_workers(storage: Storage, oauth: bool = False) -> None:
    """Log a WARNING when ``storage`` is per-process memory under several worker processes.

    Call it only when some limit is configured, or with ``oauth`` when the
    OAuth sign-in keeps its one-time marks there: without either there is
    nothing to count, so nothing to count wrongly.
    """
    if not isinstance(storage, MemoryStorage):
        return
    workers = server_worker_count()
    if workers is None or workers <= 1:
        return
    if oauth:
        log.warning(
            f"the OAuth sign-in keeps its one-time marks in memory:// storage under a server "
            f"with {workers} worker processes: a code or refresh token may be used once per "
            "worker, and a client registered on one worker works on all, but a replay is "
            "not always detected. Set RATELIMIT_STORAGE_URI=redis://host:6379."
        )
        return
    message = (
        f"rate limits use memory:// storage under a server with {workers} "
        "worker processes; each worker counts separately, so a key gets up to "
        f"{workers}x its limit. Set RATELIMIT_STORAGE_URI=redis://host:6379 (a storage "
        "all workers share; pip install 'flask-mcp-auth[redis]'), or run one worker "
        "process with threads (e.g. gunicorn --workers 1 --threads 8)."
    )
    # Without logging configured, the package's stderr fallback prints it (flask_mcp_auth.logs).
    log.warning(message)


__all__ = [
    "create_limiter",
    "own_connection_per_process",
    "server_worker_count",
    "warn_if_memory_under_workers",
]
