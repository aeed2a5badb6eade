"""Hypothesis profiles for the property-based tests, chosen with HYPOTHESIS_PROFILE.

- ``ci`` (default): enough examples to catch regressions while the whole
  hostile-input file stays well under 30 seconds on a small CI machine.
- ``long``: many more examples, for a run before a release or after touching
  credential extraction, error bodies or key-store parsing::

      HYPOTHESIS_PROFILE=long pytest tests/security/test_hostile_input.py

  (tox passes HYPOTHESIS_* through: ``HYPOTHESIS_PROFILE=long tox``.)

Deadlines are off in both: a shared CI machine makes per-example timings
meaningless.  pytest-timeout still bounds every test; in the long profile
property-based tests get a longer bound, set below.

Loaded by tests/conftest.py, which calls ``mark_long_timeouts`` from its
``pytest_collection_modifyitems`` hook.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
LONG_TIMEOUT_SECONDS = 900

_COMMON = {
    "deadline": None,
    # Building requests and apps is deliberate work, not a slow generator.
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
}

settings.register_profile("ci", max_examples=100, **_COMMON)
settings.register_profile("long", max_examples=3000, **_COMMON)
settings.load_profile(PROFILE)


def mark_long_timeouts(items: list[pytest.Item]) -> None:
    """In the long profile, give every property-based test LONG_TIMEOUT_SECONDS."""
    if PROFILE != "long":
        return
    for item in items:
        if getattr(getattr(item, "obj", None), "is_hypothesis_test", False):
            item.add_marker(pytest.mark.timeout(LONG_TIMEOUT_SECONDS))
