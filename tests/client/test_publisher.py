"""The Publisher on the real broker: events keyed by task, packed in envelopes the worker
reads, each under the message limit; other events refused with a reason."""

from __future__ import annotations

import pytest
from kafka_helpers import consume_until

from driftloop.client import Publisher, PublishError, envelopes
from driftloop.schemas import (
    DriftAlert,
    Feedback,
    Interaction,
    Topic,
    decode_batch,
)

pytestmark = [pytest.mark.kafka]

def interaction(n: int, task: str) -> Interaction:
    return Interaction(id=f"i{n}", ts=float(n), task=task, model_version="v1",
                       input=f"text {n}", prediction="positive")


async def test_events_are_keyed_by_task_and_packed_in_envelopes(kafka_settings) -> None:  # type: ignore[no-untyped-def]
    events = [interaction(n, "a" if n % 3 else "b") for n in range(7)]
    events += [Feedback(id="f1", interaction_id="i1", ts=2.0, task="a", kind="label",
                        value="negative")]
    async with Publisher(kafka_settings, max_events=2) as publisher:
        sent = await publisher.send(events)
    # a: 4 interactions in 2 envelopes; b: 3 in 2; feedback: 1
    assert sent == 5
    records = await consume_until(kafka_settings, Topic.INTERACTIONS, 4, timeout=30)
    by_key: dict[bytes, list[str]] = {}
    for record in records:
        by_key.setdefault(record.key, []).extend(
            e.id for e in decode_batch(record.value, Interaction))
    assert by_key == {b"a": ["i1", "i2", "i4", "i5"], b"b": ["i0", "i3", "i6"]}
    [feedback] = await consume_until(kafka_settings, Topic.FEEDBACK, 1, timeout=30)
    assert feedback.key == b"a" and decode_batch(feedback.value, Feedback)[0].id == "f1"


def test_an_envelope_too_large_is_split_and_an_event_too_large_refused() -> None:
    events = [interaction(n, "a").model_copy(update={"input": "x" * 400}) for n in range(10)]
    packed = envelopes(events, max_events=10, max_bytes=2_000)
    assert len(packed) > 1 and all(len(raw) <= 2_000 for _, raw in packed)
    assert sum(len(decode_batch(raw, Interaction)) for _, raw in packed) == 10
    with pytest.raises(PublishError, match="alone is"):
        envelopes(events[:1], max_bytes=100)


async def test_only_service_events_are_published(kafka_settings) -> None:  # type: ignore[no-untyped-def]
    alert = DriftAlert(id="a1", ts=1.0, task="a", signal="embedding", detector="adwin")
    async with Publisher(kafka_settings) as publisher:
        with pytest.raises(PublishError, match="DriftAlert is not published by services"):
            await publisher.send([alert])
