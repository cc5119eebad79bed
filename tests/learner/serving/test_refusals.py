"""RefusedVersions: a refusal is remembered with its artifact; a corrected one is tried again."""

from __future__ import annotations

from driftloop.learner.serving import RefusedVersions, VersionRefusal
from driftloop.schemas import ModelVersion, ServingStatus


def event(version_id: str, sha: str = "0") -> ModelVersion:
    return ModelVersion(version_id=version_id, ts=1.0, task="t", base_model="m",
                        adapter_uri=f"file:///store/{sha * 64}", sha256=sha * 64, size_bytes=1,
                        status="promoted")


def test_a_refusal_covers_its_artifact_only() -> None:
    refused = RefusedVersions()
    assert event("v1") not in refused and refused.reasons == {}
    refusal = refused.add(event("v1"), "sha256 mismatch", serving="v0")
    assert refusal == VersionRefusal("t", "v1", "sha256 mismatch", "v0")
    assert event("v1") in refused and refused.reasons == {"v1": "sha256 mismatch"}
    assert event("v1", sha="1") not in refused  # republished with another artifact
    assert event("v2") not in refused and "v1" not in refused  # only events are members
    refused.add(event("v1", sha="1"), "format", serving="v0")  # the latest refusal counts
    assert event("v1") not in refused and refused.reasons == {"v1": "format"}


def test_the_refusal_ack_names_what_the_replica_still_serves() -> None:
    ack = VersionRefusal("t", "v2", "sha256 mismatch", "v1").ack("pod-1")
    assert (ack.replica, ack.task, ack.version_id, ack.status, ack.reason) == (
        "pod-1", "t", "v2", ServingStatus.REFUSED, "sha256 mismatch")
    assert ack.previous_version == "v1" and ack.metadata == {"serving": "v1"}
