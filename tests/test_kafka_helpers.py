"""The test helpers other tests lean on: produce, consume_until, topic names, free ports."""

from __future__ import annotations

import time

import pytest
from kafka_helpers import consume_until, free_port_pair, produce, resolve_topic

from driftloop.schemas import Topic
from driftloop.schemas.settings import Settings


async def test_produce_then_consume_a_count_keeps_order_and_key(kafka_settings) -> None:
    values = [f"v{i}" for i in range(50)]
    assert await produce(kafka_settings, Topic.FEEDBACK, values, key="task-a") == 50
    records = await consume_until(kafka_settings, Topic.FEEDBACK, 50)
    # One key, so one partition: the order is the order sent.
    assert [r.value.decode() for r in records] == values
    assert {r.key for r in records} == {b"task-a"}


async def test_consume_until_a_predicate(kafka_settings) -> None:
    await produce(kafka_settings, "label-requests", [b"a", b"stop", b"b"], partition=0)
    records = await consume_until(kafka_settings, Topic.LABEL_REQUESTS,
                                  lambda seen: any(r.value == b"stop" for r in seen))
    assert b"stop" in [r.value for r in records]


async def test_consume_until_fails_at_its_deadline_saying_what_it_saw(kafka_settings) -> None:
    await produce(kafka_settings, Topic.DRIFT_ALERTS, [b"only one"])
    began = time.monotonic()
    with pytest.raises(TimeoutError, match=r"drift-alerts not met after 0\.5 s \(1 records"):
        await consume_until(kafka_settings, Topic.DRIFT_ALERTS, 2, timeout=0.5)
    assert time.monotonic() - began < 5


def test_topic_names_resolve_under_the_prefix_and_others_stay() -> None:
    settings = Settings(kafka={"topic_prefix": "p7."})
    assert resolve_topic(settings, Topic.FEEDBACK) == "p7.feedback"
    assert resolve_topic(settings, "feedback") == "p7.feedback"
    assert resolve_topic(settings, "my-app-changelog") == "my-app-changelog"


def test_free_port_pairs_are_distinct() -> None:
    first, second = free_port_pair()
    assert first != second
