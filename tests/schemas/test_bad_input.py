"""Whatever the bytes, decoding raises driftloop's ValidationError and nothing else."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest
from event_samples import FULL, INTERACTION
from hypothesis import given
from hypothesis import strategies as st

from driftloop.schemas import (
    DEFAULT_MAX_BYTES,
    EVENT_TYPES,
    DeadLetter,
    Feedback,
    Interaction,
    ModelVersion,
    ServingAck,
    TrainingRequest,
    ValidationError,
    decode,
    decode_any,
    decode_batch,
    encode,
    to_dict,
)
from driftloop.schemas.codec import max_bytes_for
from driftloop.schemas.fields import MAX_EMBEDDING_DIM

# Every way in: one typed decode per event type, decode_any, and batches.
DECODERS: dict[str, Callable[[Any], Any]] = {
    **{f"decode[{cls.__name__}]": (lambda raw, cls=cls: decode(raw, cls))
       for cls in EVENT_TYPES.values()},
    "decode_any": decode_any,
    "decode_batch[Interaction]": lambda raw: decode_batch(raw, Interaction),
    "decode_batch[Feedback]": lambda raw: decode_batch(raw, Feedback),
}


def rejects(decoder: Callable[[Any], Any], raw: Any) -> ValidationError:
    """The ValidationError ``decoder`` raised on ``raw`` (any other exception fails)."""
    try:
        result = decoder(raw)
    except ValidationError as exc:
        return exc
    if isinstance(result, list) and result and all(isinstance(r, ValidationError)
                                                    for r in result):
        return result[0]  # a batch whose every event is bad
    pytest.fail(f"accepted {raw[:80]!r}")


def interaction_with(**changes: Any) -> bytes:
    return orjson.dumps({**to_dict(INTERACTION), **changes})


BAD_PAYLOADS: dict[str, Any] = {
    "empty": b"",
    "whitespace": b"  \n",
    "not json": b"{not json",
    "truncated": encode(INTERACTION)[:-5],
    "trailing garbage": encode(INTERACTION) + b"}",
    "non-UTF-8": b'{"id": "\xff\xfe"}',
    "lone surrogate (bytes)": b'{"id": "\xed\xa0\x80"}',
    "lone surrogate (str)": '{"id": "\ud800"}',
    "escaped lone surrogate": b'{"id": "\\ud800"}',
    "latin-1 text": '{"input": "café"}'.encode("latin-1"),
    "NaN literal": encode(INTERACTION).replace(b'"confidence":0.81', b'"confidence":NaN'),
    "Infinity literal": encode(INTERACTION).replace(b'"confidence":0.81',
                                                    b'"confidence":Infinity'),
    "-Infinity literal": encode(INTERACTION).replace(b'"ts":1700000000.25', b'"ts":-Infinity'),
    "1e400 score": encode(INTERACTION).replace(b'"confidence":0.81', b'"confidence":1e400'),
    "-1e400 ts": encode(INTERACTION).replace(b'"ts":1700000000.25', b'"ts":-1e400'),
    "1e400 in the embedding": encode(INTERACTION).replace(b"0.125", b"1e400"),
    "huge integer in a score": encode(INTERACTION).replace(b'"confidence":0.81',
                                                           b'"confidence":' + b"9" * 400),
    "null": b"null",
    "number": b"42",
    "string": b'"interaction"',
    "array": b"[1, 2, 3]",
    "array of the event": b"[" + encode(INTERACTION) + b"]",
    "true": b"true",
    "deeply nested arrays": b"[" * 100_000 + b"]" * 100_000,
    "deeply nested objects": b'{"a":' * 5000 + b"1" + b"}" * 5000,
    "nested inside metadata": interaction_with()[:-1] + b',"x":' + b"[" * 2000 + b"]" * 2000
    + b"}",
    "unknown schema_name": orjson.dumps({**to_dict(INTERACTION), "schema_name": "x.y"}),
    "schema_name not a string": orjson.dumps({**to_dict(INTERACTION), "schema_name": 3}),
    "empty object": b"{}",
    "10 MB payload": b'{"schema_name":"driftloop.interaction","input":"' + b"x" * 10_000_000
    + b'"}',
    "10 MB of spaces": b" " * 10_000_000,
}


@pytest.mark.parametrize("payload", BAD_PAYLOADS.values(), ids=BAD_PAYLOADS.keys())
@pytest.mark.parametrize("name", DECODERS)
def test_bad_payloads_raise_validation_error_only(name: str, payload: Any) -> None:
    err = rejects(DECODERS[name], payload)
    assert err.errors and str(err)
    assert err.code in {"invalid_json", "invalid_utf8", "too_large", "invalid_event",
                        "unknown_schema", "invalid_batch"}


@pytest.mark.parametrize(("payload", "code"), [
    (b"{not json", "invalid_json"),
    (b'{"id": "\xff"}', "invalid_utf8"),
    ('{"id": "\ud800"}', "invalid_utf8"),
    (b'{"ts": NaN}', "invalid_json"),
    (b'{"ts": 1e400}', "invalid_json"),
    (b"[" * 100_000, "invalid_json"),
    (b" " * 10_000_000, "too_large"),
])
def test_the_code_says_what_was_wrong(payload: Any, code: str) -> None:
    assert rejects(DECODERS["decode[Interaction]"], payload).code == code


def test_a_10_mb_payload_is_refused_before_parsing() -> None:
    payload = b'{"input":"' + b"x" * 10_000_000 + b'"}'
    for name, decoder in DECODERS.items():
        err = rejects(decoder, payload)
        # Training requests carry their examples inline and may reach 16 MiB, so both
        # their decoder and decode_any read the payload, then find it is no valid event.
        if name in ("decode_any", "decode[TrainingRequest]"):
            assert err.code in ("unknown_schema", "invalid_event"), name
        else:
            assert err.code == "too_large", name
            assert "10000012 bytes" in str(err)


def test_a_training_request_may_be_larger_than_other_events() -> None:
    request = TrainingRequest(id="t", ts=0, task="t", trigger="manual",
                              examples=[{"input": "x" * 1000, "target": "y"}] * 2000)
    payload = encode(request)
    assert len(payload) > DEFAULT_MAX_BYTES
    assert decode(payload, TrainingRequest) == request
    assert decode_any(payload) == request
    # The same size as an interaction is too large.
    big = interaction_with(input="x" * len(payload))
    assert rejects(DECODERS["decode[Interaction]"], big).code == "too_large"
    assert rejects(decode_any, big).code == "too_large"


def test_max_bytes_can_be_tightened() -> None:
    err = rejects(lambda raw: decode(raw, Interaction, max_bytes=100), encode(INTERACTION))
    assert err.code == "too_large"


@pytest.mark.parametrize(("embedding", "dim"), [
    ([0.1, 0.2, 0.3], 4), ([0.0] * 385, 384), ([0.5], 2),
])
def test_embeddings_of_the_wrong_dimension(embedding: list[float], dim: int) -> None:
    err = rejects(lambda raw: decode(raw, Interaction, embedding_dim=dim),
                  interaction_with(embedding=embedding))
    assert str(err) == f"interaction.embedding: expected {dim} dimensions, got {len(embedding)}"


def test_the_right_dimension_passes_and_no_dimension_means_any() -> None:
    raw = interaction_with(embedding=[0.25] * 384)
    assert len(decode(raw, Interaction, embedding_dim=384).embedding) == 384
    assert len(decode(raw, Interaction).embedding) == 384


@pytest.mark.parametrize(("embedding", "message"), [
    ([], "interaction.embedding: expected at least 1 item, got 0"),
    ([0.0] * (MAX_EMBEDDING_DIM + 1),
     f"interaction.embedding: expected at most {MAX_EMBEDDING_DIM} items, "
     f"got {MAX_EMBEDDING_DIM + 1}"),
    ([0.1, None], "interaction.embedding[1]: expected a number, got null"),
    ([0.1, [0.2]], "interaction.embedding[1]: expected a number, got an array"),
    ("0.1,0.2", 'interaction.embedding: expected an array, got "0.1,0.2"'),
])
def test_malformed_embeddings(embedding: Any, message: str) -> None:
    assert str(rejects(DECODERS["decode[Interaction]"], interaction_with(embedding=embedding))) \
        == message


@pytest.mark.parametrize("field", ["confidence", "probabilities"])
def test_out_of_range_scores(field: str) -> None:
    scores = {"confidence": 1.5} if field == "confidence" else {"probabilities": {"a": -0.1}}
    err = rejects(DECODERS["decode[Interaction]"], interaction_with(scores=scores))
    assert err.errors[0].path.startswith(f"interaction.scores.{field}")


@pytest.mark.parametrize("event", FULL, ids=lambda e: type(e).__name__)
def test_each_required_field_missing_is_named(event: Any) -> None:
    cls = type(event)
    for name, field in cls.model_fields.items():
        if not field.is_required():
            continue
        data = to_dict(event)
        del data[name]
        err = rejects(lambda raw, cls=cls: decode(raw, cls), orjson.dumps(data))
        assert str(err).endswith(f".{name}: required field missing"), str(err)


@pytest.mark.parametrize("form", [bytes, bytearray, memoryview, lambda b: b.decode("latin-1")])
def test_every_input_form_gets_the_same_treatment(form: Callable[[bytes], Any]) -> None:
    for payload in (b"{not json", b"[]", b'{"schema_name":"driftloop.interaction"}'):
        rejects(DECODERS["decode[Interaction]"], form(payload))
        rejects(decode_any, form(payload))


@pytest.mark.parametrize("thing", [None, 42, 4.2, ["{}"], {"a": 1}, object()])
def test_inputs_that_are_not_bytes_or_str(thing: Any) -> None:
    for decoder in DECODERS.values():
        assert rejects(decoder, thing).code == "invalid_json"


@given(st.binary(max_size=512))
def test_fuzzed_bytes_raise_only_validation_error(payload: bytes) -> None:
    for decoder in DECODERS.values():
        try:
            decoder(payload)
        except ValidationError:
            pass


@given(st.recursive(st.none() | st.booleans() | st.floats() | st.integers()
                    | st.text(max_size=10),
                    lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.sampled_from(
                        ["schema_name", "schema_version", "events", "id", "ts", "task",
                         "kind", "value", "embedding", "scores", "interaction", "examples"]),
                        inner, max_size=6),
                    max_leaves=20))
def test_fuzzed_json_raises_only_validation_error(value: Any) -> None:
    try:
        payload = orjson.dumps(value)
    except orjson.JSONEncodeError:
        return  # integers past 64 bits: not something a JSON producer writes
    for decoder in DECODERS.values():
        try:
            decoder(payload)
        except ValidationError:
            pass


def test_one_event_over_its_limit_is_too_large_alone_or_in_a_batch() -> None:
    # A message may carry 8 MiB (a batch); one event in it may not exceed 1 MiB.
    big = to_dict(INTERACTION) | {"input": "x" * DEFAULT_MAX_BYTES}
    err = rejects(DECODERS["decode_batch[Interaction]"], orjson.dumps(big))
    assert err.code == "too_large" and f"limit is {DEFAULT_MAX_BYTES}" in str(err)
    envelope = orjson.dumps({"schema_name": "driftloop.batch", "schema_version": 1,
                             "events": [to_dict(INTERACTION), big, to_dict(INTERACTION)]})
    results = decode_batch(envelope, Interaction)
    assert [type(r).__name__ for r in results] == ["Interaction", "ValidationError",
                                                   "Interaction"]
    assert (results[1].code, results[1].event_index) == ("too_large", 1)
    # The limit is the caller's to tighten.
    assert rejects(lambda raw: decode_batch(raw, Interaction, max_event_bytes=50),
                   encode(INTERACTION)).code == "too_large"


@pytest.mark.parametrize("cls", [DeadLetter, ModelVersion, ServingAck, TrainingRequest])
def test_every_event_type_has_a_size_limit(cls: Any) -> None:
    assert rejects(lambda raw: decode(raw, cls), b" " * (max_bytes_for(cls) + 1)).code == \
        "too_large"
