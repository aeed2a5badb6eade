"""Locks that a forked child gets fresh: one registry for every object that owns one.

A lock held by another thread at ``fork()`` stays held in the child forever (the
thread that held it does not exist there); the child's only thread is the one
that forked, so replacing the lock is correct.  gunicorn forks its workers after
the app (and its locks) may already exist, with ``--preload``.
"""

from __future__ import annotations

import os
import threading
import weakref
from typing import Any

#: Every owner in this process; weak, so apps can be discarded.
_owners: weakref.WeakSet[Any] = weakref.WeakSet()


def fork_safe_lock(owner: Any) -> threading.Lock:
    """A lock for ``owner._lock``; in a forked child, ``owner._lock`` is replaced by a new one."""
    _owners.add(owner)
    return threading.Lock()


def renew_locks() -> None:
    """Give every owner a fresh ``_lock`` (run in the child after a fork)."""
    for owner in list(_owners):
        owner._lock = threading.Lock()


if hasattr(os, "register_at_fork"):  # POSIX only; nothing forks elsewhere
    os.register_at_fork(after_in_child=renew_locks)


__all__ = ["fork_safe_lock", "renew_locks"]
