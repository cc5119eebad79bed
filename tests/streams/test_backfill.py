"""Backfill: a fresh worker consumer group, started from the beginning of the retained topics,
rebuilds the state the live worker had (counts, detector history, replay buffer)."""

from __future__ import annotations

import pytest
from kafka_helpers import consume_until, produce
from stream_helpers import FAST_ENV, batches, feedback_for, interactions

from driftloop.schemas import Topic, TrainingRequest, decode

pytestmark = pytest.mark.slow

STATE = [  # (metric, labels) that make up the worker's state as seen from outside
    ("driftloop_worker_events_total", {"kind": "interactions"}),
    ("driftloop_worker_events_total", {"kind": "joined"}),
    ("driftloop_drift_monitored_events_total", {"domain": "news"}),
    ("driftloop_drift_alerts_total", {"signal": "embedding"}),
    ("driftloop_drift_alerts_total", {"signal": "score"}),
]


async def test_a_fresh_group_from_the_beginning_rebuilds_the_live_workers_state(
        kafka_settings, worker_factory):
    stream = interactions(3_000) + interactions(3_000, start=3_000, shift=1.0)
    # Labels before and after the shift: the drift trigger waits for labels of the regime
    # the alert opened (the shift at 3,000 is seen a few hundred events later).
    labelled = stream[:100] + stream[4_500:4_550]
    live = worker_factory(**FAST_ENV).start()
    await produce(kafka_settings, Topic.INTERACTIONS, batches(stream), key="sentiment")
    await produce(kafka_settings, Topic.FEEDBACK, batches(feedback_for(labelled)),
                  key="sentiment")
    live.wait_value("driftloop_worker_events_total", 6_000, kind="interactions")
    live.wait_value("driftloop_worker_events_total", 150, kind="joined")
    before = {(name, tuple(labels.items())): live.value(name, **labels)
              for name, labels in STATE}
    assert before[("driftloop_drift_alerts_total", (("signal", "embedding"),))] >= 1
    assert live.stop() == 0

    # The backfill: same topics, a new app id, hence a new consumer group with empty tables,
    # reading from the earliest retained offsets.
    backfill = worker_factory(**FAST_ENV, DRIFTLOOP_WORKER__APP_ID="driftloop-backfill").start()
    backfill.wait_value("driftloop_worker_events_total", 6_000, timeout=120,
                        kind="interactions")
    backfill.wait_value("driftloop_worker_events_total", 150, kind="joined")
    after = {(name, tuple(labels.items())): backfill.value(name, **labels)
             for name, labels in STATE}
    assert after == before

    # The rebuilt buffer and triggers make the same decision as the live worker did: the same
    # training request, byte for byte in content and with the same deterministic id, so the
    # learner (which derives version ids from request ids) does not train twice.
    records = await consume_until(kafka_settings, Topic.TRAINING_REQUESTS, 2, timeout=60)
    live_request, rebuilt_request = (decode(r.value, TrainingRequest) for r in records[:2])
    assert rebuilt_request.id == live_request.id
    assert rebuilt_request.trigger == live_request.trigger
    assert rebuilt_request.examples == live_request.examples
    assert {e.input for e in rebuilt_request.examples} == {x.input for x in labelled}
    assert backfill.stop() == 0
