"""Encode/decode: round trips, batch envelopes, and error messages that name field and reason."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from contract_strategies import valid, wire
from event_samples import FULL, INTERACTION
from hypothesis import given

from driftloop.schemas import (
    EVENT_TYPES,
    DeadLetter,
    Event,
    Feedback,
    Interaction,
    TrainingRequest,
    ValidationError,
    decode,
    decode_any,
    decode_batch,
    encode,
    encode_batch,
    json_schema,
    to_dict,
)
from driftloop.schemas.codec import event_short_name

FEEDBACK = {"schema_name": "driftloop.feedback", "schema_version": 1, "id": "f-1",
            "interaction_id": "i-1", "ts": 2.0, "task": "sentiment", "kind": "label",
            "value": "positive"}


def raw(**changes: Any) -> bytes:
    data = {**FEEDBACK, **changes}
    return orjson.dumps({k: v for k, v in data.items() if v is not ...})


def message_of(payload: bytes, cls: type[Event] = Feedback) -> str:
    with pytest.raises(ValidationError) as caught:
        decode(payload, cls)
    return str(caught.value)


# -- round trips ---------------------------------------------------------------------------

def test_the_samples_cover_every_event_type() -> None:
    assert {type(event) for event in FULL} == set(EVENT_TYPES.values())


@pytest.mark.parametrize("event", FULL, ids=lambda e: event_short_name(type(e)))
def test_every_event_round_trips(event: Event) -> None:
    payload = encode(event)
    assert decode(payload, type(event)) == event
    assert decode_any(payload) == event
    assert encode(decode(payload, type(event))) == payload


@pytest.mark.parametrize("event", FULL, ids=lambda e: event_short_name(type(e)))
def test_unknown_fields_are_kept_top_level_and_nested(event: Event) -> None:
    data = orjson.loads(encode(event))
    declared = set(type(event).model_fields)
    unknown = set(data) - declared
    assert unknown, "each sample carries at least one unknown field"
    again = to_dict(decode(encode(event), type(event)))
    assert {k: again[k] for k in unknown} == {k: data[k] for k in unknown}


def test_unknown_fields_inside_nested_objects_survive() -> None:
    again = decode(encode(INTERACTION), Interaction)
    assert to_dict(again)["scores"]["logit"] == 1.45
    assert to_dict(again)["trace"] is None  # a null unknown field is kept, not dropped
    assert to_dict(again)["metadata"]["gone"] is None


@pytest.mark.parametrize("short", [event_short_name(cls) for cls in EVENT_TYPES.values()])
def test_drawn_samples_round_trip(short: str) -> None:
    cls = next(c for c in EVENT_TYPES.values() if event_short_name(c) == short)

    @given(valid(short))
    def check(sample: dict[str, Any]) -> None:
        event = decode(wire(sample), cls)
        assert decode(encode(event), cls) == event
        data = to_dict(event)
        for key in set(sample) - set(cls.model_fields):
            assert data[key] == sample[key]

    check()


def test_python_built_events_carry_the_schema_header() -> None:
    event = Feedback(id="f", interaction_id="i", ts=0, task="t", kind="rating", value=3)
    assert (event.schema_name, event.schema_version) == ("driftloop.feedback", 1)
    assert orjson.loads(encode(event))["schema_name"] == "driftloop.feedback"


def test_a_newer_schema_version_is_read() -> None:
    assert decode(raw(schema_version=2, added_in_v2=[1, 2]), Feedback).schema_version == 2


def test_integral_floats_are_integers_as_json_schema_says() -> None:
    [letter] = [event for event in FULL if isinstance(event, DeadLetter)]
    event = decode(encode(letter).replace(b'"offset":41', b'"offset":41.0'), DeadLetter)
    assert event.offset == 41 and isinstance(event.offset, int)


def test_bytes_bytearray_memoryview_and_str_decode_alike() -> None:
    [feedback] = [event for event in FULL if isinstance(event, Feedback)]
    payload = encode(feedback)
    for form in (payload, bytearray(payload), memoryview(payload), payload.decode(),
                 memoryview(b"  " + payload)[2:], memoryview(bytearray(payload))):
        assert decode(form, Feedback) == feedback


@pytest.mark.parametrize("extra", [2**70, object()])
def test_an_event_that_cannot_be_encoded_raises_validation_error(extra: Any) -> None:
    event = Feedback(id="f", interaction_id="i", ts=0, task="t", kind="label", value="x",
                     extra=extra)
    for call in (lambda: encode(event), lambda: encode_batch([event])):
        with pytest.raises(ValidationError) as caught:
            call()
        assert caught.value.code == "unencodable"


# -- batch envelopes -------------------------------------------------------------------

def test_a_batch_round_trips() -> None:
    events = [Feedback(id=f"f-{i}", interaction_id="i", ts=float(i), task="t", kind="label",
                       value="pos") for i in range(5)]
    assert decode_batch(encode_batch(events), Feedback) == events


def test_one_bad_event_in_a_batch_is_its_own_error_and_the_rest_decode() -> None:
    good = [orjson.loads(raw(id=f"f-{i}")) for i in range(3)]
    bad = {**FEEDBACK, "kind": "rating", "value": "five"}
    payload = orjson.dumps({"schema_name": "driftloop.batch", "schema_version": 1,
                            "events": [good[0], bad, good[1], 7, good[2]]})
    results = decode_batch(payload, Feedback)
    assert [type(r).__name__ for r in results] == [
        "Feedback", "ValidationError", "Feedback", "ValidationError", "Feedback"]
    assert results[1].event_index == 1
    assert str(results[1]) == 'feedback.value: expected a number for kind=rating, got "five"'
    assert results[3].event_index == 3
    assert str(results[3]) == "feedback: expected an object, got 7"
    assert [r.id for r in results if isinstance(r, Feedback)] == ["f-0", "f-1", "f-2"]


def test_a_single_event_is_a_batch_of_one() -> None:
    [event] = decode_batch(raw(), Feedback)
    assert event.id == "f-1"


@pytest.mark.parametrize(("envelope", "message"), [
    ({"schema_name": "driftloop.batch", "schema_version": 1, "events": {}},
     "batch.events: expected an array, got an object"),
    ({"schema_name": "driftloop.batch", "schema_version": 1},
     "batch.events: required field missing"),
    ({"schema_name": "driftloop.batch", "events": []},
     "batch.schema_version: required field missing"),
    ({"schema_name": "driftloop.batch", "schema_version": "1", "events": []},
     'batch.schema_version: expected an integer, got "1"'),
    ({"schema_name": "driftloop.batch", "schema_version": 0, "events": []},
     "batch.schema_version: expected a number >= 1, got 0"),
])
def test_a_broken_envelope_fails_the_whole_message(envelope: dict, message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        decode_batch(orjson.dumps(envelope), Feedback)
    assert str(caught.value) == message
    assert caught.value.code == "invalid_batch"
    assert caught.value.event_index is None


def test_an_empty_batch_is_valid_and_empty() -> None:
    envelope = {"schema_name": "driftloop.batch", "schema_version": 1, "events": []}
    assert decode_batch(orjson.dumps(envelope), Feedback) == []


def test_batch_embedding_dim_is_checked_per_event() -> None:
    ok = to_dict(INTERACTION)
    wrong = {**ok, "id": "i-2", "embedding": [0.0, 1.0]}
    envelope = {"schema_name": "driftloop.batch", "schema_version": 1, "events": [ok, wrong]}
    first, second = decode_batch(orjson.dumps(envelope), Interaction, embedding_dim=4)
    assert first == INTERACTION
    assert isinstance(second, ValidationError) and second.event_index == 1
    assert str(second) == "interaction.embedding: expected 4 dimensions, got 2"


# -- error messages: "<event>.<path>: <reason>" ------------------------------------------

def test_the_rating_message_is_exact() -> None:
    assert message_of(raw(kind="rating", value="five")) == \
        'feedback.value: expected a number for kind=rating, got "five"'


@pytest.mark.parametrize(("changes", "message"), [
    ({"id": ...}, "feedback.id: required field missing"),
    ({"schema_name": ...}, "feedback.schema_name: required field missing"),
    ({"schema_version": ...}, "feedback.schema_version: required field missing"),
    ({"schema_name": "driftloop.interaction"},
     "feedback.schema_name: expected 'driftloop.feedback', got \"driftloop.interaction\""),
    ({"ts": "1.5"}, 'feedback.ts: expected a number, got "1.5"'),
    ({"ts": True}, "feedback.ts: expected a number, got true"),
    ({"ts": -1}, "feedback.ts: expected a number >= 0, got -1"),
    ({"task": "has space"},
     'feedback.task: expected a string matching ^[A-Za-z0-9][A-Za-z0-9_.-]*$, got "has space"'),
    ({"task": ""}, "feedback.task: expected at least 1 character, got 0"),
    ({"id": "x" * 300}, "feedback.id: expected at most 256 characters, got 300"),
    ({"id": 5}, "feedback.id: expected a string, got 5"),
    ({"kind": "stars"},
     "feedback.kind: expected 'label', 'correction' or 'rating', got \"stars\""),
    ({"kind": "label", "value": 3}, "feedback.value: expected a string for kind=label, got 3"),
    ({"kind": "rating", "value": True},
     "feedback.value: expected a number for kind=rating, got true"),
    ({"value": None}, "feedback.value: expected a string for kind=label, got null"),
    ({"source": "robot"},
     "feedback.source: expected 'user', 'reviewer' or 'auto', got \"robot\""),
    ({"metadata": []}, "feedback.metadata: expected an object, got an array"),
])
def test_messages_name_the_field_and_the_reason(changes: dict, message: str) -> None:
    assert message_of(raw(**changes)) == message


def test_nested_paths_follow_json() -> None:
    [request] = [event for event in FULL if isinstance(event, TrainingRequest)]
    bad = to_dict(request)
    bad["examples"][1]["weight"] = 0
    bad["examples"][0]["origin"] = "old"
    with pytest.raises(ValidationError) as caught:
        decode(orjson.dumps(bad), TrainingRequest)
    assert [str(e) for e in caught.value.errors] == [
        "training_request.examples[0].origin: expected 'new', 'replay' or 'synthetic', got \"old\"",
        "training_request.examples[1].weight: expected a number > 0, got 0",
    ]
    assert str(caught.value).endswith("(and 1 more)")


def test_embedding_items_are_located_by_index() -> None:
    bad = {**to_dict(INTERACTION), "embedding": [0.5, "0.5"]}
    assert message_of(orjson.dumps(bad), Interaction) == \
        'interaction.embedding[1]: expected a number, got "0.5"'


def test_every_violation_is_listed() -> None:
    with pytest.raises(ValidationError) as caught:
        decode(raw(id=..., ts="x", kind="nope"), Feedback)
    assert [e.path for e in caught.value.errors] == ["feedback.id", "feedback.ts",
                                                     "feedback.kind"]


# -- the JSON Schema loader ------------------------------------------------------------

def test_json_schema_by_class_schema_name_and_short_name() -> None:
    assert json_schema(Feedback) == json_schema("driftloop.feedback") == json_schema("feedback")
    assert json_schema("batch")["properties"]["schema_name"]["const"] == "driftloop.batch"


def test_json_schema_returns_a_fresh_copy() -> None:
    json_schema(Feedback)["title"] = "changed"
    assert json_schema(Feedback)["title"] == "Feedback"


@pytest.mark.parametrize("name", ["nope", "driftloop.nope", "", 3, dict])
def test_json_schema_of_an_unknown_name_lists_the_valid_ones(name: Any) -> None:
    with pytest.raises(ValueError, match="expected one of interaction, feedback"):
        json_schema(name)
