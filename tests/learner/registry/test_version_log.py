from __future__ import annotations

import pytest

from driftloop.learner.errors import RegistryError
from driftloop.learner.registry.version_log import VersionLog, version_id_for
from driftloop.schemas.enums import VersionStatus
from driftloop.schemas.events import ModelVersion


def event(version: str, status: str, parent: str | None = None, task: str = "t") -> ModelVersion:
    return ModelVersion(version_id=version, ts=1.0, task=task, base_model="m",
                        parent_version=parent, adapter_uri=f"file:///s/{version}",
                        sha256="0" * 64, size_bytes=1, status=status)


def test_version_id_is_stable_and_distinct() -> None:
    def vid(task: str, request: str, deployment: str = "eu") -> str:
        return version_id_for(task, request, deployment=deployment)

    assert vid("t", "r1") == vid("t", "r1")
    assert len({vid("t", "r1"), vid("t", "r2"), vid("u", "r1"), vid("t", "r1", "us")}) == 4


def test_head_follows_promotions_per_task() -> None:
    log = VersionLog().extend([event("a1", "promoted"), event("b1", "promoted", task="u"),
                               event("a2", "rejected", "a1"), event("a3", "promoted", "a1")])
    assert log.head("t").version_id == "a3" and log.head("u").version_id == "b1"
    assert log.head("none") is None
    assert [v.version_id for v in log.versions("t")] == ["a1", "a2", "a3"]
    assert log.events_seen == 4 and "a2" in log and "zz" not in log


def test_rollback_rolls_head_back_to_parent() -> None:
    log = VersionLog().extend([event("a1", "promoted"), event("a2", "promoted", "a1")])
    rolled, promoted = log.rollback_events("t", ts=9.0)
    assert (rolled.version_id, rolled.status) == ("a2", VersionStatus.ROLLED_BACK)
    assert (promoted.version_id, promoted.status) == ("a1", VersionStatus.PROMOTED)
    log.extend([rolled, promoted])
    assert log.head("t").version_id == "a1"
    assert log.get("a2").status is VersionStatus.ROLLED_BACK


def test_rolled_back_head_leaves_no_head() -> None:
    log = VersionLog().extend([event("a1", "promoted"), event("a1", "rolled_back")])
    assert log.head("t") is None


def test_registry_errors() -> None:
    log = VersionLog().extend([event("a1", "promoted")])
    with pytest.raises(RegistryError, match="no parent"):
        log.rollback_events("t", ts=1.0)
    with pytest.raises(RegistryError, match="no promoted version"):
        log.rollback_events("other", ts=1.0)
    with pytest.raises(RegistryError, match="unknown model version"):
        log.get("nope")


def test_lineage_stops_on_cycles() -> None:
    log = VersionLog().extend([event("a", "promoted", "b"), event("b", "promoted", "a")])
    assert [v.version_id for v in log.lineage("a")] == ["a", "b"]


def domain_event(version: str, status: str, domain: str, parent: str | None = None,
                 task: str = "t") -> ModelVersion:
    return event(version, status, parent, task).model_copy(update={"metadata": {"domain": domain}})


def test_domain_heads_follow_promotions_and_rollbacks_per_domain() -> None:
    log = VersionLog().extend([
        domain_event("m1", "promoted", "movies"), domain_event("n1", "promoted", "nyt"),
        domain_event("m2", "rejected", "movies", "m1"),
        domain_event("m3", "promoted", "movies", "m1"),
        domain_event("u1", "promoted", "movies", task="u"), event("plain", "promoted")])
    assert {d: v.version_id for d, v in log.domain_heads("t").items()} == {"movies": "m3",
                                                                            "nyt": "n1"}
    assert log.domain_head("t", "movies").version_id == "m3"
    assert log.domain_head("t", "books") is None and log.domain_head("u", "nyt") is None
    # The task's head is its latest promotion, whatever the domain (or none).
    assert log.head("t").version_id == "plain"
    rolled = log.status_event("m3", VersionStatus.ROLLED_BACK, ts=3.0)
    log.extend([rolled, log.status_event("m1", VersionStatus.PROMOTED, ts=3.0)])
    assert log.domain_head("t", "movies").version_id == "m1"
    log.apply(log.status_event("n1", VersionStatus.ROLLED_BACK, ts=4.0))
    assert log.domain_head("t", "nyt") is None
