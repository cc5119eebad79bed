"""EventBatcher on the real broker: one event goes out promptly, a burst as envelopes."""

from __future__ import annotations

import time

import pytest
from kafka_helpers import consume_until

from driftloop.client.kafka import new_producer
from driftloop.learner.serving import EventBatcher
from driftloop.schemas import Interaction, Topic, decode_batch

pytestmark = pytest.mark.kafka


def interaction(i: int, task: str = "sentiment") -> Interaction:
    return Interaction(id=f"i-{i}", ts=1.0 + i, task=task, model_version="v1", input=f"text {i}",
                       prediction="positive", embedding=[0.5] * 8)


async def test_a_lone_event_is_sent_at_once_and_a_burst_in_envelopes(kafka_settings) -> None:  # type: ignore[no-untyped-def]
    async with new_producer(kafka_settings) as producer:
        sent: list[tuple[int, int]] = []
        batcher = EventBatcher(producer=producer, topic=kafka_settings.kafka.topic(
            Topic.INTERACTIONS), max_events=50, linger=0.002,
            on_sent=lambda events, messages: sent.append((events, messages)))
        await batcher.start()
        try:
            started = time.monotonic()
            batcher.submit(interaction(0))
            [record] = await consume_until(kafka_settings, Topic.INTERACTIONS, 1)
            assert time.monotonic() - started < 5.0
            assert [e.id for e in decode_batch(record.value, Interaction)] == ["i-0"]

            for i in range(1, 301):
                batcher.submit(interaction(i, task="sentiment" if i % 2 else "topics"))
            records = await consume_until(kafka_settings, Topic.INTERACTIONS, lambda rs: sum(
                len(decode_batch(r.value, Interaction)) for r in rs) >= 301)
            events = [e for r in records for e in decode_batch(r.value, Interaction)]
            assert sorted(e.id for e in events) == sorted(f"i-{i}" for i in range(301))
            assert len(records) < 301 // 2  # envelopes, not one message per event
            # An envelope holds one task's events and is keyed by it.
            for record in records:
                assert {e.task for e in decode_batch(record.value, Interaction)} == {
                    record.key.decode()}
            assert sum(events for events, _ in sent) == 301 and batcher.failed == 0
        finally:
            await batcher.stop()
    assert not batcher.running


async def test_stop_sends_what_is_queued(kafka_settings) -> None:  # type: ignore[no-untyped-def]
    async with new_producer(kafka_settings) as producer:
        batcher = EventBatcher(producer=producer,
                               topic=kafka_settings.kafka.topic(Topic.INTERACTIONS), linger=0.05)
        await batcher.start()
        for i in range(20):
            batcher.submit(interaction(i))
        await batcher.stop()
        await batcher.stop()  # idempotent
    records = await consume_until(kafka_settings, Topic.INTERACTIONS, lambda rs: sum(
        len(decode_batch(r.value, Interaction)) for r in rs) >= 20)
    assert sum(len(decode_batch(r.value, Interaction)) for r in records) == 20


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"max_events": 0}, "max_events"), ({"linger": -1.0}, "linger")])
def test_bad_arguments_fail_at_construction(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        EventBatcher(producer=None, topic="t", **kwargs)


async def test_start_without_a_producer_is_refused() -> None:
    with pytest.raises(RuntimeError, match="no producer"):
        await EventBatcher(producer=None, topic="t").start()
