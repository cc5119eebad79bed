"""A/B promotion end to end: a real ``driftloop worker`` on the real broker decides canaries.

Two tasks, each with a promoted head and a canaried candidate on ``model-versions``, as a
learner with ``learner.promotion = "canary"`` leaves them. Interactions carry the version
that answered, split by a hash of the request id as serving's canary split does; feedback
says right or wrong with a synthetic accuracy per version. The worker must promote the
better candidate and reject the worse one, once each, across duplicate feedback, a replayed
candidate event and a restart, and ignore a candidate command of another task and the answers
of a version that is neither head nor candidate.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from kafka_helpers import consume_until, produce
from stream_helpers import FAST_ENV, batches

from driftloop.schemas import Feedback, Interaction, ModelVersion, Topic, decode, encode
from driftloop.schemas.commands import Command
from driftloop.streams.control import send_commands

pytestmark = [pytest.mark.kafka]

CANARY_FRACTION = 0.5
# Accuracy of head and candidate per task (the "0.9 vs 0.6", both ways round).
TASKS = {"better": ("better-v1", 0.6, "better-v2", 0.9),
         "worse": ("worse-v1", 0.9, "worse-v2", 0.6)}


def version(version_id: str, task: str, status: str, parent: str | None = None) -> ModelVersion:
    return ModelVersion(version_id=version_id, ts=1.0, task=task, base_model="m",
                        parent_version=parent, adapter_uri=f"file:///store/{version_id}",
                        sha256=hashlib.sha256(version_id.encode()).hexdigest(), size_bytes=100,
                        training_request_id=f"tr-{version_id}", status=status,
                        metrics_after={"holdout_score": 0.8}, reason="passed the gate")


def canary(request_id: str) -> bool:
    """Serving's split: a stable hash of the request id below the canary fraction."""
    digest = hashlib.blake2b(request_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 < CANARY_FRACTION


def live_traffic(task: str, n: int, seed: int) -> tuple[list[Interaction], list[Feedback]]:
    head, p_head, candidate, p_candidate = TASKS[task]
    rng = np.random.default_rng(seed)
    items, labels = [], []
    for k in range(n):
        request_id = f"{task}-r{k}"
        answered_by, p = (candidate, p_candidate) if canary(request_id) else (head, p_head)
        items.append(Interaction(id=request_id, ts=1_700_000_000.0 + k, task=task,
                                 domain="reviews", model_version=answered_by,
                                 input=f"review {k}", prediction="pos",
                                 scores={"confidence": 0.8}))
        labels.append(Feedback(id=f"f-{request_id}", interaction_id=request_id,
                               ts=1_700_000_001.0 + k, task=task, kind="label",
                               value="pos" if rng.random() < p else "neg"))
    return items, labels


def decisions(records) -> list[tuple[str, str]]:
    """(version, status) of the entries that are not the registry's own set-up."""
    events = [decode(r.value, ModelVersion) for r in records]
    return [(e.version_id, e.status.value) for e in events if e.reason != "passed the gate"]


async def test_a_better_candidate_on_live_feedback_is_promoted_and_a_worse_one_rejected(
        kafka_settings, worker_factory):
    env = {**FAST_ENV, "DRIFTLOOP_WORKER__AB_TEST__MIN_SAMPLES": "20"}
    worker = worker_factory(**env).start()
    registry = []
    for task, (head, _, candidate, _) in TASKS.items():
        registry += [version(head, task, "promoted"), version(candidate, task, "candidate", head)]
    for event in registry:
        await produce(kafka_settings, Topic.MODEL_VERSIONS, [encode(event)], key=event.task)
    worker.wait_for(lambda text: all(f'driftloop_ab_test_pairs{{candidate="{c}"' in text
                                     for _, _, c, _ in TASKS.values()), 60,
                    "both A/B tests started")

    # Bad input over Kafka: a candidate command carrying another task's event, and answers
    # of a version that is neither head nor candidate (an old replica's).
    wrong_task = version("worse-v9", "worse", "candidate").model_dump(mode="json")
    await send_commands(kafka_settings, [Command(id="c-bad", task="better", kind="candidate",
                                                 version="worse-v9", event=wrong_task)])
    stale, stale_labels = live_traffic("better", 40, seed=7)
    stale = [x.model_copy(update={"id": f"old-{x.id}", "model_version": "better-v0"})
             for x in stale]
    stale_labels = [f.model_copy(update={"id": f"old-{f.id}",
                                         "interaction_id": f"old-{f.interaction_id}"})
                    for f in stale_labels]
    await produce(kafka_settings, Topic.INTERACTIONS, batches(stale), key="better")
    await produce(kafka_settings, Topic.FEEDBACK, batches(stale_labels), key="better")
    worker.wait_value("driftloop_ab_test_events_total", 40, task="better",
                      kind="outcomes_other_version")
    assert worker.value("driftloop_ab_test_events_total", kind="bad_candidates") == 1

    traffic = {task: live_traffic(task, 600, seed) for seed, task in enumerate(TASKS)}
    for task, (items, labels) in traffic.items():
        await produce(kafka_settings, Topic.INTERACTIONS, batches(items, 100), key=task)
        await produce(kafka_settings, Topic.FEEDBACK, batches(labels, 100), key=task)
    records = await consume_until(kafka_settings, Topic.MODEL_VERSIONS,
                                  lambda rs: len(decisions(rs)) >= 2, timeout=60)
    assert sorted(decisions(records)) == [("better-v2", "promoted"), ("worse-v2", "rejected")]
    promoted = next(e for e in (decode(r.value, ModelVersion) for r in records)
                    if e.version_id == "better-v2" and e.status.value == "promoted")
    assert promoted.sha256 == version("better-v2", "better", "candidate").sha256
    assert promoted.parent_version == "better-v1" and "likelihood ratio" in promoted.reason
    assert worker.value("driftloop_ab_test_decisions_total", verdict="promote") == 1
    assert worker.value("driftloop_ab_test_decisions_total", verdict="reject") == 1

    # A restart, then everything again: the same feedback (duplicates), the candidates'
    # events (a replayed log). The decisions are in the worker's tables: none is repeated.
    assert worker.stop() == 0
    worker = worker_factory(**env).start()
    for event in registry[1::2]:
        await produce(kafka_settings, Topic.MODEL_VERSIONS, [encode(event)], key=event.task)
    fed = 0
    for task, (_, labels) in traffic.items():
        await produce(kafka_settings, Topic.FEEDBACK, batches(labels, 100), key=task)
        fed += len(labels)
    worker.wait_value("driftloop_worker_events_total", 2 * fed, timeout=60, kind="feedback")
    # A deadline, not a pause: 13-29 s on a quiet machine, and a CI run under load missed 30.
    worker.wait_value("driftloop_ab_test_events_total", 2, timeout=90,
                      kind="candidates_replayed")
    records = await consume_until(kafka_settings, Topic.MODEL_VERSIONS, len(records) + 2,
                                  timeout=30)
    assert sorted(decisions(records)) == [("better-v2", "promoted"), ("worse-v2", "rejected")]
    assert worker.value("driftloop_ab_test_events_total", kind="candidates") == 2
    assert worker.value("driftloop_ab_test_decisions_total") == 2
    assert worker.stop() == 0
