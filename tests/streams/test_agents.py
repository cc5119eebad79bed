"""The worker end to end on the real broker, run as ``driftloop worker`` in a subprocess."""

from __future__ import annotations

import base64

import orjson
import pytest
from conftest import FAST_ENV, batches, feedback_for, interactions
from kafka_helpers import consume_until, produce

from driftloop.schemas import DeadLetter, Topic, TrainingRequest, decode, encode

pytestmark = [pytest.mark.kafka]


async def test_feedback_before_its_interaction_is_joined_and_poison_is_dead_lettered(
        kafka_settings, worker_factory):
    worker = worker_factory(**FAST_ENV).start()
    items = interactions(40)
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
    from driftloop.streams.commands import manual_trigger
    from driftloop.streams.control import send_commands
    await send_commands(kafka_settings, [manual_trigger("sentiment", reason="test")])
    records = await consume_until(kafka_settings, Topic.TRAINING_REQUESTS, 1, timeout=30)
    request = decode(records[0].value, TrainingRequest)
    assert request.trigger.value == "manual" and request.id == "tr-sentiment-000001"
    assert len(request.examples) == 40
    assert worker.stop() == 0
