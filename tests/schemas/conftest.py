"""Hypothesis profiles of the schemas tests: ``ci`` is deterministic, ``dev`` explores.

CI (``CI`` set in the environment) loads ``ci``; ``HYPOTHESIS_PROFILE=dev`` (or any other
registered profile) picks one explicitly. Deadlines are off: the machine is shared with a
broker, a worker and a learner, so timings say nothing about a sample.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", derandomize=True, max_examples=40, deadline=None, database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "dev", max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI")
                                                               else "dev"))
