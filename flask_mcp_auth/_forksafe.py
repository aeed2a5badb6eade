"""What a forked child must not inherit as it is: one registry for every owner.

A lock held by another thread at ``fork()`` stays held in the child forever (the
thread that held it does not exist there); the child's only thread is the one
that forked, so replacing the lock is correct.  A connection opened before the
fork would be one socket shared by parent and children, each reading the others'
replies.  gunicorn forks its workers after the app (its locks and connections)
may already exist, with ``--preload``.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable
from typing import Any

#: Every owner in this process; weak, so apps can be discarded.
_owners: weakref.WeakSet[Any] = weakref.WeakSet()
#: Owners renewed some other way in the child: owner -> what renews it.
_renewals: weakref.WeakKeyDictionary[Any, Callable[[Any], None]] = weakref.WeakKeyDictionary()


def fork_safe_lock(owner: Any) -> threading.Lock:
    """A lock for ``owner._lock``; in a forked child, ``owner._lock`` is replaced by a new one."""
    _owners.add(owner)
    return threading.Lock()


def renew_after_fork(owner: Any, renew: Callable[[Any], None]) -> None:
    """Call ``renew(owner)`` in every child forked from now on, while ``owner`` lives."""
    _renewals[owner] = renew


def renew_locks() -> None:
    """Give every owner a fresh ``_lock``, and renew the others (run in the child after a
    fork)."""
    for owner in list(_owners):
        owner._lock = threading.Lock()
    for owner, renew in list(_renewals.items()):
        renew(owner)


if hasattr(os, "register_at_fork"):  # POSIX only; nothing forks elsewhere
    os.register_at_fork(after_in_child=renew_locks)


__all__ = ["fork_safe_lock", "renew_after_fork", "renew_locks"]
