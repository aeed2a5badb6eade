"""Clocks a test controls: the key store's wall clock, and a manual monotonic clock."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

import pytest

from flask_mcp_auth import _time


@contextmanager
def frozen_clock(monkeypatch: pytest.MonkeyPatch, moment: datetime) -> Iterator[None]:
    """Make the key store believe it is ``moment`` (expiry checks and start-up warnings)."""
    with monkeypatch.context() as patch:
        patch.setattr(_time, "now", lambda: moment)
        yield


class FakeClock:
    """A monotonic clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
