"""Real errors grow the challenge suite, end to end on the real broker.

Interactions whose prediction people corrected go through a real ``driftloop worker`` (join,
buffer, trigger) into a training request; the learner service trains a version, publishes it
and appends those errors to the suite; the next request's version is gated on them.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
from pathlib import Path

import pytest
from kafka_helpers import consume_until, produce
from test_service import session_updater, with_learner
from waiting import wait_until_async

from driftloop.learner.gate.challenges import ChallengeSuite
from driftloop.learner.gate.error_probes import ERROR_TAG, normalize_input
from driftloop.learner.service import LearnerService
from driftloop.schemas import Feedback, Interaction, ModelVersion, Topic, decode, encode_batch
from driftloop.schemas.enums import VersionStatus
from driftloop.tools.demo.vader import balanced_sample, read_domain

# The worker's test helpers live beside the stream tests (imported by module name there).
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "streams"))
from stream_helpers import FAST_ENV, WorkerProcess

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

ROUND = 24  # labelled interactions per training request
TASKS_ENV = json.dumps({"sentiment": {"kind": "classification",
                                      "labels": ["negative", "positive"]}})
WORKER_ENV = {**FAST_ENV, "DRIFTLOOP_TASKS": TASKS_ENV,
              "DRIFTLOOP_WORKER__TRIGGERS__MIN_EXAMPLES": str(ROUND),
              "DRIFTLOOP_WORKER__TRIGGERS__EVERY_EXAMPLES": str(ROUND)}
FLIP = {"positive": "negative", "negative": "positive"}


def traffic(texts: list[tuple[str, str]], start: int, wrong: dict[int, str]
            ) -> tuple[list[Interaction], list[Feedback]]:
    """Interactions answered right except at ``wrong`` (index -> feedback kind), and feedback
    giving every true label (``label``) or correcting the answer (``correction``)."""
    items, notes = [], []
    for k, (text, label) in enumerate(texts):
        iid = f"i-{start + k}"
        items.append(Interaction(id=iid, ts=1_700_000_000.0 + start + k, task="sentiment",
                                 domain="tweets", model_version="v0", input=text,
                                 prediction=FLIP[label] if k in wrong else label,
                                 scores={"confidence": 0.7}))
        notes.append(Feedback(id=f"f-{iid}", interaction_id=iid, ts=items[-1].ts + 1,
                              task="sentiment", kind=wrong.get(k, "label"), value=label,
                              source="reviewer"))
    return items, notes


async def send(settings, items: list[Interaction], notes: list[Feedback]) -> None:  # type: ignore[no-untyped-def]
    await produce(settings, Topic.INTERACTIONS, [encode_batch(items)], key="sentiment")
    await produce(settings, Topic.FEEDBACK, [encode_batch(notes)], key="sentiment")


async def test_a_corrected_interaction_is_a_probe_of_the_next_gate(
        kafka_settings, session_settings, updater, tmp_path) -> None:  # type: ignore[no-untyped-def]
    suite = tmp_path / "suite.jsonl"
    shutil.copy(session_settings.task("sentiment").challenge_suite, suite)
    settings = with_learner(kafka_settings, session_settings)
    task = settings.task("sentiment").model_copy(update={"challenge_suite": suite,
                                                         "challenge_error_cap": 50})
    settings = settings.model_copy(update={"tasks": {**settings.tasks, "sentiment": task}})
    hand_written = len(ChallengeSuite.load(suite))

    texts = [(e.text, e.label) for e in balanced_sample(read_domain("tweets"), 2 * ROUND,
                                                        seed=11)]
    first, second = texts[:ROUND], texts[ROUND:]
    # Round 1: three wrong predictions labelled, one corrected. Round 2: one new error and
    # one that differs from a round-1 error only in case and punctuation (no second probe).
    errors_1 = {2: "label", 5: "correction", 9: "label", 14: "label"}
    near_duplicate = (first[5][0].upper() + " !!", first[5][1])
    second[3] = near_duplicate
    errors_2 = {3: "label", 7: "correction"}

    worker = WorkerProcess(settings, _folder(tmp_path / "worker"), WORKER_ENV).start()
    service = LearnerService(settings, updater=session_updater(settings, updater),
                             max_requests=2)
    running = asyncio.create_task(service.run())
    try:
        await send(settings, *traffic(first, 0, errors_1))
        await wait_until_async(
            lambda: len(service.stats.published) >= 1 or running.done(), 180,
            "the first version")
        await send(settings, *traffic(second, ROUND, errors_2))
        await asyncio.wait_for(running, 180)
    finally:
        service.stop()
        assert worker.stop() == 0, worker.tail()

    records = await consume_until(settings, Topic.MODEL_VERSIONS, 2, timeout=30)
    v1, v2 = (decode(r.value, ModelVersion) for r in records)
    assert v1.training_request_id == "tr-sentiment-000001", v1
    assert v2.training_request_id == "tr-sentiment-000002", v2
    # The first gate had the hand-written suite; the next one also the four real errors.
    assert v1.metrics_after["challenge_count"] == hand_written
    assert v2.metrics_after["challenge_count"] == hand_written + 4
    assert v2.metrics_before["challenge_count"] == hand_written + 4
    assert f"challenge.{ERROR_TAG}" in v2.metrics_after
    assert f"challenge.{ERROR_TAG}" not in v1.metrics_after

    probes = [c for c in ChallengeSuite.load(suite) if ERROR_TAG in c.tags]
    expected_1 = [first[k] for k in sorted(errors_1)]
    expected_2 = [second[7]]  # the near-duplicate was not added again
    # In request order (the buffer's batch order), round 1's errors before round 2's.
    assert sorted((p.input, p.expected) for p in probes[:4]) == sorted(expected_1)
    assert [(p.input, p.expected) for p in probes[4:]] == expected_2
    assert len({normalize_input(p.input) for p in probes}) == len(probes)
    corrected = next(p for p in probes if p.input == first[5][0])
    assert corrected.source == {"interaction_id": "i-5",
                                "training_request_id": "tr-sentiment-000001",
                                "model_answer": FLIP[first[5][1]], "domain": "tweets",
                                "feedback_kind": "correction"}
    # Classification has no prompt template; the version says so.
    assert v1.prompt_template_id is None and v1.metadata["prompt_template"] is None
    assert "prompt_stability" not in v1.metrics_after
    assert v1.status in (VersionStatus.PROMOTED, VersionStatus.REJECTED)


def _folder(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path
