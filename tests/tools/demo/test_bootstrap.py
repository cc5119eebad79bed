"""The demo's first version: the request sent to the learner, and reading its verdict."""

from __future__ import annotations

from kafka_helpers import consume_until

from driftloop.schemas import (
    ModelVersion,
    Topic,
    TrainingRequest,
    TriggerKind,
    VersionStatus,
    decode,
)
from driftloop.tools.demo.bootstrap import decided, send_bootstrap_request
from driftloop.tools.demo.progress import ProgressState
from driftloop.tools.demo.traffic import DemoData, StreamItem


def version(version_id: str, request_id: str, status: VersionStatus) -> ModelVersion:
    return ModelVersion(version_id=version_id, ts=1.0, task="sentiment", base_model="m",
                        adapter_uri=f"file:///a/{version_id}", sha256="0" * 64, size_bytes=1,
                        training_request_id=request_id, status=status)


def test_the_verdict_on_a_request_is_its_promoted_or_rejected_version() -> None:
    state = ProgressState(versions=[version("v1", "r-1", VersionStatus.CANDIDATE),
                                    version("v2", "r-2", VersionStatus.REJECTED)])
    assert decided(state, "r-1") is None  # a candidate is not a decision yet
    assert decided(state, "r-2").version_id == "v2"
    state.versions.append(version("v1", "r-1", VersionStatus.PROMOTED))
    assert decided(state, "r-1").status is VersionStatus.PROMOTED
    assert decided(state, "r-3") is None


async def test_the_bootstrap_request_carries_every_bootstrap_text_in_the_seed_s_order(
        kafka_settings) -> None:  # type: ignore[no-untyped-def]
    items = [StreamItem(id=f"b-{k}", domain="tweets", text=f"text {k}",
                        label=("negative", "positive")[k % 2]) for k in range(12)]
    data = DemoData(stream=[], heldout={}, bootstrap=items)
    first = await send_bootstrap_request(kafka_settings, data, "run-bootstrap-1", 1)
    second = await send_bootstrap_request(kafka_settings, data, "run-bootstrap-2", 2)
    records = await consume_until(kafka_settings, Topic.TRAINING_REQUESTS, 2)
    sent = [decode(r.value, TrainingRequest) for r in records]
    assert [r.id for r in sent] == ["run-bootstrap-1", "run-bootstrap-2"]
    assert {r.key for r in records} == {b"sentiment"}
    assert sent[0].labels == ["negative", "positive"] and sent[0].trigger is TriggerKind.MANUAL
    order = [[e.interaction_id for e in r.examples] for r in (first, second)]
    assert order[0] != order[1]  # another seed, another order
    assert sorted(order[0]) == sorted(order[1]) == sorted(i.id for i in items)
    assert [e.interaction_id for e in sent[1].examples] == order[1]
