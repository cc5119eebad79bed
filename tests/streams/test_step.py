"""Step: one source record applied to its task, effects sent before any table is written,
dead letters for what cannot be applied, and skipped records applied first.

Against stand-ins for the Faust topics and tables (worker_fakes.py); the same step runs under
Faust against the real broker in test_agents.py and test_agents_bad_input.py.
"""

from __future__ import annotations

import asyncio

from worker_fakes import dict_tables, fake_topics, record

from driftloop.schemas import (
    DeadLetter,
    Feedback,
    Interaction,
    ModelVersion,
    Topic,
    TrainingRequest,
    decode,
)
from driftloop.schemas import encode as encode_event
from driftloop.schemas.commands import COMMAND_HEADER, encode_command, manual_trigger
from driftloop.schemas.settings import Settings
from driftloop.schemas.signing import version_signature_ok
from driftloop.streams.liveness import Liveness
from driftloop.streams.ownership import Ownership
from driftloop.streams.partitioning import task_partition
from driftloop.streams.pipeline import Effects
from driftloop.streams.source_order import SourceOrder
from driftloop.streams.step import Step

SETTINGS = Settings(worker={"triggers": {"min_examples": 1, "cooldown_s": 0,
                                         "regime_growth": None}})
IX, FB = SETTINGS.kafka.topic(Topic.INTERACTIONS), SETTINGS.kafka.topic(Topic.FEEDBACK)
HOME = task_partition("sentiment", 6)
OTHER = (HOME + 1) % 6


class ReadBack(SourceOrder):
    """Skipped records come back from this list instead of a broker."""

    stored: list = []

    async def missed(self, topic, partition, first, end):  # type: ignore[no-untyped-def]
        return [r for r in self.stored if first <= r.offset < end]


def step_of(on_send=None) -> Step:  # type: ignore[no-untyped-def]
    order = ReadBack(SETTINGS, group_id="driftloop-worker")
    for topic in (IX, FB):
        for partition in range(6):
            order.start(topic, partition, 0)
    return Step(SETTINGS, fake_topics(SETTINGS, on_send), dict_tables(SETTINGS),
                Ownership(None, SETTINGS), order, Liveness(), consumer_id="worker-1")


def interaction(n: int, confidence: float = 0.9) -> bytes:
    return encode_event(Interaction(id=f"i{n}", ts=n, task="sentiment", model_version="v1",
                                    input=f"text {n}", prediction="pos",
                                    scores={"confidence": confidence}))


def command(**kwargs) -> dict:  # type: ignore[no-untyped-def]
    key, body, headers = encode_command(manual_trigger("sentiment", **kwargs))
    return {"key": key, "value": body, "headers": headers}


async def test_a_joined_label_becomes_an_example_a_command_sends_it():
    step = step_of()
    tables = step.tables
    await step.handle(record(IX, HOME, 0, interaction(0)))
    await step.handle(record(FB, HOME, 0, encode_event(Feedback(
        id="f0", interaction_id="i0", ts=1, task="sentiment", kind="label", value="neg"))))
    assert tables.states["sentiment"].counters["joined"] == 1
    assert tables.buffers["sentiment"].new_count == 1 and "sentiment" in tables.canaries
    trigger = command(reason="now")
    await step.handle(record(FB, HOME, 1, **trigger))
    [(key, value, _)] = step.topics[Topic.TRAINING_REQUESTS].sent
    request = decode(value, TrainingRequest)
    assert key == b"sentiment" and request.trigger.value == "manual"
    assert [e.interaction_id for e in request.examples] == ["i0"]
    assert step.liveness.messages == 3 and step.order.expected(FB, HOME) == 2
    await step.handle(record(FB, HOME, 1, **trigger))  # redelivered: applied once
    assert len(step.topics[Topic.TRAINING_REQUESTS].sent) == 1


async def test_effects_are_sent_before_the_tables_are_written():
    seen: list[tuple[str, bool]] = []
    step = step_of(lambda name: seen.append((name, "sentiment" in step.tables.states)))
    await step.handle(record(IX, HOME, 0, interaction(0, confidence=0.55)))  # asks a label
    assert seen == [(SETTINGS.kafka.topic(Topic.LABEL_REQUESTS), False)]
    assert "sentiment" in step.tables.states and "sentiment" in step.tables.buffers


async def test_what_cannot_be_applied_is_dead_lettered_and_counted():
    step = step_of()
    await step.handle(record(IX, HOME, 0, b"{not json"))
    await step.handle(record(IX, OTHER, 0, interaction(0)))  # off the task's partition
    await step.handle(record(FB, OTHER, 0, **command()))
    await step.handle(record(FB, HOME, 0, b'{"id": 7}', headers=[(COMMAND_HEADER, b"x")]))
    letters = [decode(value, DeadLetter) for _, value, _ in step.topics[Topic.DEAD_LETTERS].sent]
    assert [(d.source_topic, d.reason) for d in letters] == [
        (IX, "invalid_json"), (IX, "wrong_partition"), (FB, "wrong_partition"),
        (FB, "invalid_command")]
    assert all(d.consumer == "worker-1" for d in letters)
    assert step.tables.dead_counts == {
        f"{IX}:{HOME}|invalid_json": 1, f"{IX}:{OTHER}|wrong_partition": 1,
        f"{FB}:{OTHER}|wrong_partition": 1, f"{FB}:{HOME}|invalid_command": 1}
    assert step.tables.states == {} and step.liveness.messages == 4


async def test_records_faust_skipped_are_applied_first_in_order():
    step = step_of()
    skipped = [record(IX, HOME, n, interaction(n)) for n in range(2)]
    step.order.stored = skipped
    await step.handle(record(IX, HOME, 2, interaction(2)))
    state = step.tables.states["sentiment"]
    assert state.counters["interactions"] == 3 and state.applied == {f"{IX}:{HOME}": 2}
    assert step.order.expected(IX, HOME) == 3 and step.liveness.messages == 3


def test_a_signing_worker_signs_the_canary_decisions_it_publishes():
    key = "a shared key of the deployment"
    settings = Settings(trust={"signing_key": key})
    topics = fake_topics(settings)
    step = Step(settings, topics, dict_tables(settings), Ownership(None, settings),
                SourceOrder(settings, group_id="driftloop-worker"), Liveness(),
                consumer_id="worker-1")
    decision = ModelVersion(version_id="v2", ts=1.0, task="sentiment", base_model="m",
                            adapter_uri="file:///a/" + "0" * 64, sha256="0" * 64,
                            size_bytes=1, status="promoted")
    asyncio.run(step._publish("sentiment", Effects(), [decision]))
    [value] = [value for _, value, _ in topics[Topic.MODEL_VERSIONS].sent]
    assert version_signature_ok(decode(value, ModelVersion), key)
