"""What a replica serves, chosen from the version log: head, rollback fallback, candidate."""

from __future__ import annotations

from driftloop.learner.registry.version_log import VersionLog
from driftloop.learner.serving import RefusedVersions
from driftloop.learner.serving.choice import newest_candidate, served_target
from driftloop.schemas import ModelVersion, VersionStatus


def event(version_id: str, status: str, task: str = "t") -> ModelVersion:
    return ModelVersion(version_id=version_id, ts=1.0, task=task, base_model="m",
                        adapter_uri=f"file:///store/{version_id}", sha256="0" * 64,
                        size_bytes=1, status=status)


def test_the_head_is_the_target_unless_it_was_refused() -> None:
    log = VersionLog().extend([event("v1", "promoted"), event("v2", "promoted")])
    refused = RefusedVersions()
    assert served_target(log, "t", "v1", refused).version_id == "v2"
    refused.add(log.get("v2"), "sha256 mismatch", serving="v1")
    assert served_target(log, "t", "v1", refused) is None  # v1 stays
    assert served_target(log, "other", None, refused) is None


def test_a_rollback_without_repromotion_falls_back_to_the_newest_promoted_not_refused() -> None:
    log = VersionLog().extend([event("v1", "promoted"), event("v2", "promoted"),
                               event("v3", "promoted"), event("v4", "rejected")])
    log.apply(event("v3", "rolled_back"))
    refused = RefusedVersions()
    refused.add(log.get("v2"), "missing artifact", serving="v3")
    assert served_target(log, "t", "v3", refused).version_id == "v1"
    # Not serving the rolled-back version (or nothing yet): nothing to fall back from.
    assert served_target(log, "t", None, refused) is None
    assert served_target(log, "t", "v1", refused) is None
    log.apply(event("v1", "rolled_back"))
    assert served_target(log, "t", "v1", refused) is None  # nothing promoted is left


def test_the_canary_candidate_is_the_newest_candidate() -> None:
    log = VersionLog().extend([event("v1", "promoted"), event("v2", "candidate"),
                               event("v3", "candidate"), event("x", "candidate", task="u")])
    assert newest_candidate(log, "t").version_id == "v3"
    log.apply(event("v3", VersionStatus.REJECTED))
    assert newest_candidate(log, "t").version_id == "v2"
    log.apply(event("v2", VersionStatus.PROMOTED))
    assert newest_candidate(log, "t") is None
