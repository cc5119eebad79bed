"""Every event type survives a round trip through the real broker: produce, consume, decode."""

from __future__ import annotations

import pytest
from event_samples import FULL
from kafka_helpers import consume_until, produce

from driftloop.schemas import (
    EVENT_TYPES,
    DeadLetter,
    DriftAlert,
    Event,
    Feedback,
    Interaction,
    LabelRequest,
    ModelVersion,
    ServingAck,
    SiteAdapter,
    Topic,
    TrainingRequest,
    decode,
    decode_any,
    decode_batch,
    encode,
    encode_batch,
)
from driftloop.schemas.topics import TRAINING_REQUEST_MAX_BYTES

pytestmark = pytest.mark.kafka

# The topic each event type travels on (DESIGN.md, Topics).
TOPIC_OF: dict[type[Event], Topic] = {
    Interaction: Topic.INTERACTIONS,
    Feedback: Topic.FEEDBACK,
    LabelRequest: Topic.LABEL_REQUESTS,
    DriftAlert: Topic.DRIFT_ALERTS,
    TrainingRequest: Topic.TRAINING_REQUESTS,
    ModelVersion: Topic.MODEL_VERSIONS,
    DeadLetter: Topic.DEAD_LETTERS,
    ServingAck: Topic.SERVING_ACKS,
    SiteAdapter: Topic.SITE_ADAPTERS,
}
# One fully populated event of each type, unknown fields included.
EVENTS: list[tuple[Topic, Event]] = [(TOPIC_OF[type(event)], event) for event in FULL]


def test_the_list_covers_every_event_type() -> None:
    assert {type(event) for _, event in EVENTS} == set(EVENT_TYPES.values())


async def test_every_event_type_round_trips_through_kafka(kafka_settings) -> None:
    for topic, event in EVENTS:
        # Keys as DESIGN.md has them: the task, or the source topic for dead letters.
        key = event.source_topic if isinstance(event, DeadLetter) else event.task
        await produce(kafka_settings, topic, [encode(event)], key=key)
    for topic, event in EVENTS:
        [record] = await consume_until(kafka_settings, topic, 1)
        assert decode(record.value, type(event)) == event
        assert decode_any(record.value) == event
        assert record.key in (b"sentiment", b"interactions")


async def test_a_batch_envelope_round_trips_through_kafka(kafka_settings) -> None:
    feedback = [Feedback(id=f"f-{i}", interaction_id=f"i-{i}", ts=float(i), task="sentiment",
                         kind="label", value="positive" if i % 2 else "negative")
                for i in range(200)]
    await produce(kafka_settings, Topic.FEEDBACK, [encode_batch(feedback)], key="sentiment")
    [record] = await consume_until(kafka_settings, Topic.FEEDBACK, 1)
    assert decode_batch(record.value, Feedback) == feedback


async def test_a_large_training_request_fits_its_topic(kafka_settings) -> None:
    # Inline examples make training requests big: the topic and broker accept ~10 MiB.
    text = "x" * 1000
    request = TrainingRequest(id="tr-big", ts=1.0, task="sentiment", trigger="manual",
                              examples=[{"input": f"{i} {text}", "target": "positive"}
                                        for i in range(10_000)])
    raw = encode(request)
    assert 8 * 1024 * 1024 < len(raw) < TRAINING_REQUEST_MAX_BYTES
    await produce(kafka_settings, Topic.TRAINING_REQUESTS, [raw], key="sentiment")
    [record] = await consume_until(kafka_settings, Topic.TRAINING_REQUESTS, 1)
    assert decode(record.value, TrainingRequest, max_bytes=TRAINING_REQUEST_MAX_BYTES) == request
