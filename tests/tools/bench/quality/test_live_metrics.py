"""The live-loop bench's figures, on a hand-made record (no model)."""

from __future__ import annotations

from driftloop.schemas.enums import TriggerKind
from driftloop.schemas.events import ModelVersion
from driftloop.tools.bench.quality.live_loop import LiveRecord, VersionRecord
from driftloop.tools.bench.quality.live_metrics import (
    arm_counts,
    labels_by,
    live_metrics,
    worst_slice_change,
)

BOUNDARIES = [("a", 0, 100), ("b", 100, 200)]


def version(vid: str, status: str, at: int, labels: int, a: float, b: float) -> VersionRecord:
    event = ModelVersion(version_id=vid, ts=0.0, task="t", base_model="m",
                         adapter_uri=f"file:///s/{'0' * 64}", sha256="0" * 64, size_bytes=1,
                         status=status)
    return VersionRecord(event, at, labels, {"a": a, "b": b} if status == "promoted" else {})


def record() -> LiveRecord:
    rec = LiveRecord()
    rec.versions = [version("v0", "promoted", 0, 0, 0.8, 0.5),
                    version("v1", "rejected", 120, 90, 0, 0),
                    version("v2", "promoted", 160, 120, 0.79, 0.7)]
    rec.served = [("a", "v0", True)] * 100 + [("b", "v0", False)] * 60 + \
        [("b", "v2", True)] * 40
    rec.alerts = [(110, "embedding"), (40, "score")]
    rec.requests = [(0, TriggerKind.MANUAL, 64, 64), (120, TriggerKind.DRIFT, 30, 40),
                    (160, TriggerKind.SCHEDULE, 60, 80)]
    rec.label_marks = [(50, 40), (100, 80), (150, 110), (200, 150)]
    rec.labels = 150
    return rec


def test_a_shift_is_answered_when_a_better_version_serves_and_labels_are_counted() -> None:
    rec = record()
    for v, train in zip(rec.versions, (48, 22, 0), strict=True):
        if train:  # the last says nothing of its split: it counts 0
            v.event = v.event.model_copy(update={"metadata": {"examples": {"train": train}}})
    rec.versions[1].event.metrics_after.update(
        {"holdout_count": 30.0, "holdout_effect": 0.1, "holdout_p_better": 0.2,
         "replay_p_worse": 0.05})  # v1: forgot at 0.1, not shown better
    figures = live_metrics(rec, BOUNDARIES, rec.label_marks,
                           static_served=[True] * 100 + [False] * 100, alpha=0.1)
    [shift] = figures["shifts"]
    assert shift["to"] == "b" and shift["before"] == 0.5
    assert shift["labels_until_better"] == 120 - 80  # v2 came with 120 labels, shift at 80
    # what the gate made of each candidate decided within 240 labels of the shift
    assert shift["candidates"] == [
        {"labels": 10, "verdict": "forgetting", "recent": 30, "effect": 0.1},
        {"labels": 40, "verdict": "promoted", "recent": 0, "effect": 0.0}]
    assert figures["final_shifted"] == 0.7 and figures["static_shifted"] == 0.5
    assert figures["forgetting_first"] == 0.8 - 0.79
    assert figures["live_shifted"] == 0.4 and figures["static_live_shifted"] == 0.0
    assert figures["promotions"] == 1 and figures["false_promotions"] == 0
    assert figures["alerts_far_from_shifts"] == 1  # the score alert at 40, before any shift
    assert figures["requests_by_trigger"] == {"manual": 1, "drift": 1, "schedule": 1}
    assert figures["examples_trained"] == 184
    assert figures["examples_trained_on"] == 48 + 22  # the training parts, not held-out ones


def test_a_promotion_worse_than_its_parent_on_seen_domains_is_false() -> None:
    rec = record()
    rec.versions[2] = version("v2", "promoted", 160, 120, 0.6, 0.6)  # mean 0.6 < 0.65 - 0.01
    figures = live_metrics(rec, BOUNDARIES, rec.label_marks, [True] * 200, alpha=0.1)
    assert figures["false_promotions"] == 1


def test_under_an_adapter_per_domain_each_domain_is_scored_on_the_head_that_serves_it() -> None:
    rec = record()
    rec.domain_names = {"a": "a", "b": "b"}
    rec.versions = [version("v0", "promoted", 0, 0, 0.8, 0.5),
                    version("v1", "promoted", 150, 110, 0.3, 0.7),
                    version("v2", "promoted", 180, 140, 0.85, 0.4)]
    for v, domain in zip(rec.versions, "aba", strict=True):
        v.event.metadata["domain"] = domain
    figures = live_metrics(rec, BOUNDARIES, rec.label_marks, [True] * 200, alpha=0.1)
    # b is served by its own head v1, not by the later head of a's lineage
    assert figures["final_shifted"] == 0.7 and figures["final_heldout"] == {"a": 0.85, "b": 0.7}
    assert figures["shifts"][0]["labels_until_better"] == 110 - 80
    assert figures["forgetting_first"] == 0.8 - 0.85
    # each promotion is held against what served its own domain before it (v0 for both)
    assert figures["promotions"] == 2 and figures["false_promotions"] == 0
    rec.domain_names = {"a": "live", "b": "live"}  # unnamed: the latest head serves both
    for v in rec.versions:
        v.event.metadata["domain"] = "live"
    figures = live_metrics(rec, BOUNDARIES, rec.label_marks, [True] * 200, alpha=0.1)
    assert figures["final_shifted"] == 0.4  # and v1, serving a too, forgot it: 0.5 < 0.65
    assert figures["false_promotions"] == 1


def test_labels_by_reads_the_marks_up_to_an_event() -> None:
    assert labels_by([(16, 5), (32, 12)], 0) == 0 and labels_by([(16, 5), (32, 12)], 99) == 12


def test_arms_are_counted_when_the_versions_name_one() -> None:
    versions = record().versions
    assert arm_counts(versions) == {}
    for v, arm in zip(versions, ("retrieval", "lora", "retrieval"), strict=True):
        v.event.metadata["arm"] = arm
    assert arm_counts(versions) == {"arm_retrieval": 2, "arm_retrieval_promoted": 2,
                                    "arm_lora": 1, "arm_lora_promoted": 0}


def test_the_worst_slice_change_is_averaged_over_gated_versions() -> None:
    versions = record().versions
    assert worst_slice_change(versions) == {}
    versions[1].event.metrics_before.update({"slice.domain=a": 0.8, "slice.domain=b": 0.5,
                                             "slice.domain=b_count": 30.0})
    versions[1].event.metrics_after.update({"slice.domain=a": 0.7, "slice.domain=b": 0.9,
                                            "slice.domain=b_count": 30.0})
    versions[2].event.metrics_before.update({"slice.length=short": 0.6})
    versions[2].event.metrics_after.update({"slice.length=short": 0.7})
    assert worst_slice_change(versions) == {"worst_slice_change": 0.0}  # (-0.1 + 0.1) / 2
