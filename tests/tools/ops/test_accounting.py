"""The accounting check against topics on the real broker: what it counts and what it flags."""

from __future__ import annotations

import orjson
import pytest
from aiokafka.structs import ConsumerRecord
from kafka_helpers import produce

from driftloop.schemas import Interaction, ModelVersion, TrainingRequest, encode, encode_batch
from driftloop.schemas.commands import COMMAND_HEADER, manual_trigger
from driftloop.streams.commands import clock_tick
from driftloop.streams.control import send_commands
from driftloop.streams.ingest import decode_message
from driftloop.streams.partitioning import TaskPartitions, task_partition
from driftloop.tools.bench.faults.rig import Traffic
from driftloop.tools.ops.accounting import (
    Ledger,
    count_topics,
    request_positions,
    tally_dead_letters,
    tally_decisions,
    tally_inputs,
)

pytestmark = pytest.mark.kafka



def interactions(n: int, start: int = 0) -> list[Interaction]:
    return [Interaction(id=f"i-{start + i}", ts=1.0 + i, task="t", model_version="v1",
                        input=f"text {start + i}", prediction="positive",
                        scores={"confidence": 0.9}) for i in range(n)]


def poisoned_envelope() -> bytes:
    envelope = orjson.loads(encode_batch(interactions(5, start=100)))
    envelope["events"][2]["scores"] = {"confidence": "very"}
    return orjson.dumps(envelope)


def version(version_id: str, request_id: str, status: str = "promoted") -> ModelVersion:
    return ModelVersion(version_id=version_id, ts=1.0, task="t", base_model="minilm",
                        adapter_uri="file:///store/x", sha256="0" * 64, size_bytes=1,
                        training_request_id=request_id, status=status)


async def test_events_envelopes_poison_and_dead_letters_are_counted_once(kafka_settings) -> None:  # type: ignore[no-untyped-def]
    topic = kafka_settings.kafka.topic("interactions")
    messages = [encode_batch(interactions(10)), b"\xff not json", poisoned_envelope(),
                encode(interactions(1, start=200)[0])]
    await produce(kafka_settings, "interactions", messages, key="t")
    # The dead letters a worker writes for offsets 1 and 2; offset 1's twice, as a worker
    # killed before committing would on redelivery.
    letters = [d for offset, raw in enumerate(messages)
               for d in decode_message(raw, Interaction, topic=topic,
                                       partition=task_partition("t", 6),
                                       offset=offset).dead_letters]
    assert len(letters) == 2
    await produce(kafka_settings, "dead-letters", [encode(d) for d in [*letters, letters[0]]])
    # Commands ride on feedback (operator triggers, the worker's clock): not input events.
    await send_commands(kafka_settings, [clock_tick("t"), manual_trigger("t")])

    ledger = await count_topics(kafka_settings)
    assert ledger.produced == {"interactions": 10 + 1 + 5 + 1, "feedback": 0}
    assert ledger.rejected_by_codec == 2
    assert ledger.dead_lettered == 2 and ledger.dead_letters_redelivered == 1

    ledger.processed = {"interactions": 15, "feedback": 0}  # what the worker would say
    assert ledger.ok and ledger.lost == 0 and not ledger.problems()
    ledger.processed = {"interactions": 14, "feedback": 0}
    assert ledger.lost == 1 and not ledger.ok
    assert ledger.problems() == ["1 events neither processed nor dead-lettered"]
    ledger.processed = {"interactions": 16, "feedback": 0}
    assert ledger.double_counted == 1 and not ledger.ok


async def test_requests_need_one_decision_and_versions_may_not_repeat(kafka_settings) -> None:  # type: ignore[no-untyped-def]
    requests = [TrainingRequest(id=f"r-{n}", ts=1.0, task="t", trigger="manual",
                                examples=[{"input": "a", "target": "b"}]) for n in range(3)]
    await produce(kafka_settings, "training-requests", [encode(r) for r in requests],
                  partition=0)
    # r-0 decided, r-1 decided twice (a duplicate), r-2 dead-lettered by the learner
    await produce(kafka_settings, "model-versions",
                  [encode(version("v0", "r-0")), encode(version("v1", "r-1", "rejected")),
                   encode(version("v1", "r-1", "rejected"))])
    topic = kafka_settings.kafka.topic("training-requests")
    letter = decode_message(b"{}", TrainingRequest, topic=topic, partition=0,
                            offset=2).dead_letters[0]
    await produce(kafka_settings, "dead-letters", [encode(letter)])

    ledger = await count_topics(kafka_settings)
    assert ledger.training_requests == 3 and ledger.version_events == 3
    assert ledger.unanswered_requests == [] and ledger.duplicate_versions == ["v1"]
    assert not ledger.ok and "versions decided twice: v1" in ledger.problems()


async def test_requests_a_coalesced_version_superseded_are_answered(kafka_settings) -> None:  # type: ignore[no-untyped-def]
    requests = [TrainingRequest(id=f"r-{n}", ts=1.0, task="t", trigger="drift",
                                examples=[{"input": "a", "target": "b"}]) for n in range(3)]
    await produce(kafka_settings, "training-requests", [encode(r) for r in requests],
                  partition=0)
    merged = version("v2", "r-2").model_copy(update={"metadata": {"superseded": ["r-0"]}})
    await produce(kafka_settings, "model-versions", [encode(merged)])
    ledger = await count_topics(kafka_settings)
    assert ledger.unanswered_requests == ["r-1"]  # r-0 answered by the version of r-2


async def test_an_unanswered_request_is_named(kafka_settings) -> None:  # type: ignore[no-untyped-def]
    request = TrainingRequest(id="r-lonely", ts=1.0, task="t", trigger="manual",
                              examples=[{"input": "a", "target": "b"}])
    await produce(kafka_settings, "training-requests", [encode(request)])
    ledger = await count_topics(kafka_settings)
    assert ledger.unanswered_requests == ["r-lonely"] and not ledger.ok


def test_traffic_poison_is_what_the_codec_rejects() -> None:
    traffic = Traffic(events=500, batch=10, poison_every=10)
    out = [decode_message(raw, Interaction, topic="x", partition=0, offset=n)
           for n, raw in enumerate(traffic.messages())]
    assert sum(len(o.events) + len(o.dead_letters) for o in out) == 500 - 2 * 9
    assert sum(len(o.dead_letters) for o in out) == 5
    assert len({d.reason for o in out for d in o.dead_letters}) == 2  # two kinds of poison


def test_an_empty_ledger_is_balanced() -> None:
    assert Ledger().ok and Ledger().lost == 0


async def test_events_off_their_partition_are_expected_dead_letters_and_commands_never(
        kafka_settings) -> None:  # type: ignore[no-untyped-def]
    topic = kafka_settings.kafka.topic("interactions")
    wrong = (task_partition("t", 6) + 1) % 6
    await produce(kafka_settings, "interactions", [encode_batch(interactions(3))], key="t",
                  partition=wrong)
    out = decode_message(encode_batch(interactions(3)), Interaction, topic=topic,
                         partition=wrong, offset=0, owners=TaskPartitions(6))
    assert {d.reason for d in out.dead_letters} == {"wrong_partition"}
    # A worker that refused a command (wrong partition, unreadable) dead-letters it too: that
    # letter is no input event's and must not unbalance the ledger.
    await send_commands(kafka_settings, [manual_trigger("t")])
    command = decode_message(b"{}", Interaction, topic=kafka_settings.kafka.topic("feedback"),
                             partition=task_partition("t", 6), offset=0).dead_letters[0]
    await produce(kafka_settings, "dead-letters", [encode(d) for d in [*out.dead_letters,
                                                                        command]])

    ledger = await count_topics(kafka_settings)
    assert ledger.produced == {"interactions": 3, "feedback": 0}
    assert ledger.rejected_by_codec == 3 and ledger.dead_lettered == 3
    ledger.processed = {"interactions": 0, "feedback": 0}
    assert ledger.ok, ledger.problems()


def record(topic: str, offset: int, value: bytes | None, *, partition: int = 0,
           headers: tuple[tuple[str, bytes], ...] = ()) -> ConsumerRecord:
    """A record as read from a topic, for the tallies (no broker needed)."""
    return ConsumerRecord(topic, partition, offset, 0, 0, None, value, None, 0,
                          len(value or b""), headers)


def test_the_input_tally_counts_envelope_events_poison_and_leaves_commands_out() -> None:
    messages = [encode_batch(interactions(4)), b"\xff not json", poisoned_envelope()]
    records = [record("p.interactions", n, raw) for n, raw in enumerate(messages)]
    records.append(record("p.interactions", 3, b"{}", headers=((COMMAND_HEADER, b"tick"),)))
    tally = tally_inputs(records, Interaction, owners=None)
    assert tally.produced == 4 + 1 + 5
    assert tally.expected_dead == {("p.interactions", 0, 1, None), ("p.interactions", 0, 2, 2)}
    assert tally.commands == {("p.interactions", 0, 3)}


def test_the_dead_letter_tally_sorts_letters_by_source_and_counts_redeliveries() -> None:
    def letter(topic: str, offset: int, index: int | None = None) -> bytes:
        [dead] = decode_message(b"\xff", Interaction, topic=topic, partition=0,
                                offset=offset).dead_letters
        return encode(dead.model_copy(update={"event_index": index}))

    values = [letter("p.interactions", 1), letter("p.interactions", 1),
              letter("p.interactions", 2, index=3), letter("p.training-requests", 7),
              letter("p.feedback", 9), letter("elsewhere", 0), b"not a dead letter"]
    tally = tally_dead_letters([record("p.dead-letters", n, v) for n, v in enumerate(values)],
                               inputs={"p.interactions", "p.feedback"},
                               requests_topic="p.training-requests",
                               commands={("p.feedback", 0, 9)})
    assert tally.seen == {("p.interactions", 0, 1, None): 2, ("p.interactions", 0, 2, 3): 1}
    assert tally.dead_requests == {(0, 7)}


def test_requests_and_decisions_are_read_by_id() -> None:
    request = TrainingRequest(id="r-1", ts=1.0, task="t", trigger="manual",
                              examples=[{"input": "a", "target": "b"}])
    positions = request_positions([record("p.tr", 0, encode(request)),
                                   record("p.tr", 1, b"{}", partition=2)])
    assert positions == {"r-1": (0, 0), "<undecodable 2@1>": (2, 1)}
    versions = [version("v1", "r-1"), version("v1", "r-1"), version("v2", "r-2", "candidate"),
                version("v3", "r-3", "rejected").model_copy(update={"training_request_id": None})]
    decisions = tally_decisions([record("p.mv", n, encode(v)) for n, v in enumerate(versions)]
                                + [record("p.mv", 9, b"junk")])
    assert decisions.events == 4 and decisions.decided == {"v1": 2, "v3": 1}
    assert decisions.answered == {"r-1"}
