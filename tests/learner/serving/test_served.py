"""ServedVersions: the served pointer, the history kept loaded, the canary split."""

from __future__ import annotations

import pytest

from driftloop.learner.serving import ServedVersions
from driftloop.learner.serving.served import canary_bucket


def test_the_last_keep_versions_stay_kept_and_a_rollback_moves_the_pointer_only() -> None:
    served = ServedVersions(keep_versions=3)
    for version in ("v1", "v2", "v3", "v4"):
        served.promote("t", version)
    assert served.serving("t") == "v4" and served.kept("t") == {"v2", "v3", "v4"}
    served.promote("t", "v2")  # back to a kept version: nothing leaves the history
    assert served.serving("t") == "v2" and served.kept("t") == {"v2", "v3", "v4"}
    served.promote("t", "v5")  # v3 is now the oldest kept
    assert served.kept("t") == {"v4", "v2", "v5"}
    assert served.served() == {"t": "v5"} and served.serving("other") is None


def test_the_candidate_is_kept_and_takes_its_share_of_requests_by_request_id() -> None:
    served = ServedVersions(keep_versions=1, canary_fraction=0.25)
    served.promote("t", "v1")
    assert served.route("t", "request-1") == "v1"  # no candidate: everything to v1
    assert served.set_candidate("t", "v2") and not served.set_candidate("t", "v2")
    assert served.kept("t") == {"v1", "v2"} and served.candidates() == {"t": "v2"}
    routed = [served.route("t", f"request-{i}") for i in range(2000)]
    assert routed.count("v2") / len(routed) == pytest.approx(0.25, abs=0.04)
    assert routed == [served.route("t", f"request-{i}") for i in range(2000)]
    assert served.set_candidate("t", None) and served.candidate("t") is None
    assert {served.route("t", f"request-{i}") for i in range(100)} == {"v1"}
    assert served.kept("t") == {"v1"}


def test_the_canary_bucket_is_a_stable_number_in_the_unit_interval() -> None:
    buckets = [canary_bucket(f"r{i}") for i in range(1000)]
    assert all(0.0 <= b < 1.0 for b in buckets)
    assert buckets == [canary_bucket(f"r{i}") for i in range(1000)]
    assert 0.4 < sum(buckets) / len(buckets) < 0.6


@pytest.mark.parametrize("kwargs", [{"keep_versions": 0}, {"canary_fraction": 1.5},
                                    {"canary_fraction": -0.1}])
def test_bad_arguments_fail_at_construction(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        ServedVersions(**kwargs)  # type: ignore[arg-type]
