"""Every event type survives a round trip through the real broker: produce, consume, decode."""

from __future__ import annotations

import base64

import pytest
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

INTERACTION = Interaction(
    id="i-1", ts=1_700_000_000.25, task="sentiment", domain="tweets", model_version="v3",
    input="the plot was thin but the acting carried it", output="positive",
    prediction="positive", label=None, embedding=[0.125, -0.5, 0.75],
    scores={"confidence": 0.81, "probabilities": {"positive": 0.81, "negative": 0.19}},
    metadata={"request_id": "r-9", "latency_ms": 12.5, "tags": ["a", "b"]},
)

# One of each of the seven event types, each on the topic it travels on.
EVENTS: list[tuple[Topic, Event]] = [
    (Topic.INTERACTIONS, INTERACTION),
    (Topic.FEEDBACK, Feedback(id="f-1", interaction_id="i-1", ts=1_700_000_001.0,
                              task="sentiment", kind="rating", value=4, source="reviewer")),
    (Topic.LABEL_REQUESTS, LabelRequest(id="l-1", ts=1_700_000_002.0, task="sentiment",
                                        domain="tweets", interaction=INTERACTION,
                                        reason="margin", priority=0.9, score=0.04)),
    (Topic.DRIFT_ALERTS, DriftAlert(id="d-1", ts=1_700_000_003.0, task="sentiment",
                                    domain="tweets", signal="embedding", detector="ADWIN",
                                    model_version="v3", events_seen=5000,
                                    statistics={"delta": 0.002, "window": 412.0,
                                                "note": "mean shift"})),
    (Topic.TRAINING_REQUESTS, TrainingRequest(
        id="tr-1", ts=1_700_000_004.0, task="sentiment", trigger="drift", reason="d-1",
        parent_version="v3", labels=["negative", "positive"],
        examples=[{"input": "awful", "target": "negative", "origin": "replay",
                   "difficulty": 0.2},
                  {"input": "fine film", "target": "positive", "weight": 2.0,
                   "domain": "tweets", "interaction_id": "i-1"}])),
    (Topic.MODEL_VERSIONS, ModelVersion(
        version_id="v4", ts=1_700_000_005.0, task="sentiment", base_model="minilm",
        parent_version="v3", adapter_uri="file:///tmp/artifacts/ab/abcd",
        sha256="ab" * 32, size_bytes=1_234_567, training_request_id="tr-1",
        metrics_before={"accuracy": 0.71}, metrics_after={"accuracy": 0.84},
        status="candidate")),
    (Topic.DEAD_LETTERS, DeadLetter(
        ts=1_700_000_006.0, source_topic="interactions", partition=2, offset=41,
        event_index=3, reason="invalid_json", error="payload is not valid JSON",
        payload_b64=base64.b64encode(b"{not json").decode(), payload_size=9,
        key_b64=base64.b64encode(b"sentiment").decode(), consumer="driftloop-worker")),
]


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
