"""The worker end to end on the real broker, run as ``driftloop worker`` in a subprocess."""

from __future__ import annotations

import asyncio
import base64
import random
import urllib.request

import orjson
import pytest
from kafka_helpers import consume_until, produce
from stream_helpers import (
    FAST_ENV,
    batches,
    feedback_for,
    interactions,
    task_on,
)

from driftloop.schemas import (
    DeadLetter,
    DriftAlert,
    LabelRequest,
    Topic,
    TrainingRequest,
    decode,
    encode,
)
from driftloop.streams.watchdog import STALL_EXIT_CODE
from driftloop.streams.write_gap import ENV as WRITE_GAP_ENV

pytestmark = [pytest.mark.kafka]


async def test_feedback_before_its_interaction_is_joined_and_poison_is_dead_lettered(
        kafka_settings, worker_factory):
    worker = worker_factory(**FAST_ENV,
                            DRIFTLOOP_TASKS__SENTIMENT__SLICE_KEYS='["language"]').start()
    # Producers name a slice of their traffic in metadata; the task watches "language".
    items = [ix.model_copy(update={"metadata": {"language": "de" if n % 4 else "en",
                                                "tier": "gold"}})
             for n, ix in enumerate(interactions(40))]
    # Feedback first: it must wait in the join window for its interaction.
    await produce(kafka_settings, Topic.FEEDBACK, batches(feedback_for(items)), key="sentiment")
    poison = [b"{not json", b'{"schema_name": "driftloop.interaction"}', b"\xff\xfe"]
    mixed = (b'{"schema_name":"driftloop.batch","schema_version":1,"events":['
             + encode(items[0]) + b',{"id": 5}]}')
    await produce(kafka_settings, Topic.INTERACTIONS, [*poison, mixed], key="sentiment")
    await produce(kafka_settings, Topic.INTERACTIONS, batches(items[1:]), key="sentiment")
    worker.wait_value("driftloop_worker_events_total", 40, task="sentiment", kind="joined")
    assert worker.value("driftloop_worker_events_total", kind="interactions") == 40
    letters = await consume_until(kafka_settings, Topic.DEAD_LETTERS, 4)
    decoded = [decode(r.value, DeadLetter) for r in letters]
    assert sorted(d.reason for d in decoded) == sorted(
        ["invalid_json", "invalid_event", "invalid_utf8", "invalid_event"])
    by_offset = {(d.offset, d.event_index): d for d in decoded}
    assert base64.b64decode(by_offset[(0, None)].payload_b64) == b"{not json"
    in_batch = by_offset[(3, 1)]
    assert orjson.loads(base64.b64decode(in_batch.payload_b64)) == {"id": 5}
    assert worker.value("driftloop_dead_letters_total", reason="invalid_event") == 2
    # 40 labels joined: a manual trigger now yields one training request with them inline.
    from driftloop.schemas.commands import manual_trigger
    from driftloop.streams.control import send_commands
    await send_commands(kafka_settings, [manual_trigger("sentiment", reason="test")])
    records = await consume_until(kafka_settings, Topic.TRAINING_REQUESTS, 1, timeout=30)
    request = decode(records[0].value, TrainingRequest)
    assert request.trigger.value == "manual" and request.id == "tr-sentiment-000001"
    assert len(request.examples) == 40
    # The named slice travels with each example (what the gate's per-slice figures read),
    # and the worker's quality figures are kept per slice too; "tier" is not a slice key.
    assert sorted(e.slices["language"] for e in request.examples) == ["de"] * 30 + ["en"] * 10
    assert worker.value("driftloop_quality_slice_outcomes", slice="language=de") == 30
    assert worker.value("driftloop_quality_slice_outcomes", slice="language=en") == 10
    assert worker.stop() == 0


async def test_shifting_embeddings_raise_one_drift_alert_and_a_training_request(
        kafka_settings, worker_factory):
    worker = worker_factory(**FAST_ENV).start()
    stable = interactions(5_000)
    shifted = interactions(5_000, start=5_000, shift=1.0)
    await produce(kafka_settings, Topic.INTERACTIONS, batches(stable), key="sentiment")
    # 50 labels: enough examples to train on, too few for the accuracy trigger.
    await produce(kafka_settings, Topic.FEEDBACK, batches(feedback_for(stable[:50])),
                  key="sentiment")
    await produce(kafka_settings, Topic.INTERACTIONS, batches(shifted), key="sentiment")
    worker.wait_value("driftloop_worker_events_total", 10_000, kind="interactions")
    alerts = await consume_until(kafka_settings, Topic.DRIFT_ALERTS, 1, timeout=30)
    first = decode(alerts[0].value, DriftAlert)
    assert first.signal.value == "embedding" and first.domain == "news"
    # Bounded delay: detected within 2,000 events of the change.
    assert 5_000 < first.events_seen <= 7_000, first
    # The drift trigger waits for labels of the regime the alert opened: the 50 old ones
    # are not enough. 16 labels of interactions seen after the alert are.
    await produce(kafka_settings, Topic.FEEDBACK, batches(feedback_for(shifted[3_000:3_016])),
                  key="sentiment")
    records = await consume_until(kafka_settings, Topic.TRAINING_REQUESTS, 1, timeout=30)
    request = decode(records[0].value, TrainingRequest)
    assert request.trigger.value == "drift" and len(request.examples) == 66
    assert sorted({e.regime for e in request.examples}) == [0, 1]
    assert request.metadata["regime_labels"] == 16
    # One shift, one embedding alert (the components share a cooldown).
    assert worker.value("driftloop_drift_alerts_total", signal="embedding") == 1
    # Active learning ran alongside: uncertain interactions became label requests, within
    # the default budget (100 per task per hour), one per interaction.
    asked = await consume_until(kafka_settings, Topic.LABEL_REQUESTS, 100, timeout=30)
    requests = [decode(r.value, LabelRequest) for r in asked]
    assert len({r.interaction.id for r in requests}) == 100
    assert all(r.reason.value == "margin" and r.priority >= 0.6 for r in requests)
    assert worker.value("driftloop_worker_events_total", kind="label_requests") == 100
    with urllib.request.urlopen(f"http://127.0.0.1:{worker.port}/health", timeout=5) as resp:
        health = orjson.loads(resp.read())
    assert health["status"] == "ok" and health["messages_handled"] >= 21
    assert worker.stop() == 0


@pytest.mark.slow
async def test_a_stable_stream_of_50000_events_raises_no_alert(kafka_settings, worker_factory):
    worker = worker_factory(**FAST_ENV).start()
    for start in range(0, 50_000, 10_000):
        await produce(kafka_settings, Topic.INTERACTIONS,
                      batches(interactions(10_000, start=start)), key="sentiment")
    worker.wait_value("driftloop_worker_events_total", 50_000, timeout=120, kind="interactions")
    assert worker.value("driftloop_drift_monitored_events_total", domain="news") == 50_000
    assert worker.value("driftloop_drift_alerts_total") == 0
    assert worker.stop() == 0


async def test_a_timed_schedule_fires_on_an_idle_stream(kafka_settings, worker_factory):
    worker = worker_factory(**FAST_ENV, DRIFTLOOP_WORKER__TRIGGERS__EVERY_S="3").start()
    items = interactions(20)
    await produce(kafka_settings, Topic.INTERACTIONS, batches(items), key="sentiment")
    await produce(kafka_settings, Topic.FEEDBACK, batches(feedback_for(items)), key="sentiment")
    worker.wait_value("driftloop_worker_events_total", 20, kind="joined")
    # Nothing more arrives: only the worker's clock can fire the schedule now.
    records = await consume_until(kafka_settings, Topic.TRAINING_REQUESTS, 1, timeout=60)
    request = decode(records[0].value, TrainingRequest)
    assert request.trigger.value == "schedule" and len(request.examples) == 20
    assert "every 3 s" in request.reason
    assert worker.stop() == 0


async def test_kill_9_at_random_moments_loses_nothing_and_counts_nothing_twice(
        kafka_settings, worker_factory):
    # The write-gap hook spreads each step's state records out in time, so the kills land
    # in the middle of a step's writes (streams/redo.py) as often as between steps.
    env = {**FAST_ENV, WRITE_GAP_ENV: "0.1",
           "DRIFTLOOP_WORKER__BUFFER__BATCH_SIZE": "512"}  # one request takes all 300 labels
    rng = random.Random()
    seed = rng.randrange(10**6)
    rng.seed(seed)
    items = interactions(3_000)
    labelled = items[::10]

    async def traffic() -> None:
        # Every other round the labels come first: they wait in the join window, and the
        # interactions' step joins them and deletes their buckets (the write a torn step lost).
        for n in range(0, 3_000, 50):
            sends = [(Topic.INTERACTIONS, batches(items[n:n + 50])),
                     (Topic.FEEDBACK, batches(feedback_for(labelled[n // 10:(n + 50) // 10])))]
            for topic, records in sends[::-1] if n % 100 else sends:
                await produce(kafka_settings, topic, records, key="sentiment")
            await asyncio.sleep(0.5)  # the pace of the traffic, not a synchronisation

    worker = worker_factory(**env).start()
    sending = asyncio.create_task(traffic())
    for _ in range(4):
        await asyncio.to_thread(worker.wait_value, "driftloop_worker_messages_handled_total", 1,
                                timeout=120)
        # the fault schedule: a uniformly random moment of the worker's work
        await asyncio.sleep(rng.uniform(0.0, 2.0))
        worker.kill()
        worker = worker_factory(**env).start()
        worker.restart_on_stall = True  # production runs the worker under a supervisor
    await sending
    worker.wait_value("driftloop_worker_events_total", 3_000, timeout=180, kind="interactions")
    worker.wait_value("driftloop_worker_events_total", 300, timeout=60, kind="feedback")
    why = f"random seed {seed}"
    assert worker.value("driftloop_worker_events_total", kind="interactions") == 3_000, why
    assert worker.value("driftloop_worker_events_total", kind="feedback") == 300, why
    assert worker.value("driftloop_worker_events_total", kind="joined") == 300, why
    assert worker.value("driftloop_drift_monitored_events_total", domain="news") == 3_000, why
    assert worker.value("driftloop_drift_alerts_total") == 0, why
    # Every label reached the replay buffer once: the requests sent during the run and the
    # manual one at the end carry each label as a new example exactly once (a request sent
    # again by a step applied again has the same id, as the learner expects).
    from driftloop.schemas.commands import manual_trigger
    from driftloop.streams.control import send_commands
    await send_commands(kafka_settings, [manual_trigger("sentiment")])

    def manual_seen(records: list) -> bool:
        return any(decode(r.value, TrainingRequest).trigger.value == "manual" for r in records)

    records = await consume_until(kafka_settings, Topic.TRAINING_REQUESTS, manual_seen,
                                  timeout=30)
    requests = {r.id: r for r in (decode(rec.value, TrainingRequest) for rec in records)}
    new = [e.interaction_id for r in requests.values() for e in r.examples
           if e.origin.value == "new"]
    assert sorted(new) == sorted(x.id for x in labelled), why
    assert worker.stop() == 0


async def test_sigterm_mid_stream_stops_gracefully_and_a_restart_counts_every_event_once(
        kafka_settings, worker_factory):
    first = worker_factory(**FAST_ENV).start()
    await produce(kafka_settings, Topic.INTERACTIONS, batches(interactions(20_000), size=250),
                  key="sentiment")
    first.wait_value("driftloop_worker_events_total", 2_000, kind="interactions")
    assert first.stop() == 0  # SIGTERM while messages are still being handled
    second = worker_factory(**FAST_ENV).start()
    second.wait_value("driftloop_worker_events_total", 20_000, kind="interactions")
    assert second.value("driftloop_worker_events_total", kind="interactions") == 20_000
    assert second.value("driftloop_drift_monitored_events_total", domain="news") == 20_000
    assert second.stop() == 0


@pytest.mark.slow
async def test_a_second_worker_takes_over_partitions_with_their_state(kafka_settings,
                                                                      worker_factory):
    tasks = [task_on(p) for p in range(6)]  # names whose keys cover all six partitions
    first = worker_factory(**FAST_ENV).start()
    for task in tasks:  # keyed by task, as every producer must
        await produce(kafka_settings, Topic.INTERACTIONS,
                      batches(interactions(1_000, task=task)), key=task)
    first.wait_value("driftloop_worker_events_total", 6_000, kind="interactions")
    second = worker_factory(**FAST_ENV).start()
    # Wait for the group to settle: each worker owns some partitions.
    second.wait_value("driftloop_worker_assigned_partitions", 1, timeout=60)
    for task in tasks:
        await produce(kafka_settings, Topic.INTERACTIONS,
                      batches(interactions(1_000, start=1_000, task=task)), key=task)

    def count(worker, task: str) -> float:
        # A worker the stall watchdog ended (exit 75) owns nothing any more: it counts 0.
        try:
            return worker.value("driftloop_worker_events_total", task=task, kind="interactions")
        except OSError:
            return 0.0

    def owners_complete(_: str) -> bool:
        return all(max(count(w, t) for w in (first, second)) >= 2_000 for t in tasks)

    second.wait_for(owners_complete, 60, "every task at 2,000 events on its owner")
    for task in tasks:  # the owner's count is exact: history came with the partition
        assert max(count(w, task) for w in (first, second)) == 2_000
        # Only the owner reports it: not the first worker's stale copy of a partition it
        # lost, nor either worker's standby copy.
        assert sorted(count(w, task) for w in (first, second)) == [0.0, 2_000], task
    assert second.value("driftloop_worker_messages_handled_total") > 0
    for worker in (first, second):
        assert worker.stop() in (0, STALL_EXIT_CODE)
