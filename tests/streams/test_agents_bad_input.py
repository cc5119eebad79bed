"""Adversarial records on the real broker: the worker survives, dead-letters each with a reason,
counts it, and goes on with the good events behind them."""

from __future__ import annotations

import orjson
import pytest
from kafka_helpers import consume_until, produce
from stream_helpers import FAST_ENV, interactions

from driftloop.schemas import DeadLetter, Topic, decode, encode
from driftloop.schemas.codec import DEFAULT_MAX_BYTES
from driftloop.streams.commands import COMMAND_HEADER

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
    from aiokafka import AIOKafkaProducer
    producer = AIOKafkaProducer(**kafka_settings.kafka.client_kwargs(), acks="all")
    await producer.start()
    try:
        for body in (b'{"id": "c1", "task": ["sentiment"], "kind": "trigger"}',
                     b'{"id": 7, "task": "sentiment", "kind": "trigger"}', b"\x00"):
            await producer.send_and_wait(kafka_settings.kafka.topic(Topic.FEEDBACK), body,
                                         key=b"sentiment",
                                         headers=[(COMMAND_HEADER, b"trigger")])
    finally:
        await producer.stop()
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
    worker.wait_value("driftloop_worker_liveness", 2, measure="unreadable_model_versions")
    assert worker.proc.poll() is None
    assert worker.stop() == 0
