"""Every kind of bad bytes becomes a dead letter with its reason; good events go on."""

from __future__ import annotations

import base64

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from driftloop.schemas import (
    DeadLetter,
    Feedback,
    Interaction,
    decode,
    encode,
    encode_batch,
    to_dict,
)
from driftloop.schemas.commands import decode_command
from driftloop.schemas.enums import CommandKind
from driftloop.schemas.errors import CommandError
from driftloop.schemas.settings import TaskSettings, WorkerSettings
from driftloop.streams.ingest import MAX_DEAD_LETTER_PAYLOAD, decode_message
from driftloop.streams.partitioning import TaskPartitions, task_partition
from driftloop.streams.pipeline import TaskState, new_buffer, new_join_window

GOOD = Interaction(id="i", ts=1, task="t", model_version="v", input="x", embedding=[0.1, 0.2])


@pytest.mark.parametrize("raw, reason", [
    (None, "empty"),
    (b"", "invalid_json"),
    (b"{not json", "invalid_json"),
    (b"\xff\xfe", "invalid_utf8"),
    (b"[1, 2]", "invalid_event"),
    (b'{"schema_name": "driftloop.interaction", "schema_version": 1}', "invalid_event"),
    (b'{"schema_name": "driftloop.batch", "schema_version": 1, "events": 3}', "invalid_batch"),
])
def test_bad_messages_become_one_dead_letter(raw, reason):
    out = decode_message(raw, Interaction, topic="ix", partition=2, offset=9, key=b"t")
    assert out.events == []
    [letter] = out.dead_letters
    assert (letter.reason, letter.source_topic, letter.partition, letter.offset) == \
        (reason, "ix", 2, 9)
    assert base64.b64decode(letter.payload_b64) == (raw or b"")
    assert base64.b64decode(letter.key_b64) == b"t"


def test_a_bad_event_inside_a_batch_is_its_own_dead_letter():
    raw = encode_batch([GOOD, GOOD.model_copy(update={"id": "j"})])
    data = orjson.loads(raw)
    data["events"].insert(1, {"id": 5})
    out = decode_message(orjson.dumps(data), Interaction, topic="ix", partition=0, offset=1)
    assert [e.id for e in out.events] == ["i", "j"]
    [letter] = out.dead_letters
    assert letter.event_index == 1
    assert orjson.loads(base64.b64decode(letter.payload_b64)) == {"id": 5}


def test_wrong_embedding_size_for_the_task_is_dead_lettered():
    out = decode_message(encode(GOOD), Interaction, topic="ix", partition=0, offset=1,
                         embedding_dims=lambda task: 3)
    assert out.events == [] and out.dead_letters[0].reason == "embedding_dim"


def test_events_off_their_tasks_partition_are_dead_lettered_one_by_one():
    owners = TaskPartitions(6)
    home, away = task_partition("t", 6), task_partition("sentiment", 6)
    assert home != away
    stranger = GOOD.model_copy(update={"id": "s", "task": "sentiment"})
    raw = encode_batch([GOOD, stranger, GOOD.model_copy(update={"id": "j"})])
    out = decode_message(raw, Interaction, topic="ix", partition=home, offset=4, key=b"t",
                         owners=owners)
    assert [e.id for e in out.events] == ["i", "j"]
    [letter] = out.dead_letters
    assert (letter.reason, letter.event_index, letter.partition, letter.offset) == \
        ("wrong_partition", 1, home, 4)
    assert decode(base64.b64decode(letter.payload_b64), Interaction) == stranger
    assert f"'sentiment' arrived on ix partition {home} but belongs to partition {away} of 6" \
        in letter.error
    # On the stranger's partition it is the other way round.
    out = decode_message(raw, Interaction, topic="ix", partition=away, offset=5, owners=owners)
    assert [e.id for e in out.events] == ["s"]
    assert [(d.reason, d.event_index) for d in out.dead_letters] == \
        [("wrong_partition", 0), ("wrong_partition", 2)]


def test_a_single_event_off_its_partition_keeps_its_bytes_and_no_index():
    raw = encode(GOOD)
    wrong = (task_partition("t", 6) + 1) % 6
    [letter] = decode_message(raw, Interaction, topic="ix", partition=wrong, offset=1,
                              owners=TaskPartitions(6)).dead_letters
    assert (letter.reason, letter.event_index) == ("wrong_partition", None)
    assert base64.b64decode(letter.payload_b64) == raw


def test_an_unreadable_event_is_judged_by_its_content_before_its_partition():
    raw = orjson.dumps({"schema_name": "driftloop.batch", "schema_version": 1,
                        "events": [{"id": 5, "task": "sentiment"}, to_dict(GOOD)]})
    out = decode_message(raw, Interaction, topic="ix", partition=task_partition("t", 6),
                         offset=1, owners=TaskPartitions(6))
    assert [(d.reason, d.event_index) for d in out.dead_letters] == [("invalid_event", 0)]
    assert [e.id for e in out.events] == ["i"]


def test_huge_payloads_are_cut_and_marked():
    raw = b"x" * (MAX_DEAD_LETTER_PAYLOAD + 10)
    [letter] = decode_message(raw, Interaction, topic="ix", partition=0, offset=1).dead_letters
    assert letter.truncated and letter.payload_size == len(raw)
    # The largest dead letter the worker writes is still one its readers decode.
    assert decode(encode(letter), DeadLetter) == letter


# -- fuzzing: whatever arrives, the worker's step neither raises nor loses an event -------

FUZZ = settings(max_examples=50, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow])

JSON = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers(-2**63, 2**63 - 1)
    | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["schema_name", "schema_version", "events", "id", "ts", "task",
                         "kind", "value", "embedding", "scores", "input", "model_version",
                         "interaction_id", "probabilities", "confidence", "domain"]),
        inner, max_size=8),
    max_leaves=25)


def _accounted(out, raw: bytes) -> None:
    """Every event of the message is an event or a dead letter with a reason, none twice."""
    assert all(letter.reason and letter.error for letter in out.dead_letters)
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        data = None
    if isinstance(data, dict) and data.get("schema_name") == "driftloop.batch" and \
            isinstance(data.get("events"), list) and not (
                len(out.dead_letters) == 1 and out.dead_letters[0].event_index is None):
        assert len(out.events) + len(out.dead_letters) == len(data["events"])
    else:
        assert len(out.events) + len(out.dead_letters) == 1


def _json_bytes(value) -> bytes:
    # Integers past 64 bits: no JSON producer writes them, orjson cannot.
    return b"0" if _too_big(value) else orjson.dumps(value)


@FUZZ
@given(raw=st.binary(max_size=400) | JSON.map(_json_bytes))
def test_fuzzed_messages_become_events_or_dead_letters(raw: bytes) -> None:
    for cls in (Interaction, Feedback):
        _accounted(decode_message(raw, cls, topic="ix", partition=0, offset=1,
                                  embedding_dims=lambda task: 2), raw)


def _too_big(value) -> bool:
    try:
        orjson.dumps(value)
    except orjson.JSONEncodeError:
        return True
    return False


@FUZZ
@given(raw=JSON.map(_json_bytes), partition=st.integers(0, 5))
def test_fuzzed_messages_on_any_partition_are_accounted(raw: bytes, partition: int) -> None:
    _accounted(decode_message(raw, Feedback, topic="fb", partition=partition, offset=1,
                              owners=TaskPartitions(6)), raw)


@FUZZ
@given(events=st.lists(JSON | st.just(to_dict(GOOD)), max_size=6))
def test_fuzzed_batches_are_accounted_event_by_event(events: list) -> None:
    if any(_too_big(e) for e in events):
        return
    raw = orjson.dumps({"schema_name": "driftloop.batch", "schema_version": 1,
                        "events": events})
    out = decode_message(raw, Interaction, topic="ix", partition=0, offset=1)
    assert len(out.events) + len(out.dead_letters) == len(events)
    assert sorted(d.event_index for d in out.dead_letters) == [
        i for i, e in enumerate(events) if e != to_dict(GOOD)]


@pytest.mark.parametrize("max_bytes", [64, 1024])
def test_the_message_limit_applies_to_single_events_and_batches(max_bytes: int) -> None:
    for raw in (encode(GOOD), encode_batch([GOOD] * 20)):
        out = decode_message(raw, Interaction, topic="ix", partition=0, offset=1,
                             max_bytes=max_bytes)
        if len(raw) > max_bytes:
            assert out.events == [] and out.dead_letters[0].reason == "too_large"
        else:
            assert out.dead_letters == []


def test_the_event_limit_applies_alone_and_inside_a_batch() -> None:
    big = GOOD.model_copy(update={"id": "big", "input": "x" * 2000})
    limit = len(encode(GOOD)) + 100
    out = decode_message(encode(big), Interaction, topic="ix", partition=0, offset=1,
                         max_event_bytes=limit)
    assert out.events == [] and out.dead_letters[0].reason == "too_large"
    assert f"limit is {limit}" in out.dead_letters[0].error
    out = decode_message(encode_batch([GOOD, big, GOOD]), Interaction, topic="ix", partition=0,
                         offset=1, max_event_bytes=limit)
    assert [e.id for e in out.events] == ["i", "i"]
    [letter] = out.dead_letters
    assert (letter.reason, letter.event_index) == ("too_large", 1)
    # The default is the codec's 1 MiB of one event, though a message may carry 8 MiB.
    huge = encode(GOOD.model_copy(update={"input": "x" * (1024 * 1024)}))
    out = decode_message(huge, Interaction, topic="ix", partition=0, offset=1)
    assert out.dead_letters[0].reason == "too_large"


# Events that pass the contract but are extreme: huge and tiny numbers, many classes,
# embeddings whose size changes within a task, timestamps at both ends.
FINITE = st.floats(allow_nan=False, allow_infinity=False, width=64)
PROBS = st.dictionaries(st.text(min_size=1, max_size=4), st.floats(0, 1), max_size=40)


@st.composite
def extreme_interactions(draw) -> Interaction:
    return Interaction(
        id=draw(st.text(min_size=1, max_size=8)), ts=draw(st.floats(0, 1e15) | st.just(0.0)),
        task="t", domain=draw(st.sampled_from(["a", "b", "c.d"])), model_version="v",
        input=draw(st.text(max_size=20)), prediction=draw(st.none() | st.text(max_size=3)),
        scores={"confidence": draw(st.none() | st.floats(0, 1)),
                "probabilities": draw(st.none() | PROBS)},
        embedding=draw(st.none() | st.lists(FINITE, min_size=1, max_size=9)))


@st.composite
def extreme_feedback(draw, ids: list[str]) -> Feedback:
    kind = draw(st.sampled_from(["label", "correction", "rating"]))
    value = draw(FINITE) if kind == "rating" else draw(st.text(max_size=5))
    return Feedback(id=draw(st.text(min_size=1, max_size=8)),
                    interaction_id=draw(st.sampled_from(ids) if ids else st.just("x")),
                    ts=draw(st.floats(0, 1e15)), task="t", kind=kind, value=value)


@FUZZ
@given(data=st.data())
def test_valid_but_extreme_events_never_crash_the_pipeline(data) -> None:
    worker = WorkerSettings(triggers={"min_examples": 2, "cooldown_s": 0},
                            drift={"warmup_blocks": 2, "block_size": 2, "cooldown_blocks": 0,
                                   "centroid_events": 3})
    state = TaskState("t", worker, TaskSettings())
    join, buffer = new_join_window(worker), new_buffer(worker)
    for step in range(data.draw(st.integers(1, 6))):
        events = data.draw(st.lists(extreme_interactions(), min_size=1, max_size=8))
        state.on_interactions(events, join=join, buffer=buffer, bucket=f"ix:0:{step}",
                              now=1000.0 + step)
        feedback = data.draw(st.lists(extreme_feedback([e.id for e in events]), max_size=8))
        if feedback:
            state.on_feedback(feedback, join=join, buffer=buffer, bucket=f"fb:0:{step}",
                              now=1000.5 + step)
    for domain in state.drift.domains.values():  # no NaN that would mute a detector for good
        assert domain.centroid is None or np.isfinite(domain.centroid).all()
        assert domain._centroid_sum is None or np.isfinite(domain._centroid_sum).all()
    for request in state.check_triggers(buffer, now=2000.0):
        assert len(encode(request)) <= worker.buffer.batch_max_bytes + 64 * 1024


@FUZZ
@given(value=st.binary(max_size=200) | JSON.map(_json_bytes)
       | st.fixed_dictionaries({"id": JSON, "task": JSON, "kind": st.sampled_from(CommandKind)},
                               optional={"reason": JSON, "version": JSON, "ts": JSON}
                               ).map(_json_bytes))
def test_fuzzed_commands_are_refused_or_well_typed(value: bytes) -> None:
    try:
        command = decode_command(value)
    except CommandError:
        return
    assert isinstance(command.id, str) and isinstance(command.task, str)
    assert isinstance(command.reason, str) and isinstance(command.ts, int | float)
    worker = WorkerSettings()
    state = TaskState(command.task, worker, TaskSettings())
    state.on_command(command, now=1.0)
    state.check_triggers(new_buffer(worker), now=2.0)
