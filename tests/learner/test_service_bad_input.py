"""Adversarial training requests on the real broker: the learner dead-letters each one with a
reason, commits past it and keeps consuming; nothing is trained, nothing crashes."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from aiokafka import TopicPartition
from kafka_helpers import consume_until, produce
from learner_helpers import sentiment_request

from driftloop.client.kafka import new_consumer, topic_partitions
from driftloop.learner.group import consumer_group
from driftloop.learner.service import LearnerService
from driftloop.learner.training.update import IncrementalUpdater
from driftloop.schemas import DeadLetter, Feedback, Topic, decode, encode

pytestmark = [pytest.mark.kafka]


async def test_adversarial_requests_become_dead_letters_and_are_committed(kafka_settings):
    request = orjson.loads(encode(sentiment_request("r1", n=4)))
    adversarial = [
        (b"{not json", "invalid_json"),
        (None, "empty"),
        (b"\xff\xfe{}", "invalid_utf8"),
        (b"[" * 10_000, "invalid_json"),
        (encode(Feedback(id="f", interaction_id="i", ts=0, task="sentiment", kind="label",
                         value="x")), "invalid_event"),
        (orjson.dumps({**request, "examples": [{"input": 3, "target": None}]}),
         "invalid_event"),
        (orjson.dumps({**request, "examples": "all of them"}), "invalid_event"),
        (encode(sentiment_request("r2", n=4, parent="v-that-never-was")),
         "untrainable_request"),
    ]
    for value, _ in adversarial:
        await produce(kafka_settings, Topic.TRAINING_REQUESTS, [value], key="sentiment")
    service = LearnerService(kafka_settings, updater=IncrementalUpdater(kafka_settings),
                             max_requests=len(adversarial))
    stats = await asyncio.wait_for(service.run(), 60)
    assert stats.dead_letters == len(adversarial) and stats.published == []
    letters = [decode(r.value, DeadLetter) for r in await consume_until(
        kafka_settings, Topic.DEAD_LETTERS, len(adversarial), timeout=30)]
    assert sorted(d.reason for d in letters) == sorted(r for _, r in adversarial)
    assert all(d.error for d in letters)
    assert next(d for d in letters if d.reason == "untrainable_request").error.endswith(
        "is not in the registry")
    # Every offset was committed: a restarted learner would not see them again.
    topic = kafka_settings.kafka.topic(Topic.TRAINING_REQUESTS)
    async with new_consumer(kafka_settings, group_id=consumer_group(kafka_settings)) as consumer:
        partitions = (await topic_partitions(kafka_settings, topic))[topic]
        committed = 0
        for partition in partitions:
            committed += await consumer.committed(TopicPartition(topic, partition)) or 0
        assert committed == len(adversarial)


class _BrokenUpdater(IncrementalUpdater):
    """Training code that trips over data the contract let through."""

    def update(self, request, versions):  # type: ignore[no-untyped-def,override]
        raise ValueError(f"cannot tokenize the examples of {request.id}")


async def test_a_request_that_breaks_training_is_dead_lettered_not_retried_forever(
        kafka_settings):
    await produce(kafka_settings, Topic.TRAINING_REQUESTS,
                  [encode(sentiment_request("r-breaks", n=4)), b"{not json"], key="sentiment")
    service = LearnerService(kafka_settings, updater=_BrokenUpdater(kafka_settings),
                             max_requests=2)
    stats = await asyncio.wait_for(service.run(), 60)
    assert stats.dead_letters == 2  # and the learner went on to the next record
    letters = [decode(r.value, DeadLetter) for r in await consume_until(
        kafka_settings, Topic.DEAD_LETTERS, 2, timeout=30)]
    broken = next(d for d in letters if d.reason == "untrainable_request")
    assert broken.error == "ValueError: cannot tokenize the examples of r-breaks"
