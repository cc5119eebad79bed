"""Adversarial records on the real broker: the worker survives, dead-letters each with a reason,
counts it, and goes on with the good events behind them."""

from __future__ import annotations

import base64

import orjson
import pytest
from kafka_helpers import consume_until, produce
from monitoring_names import assert_serves
from stream_helpers import FAST_ENV, interactions, task_on

from driftloop.client.kafka import new_producer
from driftloop.schemas import DeadLetter, Interaction, Topic, decode, encode, encode_batch
from driftloop.schemas.codec import DEFAULT_MAX_BYTES
from driftloop.schemas.commands import COMMAND_HEADER, encode_command, manual_trigger

pytestmark = [pytest.mark.kafka]


async def test_adversarial_records_are_dead_lettered_and_the_worker_goes_on(
        kafka_settings, worker_factory):
    worker = worker_factory(**FAST_ENV).start()
    good = interactions(3)
    oversized = orjson.dumps({**orjson.loads(encode(good[0])),
                              "input": "x" * (DEFAULT_MAX_BYTES + 1)})
    wrong_types = orjson.dumps({**orjson.loads(encode(good[0])), "ts": "yesterday",
                                "scores": {"confidence": "high"}, "embedding": "0.1,0.2"})
    all_bad_batch = orjson.dumps({"schema_name": "driftloop.batch", "schema_version": 1,
                                  "events": [1, None, {"id": []}]})
    adversarial = [
        (None, "empty"),                               # a tombstone
        (oversized, "too_large"),                      # over the 1 MiB of one event
        (wrong_types, "invalid_event"),
        (b'{"id": "\\ud800"}', "invalid_json"),            # an escaped lone surrogate
        (b"[" * 50_000 + b"]" * 50_000, "invalid_json"),     # nesting past any parser
        ('{"input": "café"}'.encode("utf-16"), "invalid_utf8"),
    ]
    for value, _ in adversarial:
        await produce(kafka_settings, Topic.INTERACTIONS, [value], key="sentiment")
    await produce(kafka_settings, Topic.INTERACTIONS, [all_bad_batch], key="sentiment")
    # A command whose task is not a name crashed the agent (and so the worker) before.
    async with new_producer(kafka_settings) as producer:
        for body in (b'{"id": "c1", "task": ["sentiment"], "kind": "trigger"}',
                     b'{"id": 7, "task": "sentiment", "kind": "trigger"}', b"\x00"):
            await producer.send_and_wait(kafka_settings.kafka.topic(Topic.FEEDBACK), body,
                                         key=b"sentiment",
                                         headers=[(COMMAND_HEADER, b"trigger")])
    await produce(kafka_settings, Topic.INTERACTIONS, [encode(e) for e in good],
                  key="sentiment")
    # model-versions is the learner's log: a record there that is no version is logged,
    # counted and skipped (a worker does not dead-letter another component's log).
    await produce(kafka_settings, Topic.MODEL_VERSIONS, [b"{not json", None], key="sentiment")

    worker.wait_value("driftloop_worker_events_total", 3, task="sentiment", kind="interactions")
    expected = len(adversarial) + 3 + 3  # singles, the batch's three events, the commands
    worker.wait_value("driftloop_dead_letters_total", expected, timeout=30)
    letters = [decode(r.value, DeadLetter) for r in
               await consume_until(kafka_settings, Topic.DEAD_LETTERS, expected, timeout=30)]
    reasons = sorted(d.reason for d in letters)
    assert reasons == sorted([r for _, r in adversarial] + ["invalid_event"] * 3
                             + ["invalid_command"] * 3)
    assert all(d.error for d in letters)
    assert worker.value("driftloop_dead_letters_total") == expected
    worker.wait_value("driftloop_worker_unreadable_model_versions_total", 2)
    # the live page serves what the shipped dashboard and alert rules read
    assert_serves(worker.metrics(), "worker")
    assert worker.proc.poll() is None
    assert worker.stop() == 0


async def test_events_and_commands_off_their_tasks_partition_are_dead_lettered(
        kafka_settings, worker_factory):
    worker = worker_factory(**FAST_ENV).start()
    home, stranger = task_on(0), task_on(3)  # their keys go to partitions 0 and 3 of 6
    # A batch keyed by its first task but holding another task's events too.
    mixed = interactions(3, task=home) + interactions(2, start=3, task=stranger)
    await produce(kafka_settings, Topic.INTERACTIONS, [encode_batch(mixed)], key=home)
    # A producer that chose the partition itself (or keyed by something else).
    astray = encode(interactions(1, start=5, task=stranger)[0])
    await produce(kafka_settings, Topic.INTERACTIONS, [astray], key=stranger, partition=0)
    key, body, headers = encode_command(manual_trigger(stranger, id="c-astray"))
    async with new_producer(kafka_settings) as producer:
        await producer.send_and_wait(kafka_settings.kafka.topic(Topic.FEEDBACK), body, key=key,
                                     headers=headers, partition=0)
    # The stranger's events keyed by it reach its own partition and are applied there.
    await produce(kafka_settings, Topic.INTERACTIONS,
                  [encode_batch(interactions(4, start=10, task=stranger))], key=stranger)

    worker.wait_value("driftloop_worker_events_total", 4, task=stranger, kind="interactions")
    worker.wait_value("driftloop_dead_letters_total", 4, reason="wrong_partition")
    letters = [decode(r.value, DeadLetter) for r in
               await consume_until(kafka_settings, Topic.DEAD_LETTERS, 4, timeout=30)]
    assert worker.value("driftloop_worker_events_total", task=home, kind="interactions") == 3
    assert worker.value("driftloop_worker_events_total", task=stranger, kind="interactions") == 4
    assert worker.value("driftloop_dead_letters_total") == 4
    assert {d.reason for d in letters} == {"wrong_partition"}
    assert all(d.partition == 0 for d in letters)
    interactions_topic = kafka_settings.kafka.topic(Topic.INTERACTIONS)
    by_index = {d.event_index: d for d in letters if d.source_topic == interactions_topic
                and d.offset == 0}
    assert sorted(by_index) == [3, 4]  # the batch's stranger events, each with its own bytes
    for index, letter in by_index.items():
        assert decode(base64.b64decode(letter.payload_b64), Interaction) == mixed[index]
        assert (f"task '{stranger}' arrived on {interactions_topic} partition 0 but belongs "
                "to partition 3 of 6") in letter.error
    [single] = [d for d in letters if d.source_topic == interactions_topic and d.offset == 1]
    assert single.event_index is None and base64.b64decode(single.payload_b64) == astray
    [command] = [d for d in letters if d.source_topic == kafka_settings.kafka.topic(
        Topic.FEEDBACK)]
    assert base64.b64decode(command.payload_b64) == body and stranger in command.error
    assert worker.stop() == 0
