"""Bytes <-> events, through orjson, with errors that name the field and the reason.

A Kafka message on ``interactions`` or ``feedback`` carries either one event or a batch
envelope ``{"schema_name": "driftloop.batch", "schema_version": 1, "events": [...]}``.
:func:`decode_batch` accepts both and returns one result per event, so one bad event in a
batch becomes its own dead letter while the rest go on. Producers key such a message by the
events' task and put one task in an envelope: the worker applies an event only on the
partition its task's key goes to (see ``driftloop.streams.partitioning``).

Every decode function raises :class:`~driftloop.schemas.errors.ValidationError` and nothing
else, whatever the bytes: too large, not UTF-8, not JSON, not an object, not the contract.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

import orjson
import pydantic
from pydantic_core import PydanticSerializationError

from .enums import DeadLetterReason
from .errors import FieldError, ValidationError, show_value
from .events import EVENT_TYPES, WIRE, DeadLetter, Event, Interaction, TrainingRequest
from .fields import SchemaVersion
from .reasons import field_errors
from .topics import EVENT_TOPIC_MAX_BYTES, TRAINING_REQUEST_MAX_BYTES

__all__ = [
    "BATCH_MAX_BYTES",
    "BATCH_SCHEMA_NAME",
    "BATCH_SCHEMA_VERSION",
    "DEAD_LETTER_MAX_BYTES",
    "DEFAULT_MAX_BYTES",
    "Raw",
    "decode",
    "decode_any",
    "decode_batch",
    "encode",
    "encode_batch",
    "event_short_name",
    "max_bytes_for",
    "to_dict",
]

E = TypeVar("E", bound=Event)
Raw = bytes | bytearray | memoryview | str

BATCH_SCHEMA_NAME = "driftloop.batch"
BATCH_SCHEMA_VERSION = 1
# One event: generous for an interaction with a large embedding, small enough that a
# runaway producer cannot make a worker parse megabytes per message.
DEFAULT_MAX_BYTES = 1024 * 1024
BATCH_MAX_BYTES = EVENT_TOPIC_MAX_BYTES
# A dead letter carries up to 1 MiB of the refused payload, base64 (4/3 larger), and an error.
DEAD_LETTER_MAX_BYTES = 2 * 1024 * 1024
_MAX_BYTES: dict[type[Event], int] = {TrainingRequest: TRAINING_REQUEST_MAX_BYTES,
                                      DeadLetter: DEAD_LETTER_MAX_BYTES}


def event_short_name(cls: type[Event]) -> str:
    """``driftloop.label_request`` -> ``label_request`` (the prefix of error paths).

    >>> from driftloop.schemas import LabelRequest
    >>> event_short_name(LabelRequest)
    'label_request'
    """
    return cls.SCHEMA_NAME.rsplit(".", 1)[-1]


def max_bytes_for(cls: type[Event]) -> int:
    """The default size limit of one encoded event of type ``cls``.

    >>> from driftloop.schemas import Feedback, TrainingRequest
    >>> max_bytes_for(Feedback), max_bytes_for(TrainingRequest)
    (1048576, 16777216)
    """
    return _MAX_BYTES.get(cls, DEFAULT_MAX_BYTES)


def to_dict(event: Event) -> dict[str, Any]:
    """The event as plain JSON-ready data: every field, unknown ones included.

    Nulls are kept rather than dropped, so an unknown field whose value is null survives a
    round trip through driftloop unchanged.
    """
    return event.model_dump(mode="json")


def _dumps(events: Sequence[Event], what: str, envelope: bool) -> bytes:
    try:
        data: Any = [event.model_dump(mode="json") for event in events]
        if envelope:
            data = {"schema_name": BATCH_SCHEMA_NAME, "schema_version": BATCH_SCHEMA_VERSION,
                    "events": data}
        return orjson.dumps(data if envelope else data[0])
    # An unknown field holding an object JSON cannot spell, or an integer past 64 bits.
    except (orjson.JSONEncodeError, PydanticSerializationError) as exc:
        raise ValidationError.single(what, f"cannot be encoded as JSON: {exc}",
                                     code=DeadLetterReason.UNENCODABLE) from None


def encode(event: Event) -> bytes:
    """Serialize an event to JSON bytes (enums as strings, unknown fields kept).

    >>> from driftloop.schemas import Feedback
    >>> encode(Feedback(id="f", interaction_id="i", ts=0, task="t", kind="label", value="pos",
    ...                 note="kept"))[:60]
    b'{"schema_name":"driftloop.feedback","schema_version":1,"id":'
    """
    return _dumps([event], event_short_name(type(event)), envelope=False)


def encode_batch(events: Sequence[Event]) -> bytes:
    """Serialize several events of one type into a batch envelope.

    On ``interactions`` and ``feedback``, give it the events of one task and send it keyed by
    that task: an event whose task's key goes to another partition is dead-lettered
    (``wrong_partition``).
    """
    return _dumps(events, "batch", envelope=True)


def _as_bytes(raw: Raw, what: str) -> bytes | bytearray:
    if isinstance(raw, str):
        # Lone surrogates survive this and make orjson refuse the text as not UTF-8.
        return raw.encode("utf-8", "surrogatepass")
    if isinstance(raw, memoryview):
        return raw.tobytes()  # orjson reads only contiguous buffers; len() counts bytes now
    if isinstance(raw, bytes | bytearray):
        return raw
    raise ValidationError.single(what, f"expected bytes or str, got {type(raw).__name__}",
                                 code=DeadLetterReason.INVALID_JSON)


def _loads(raw: Raw, max_bytes: int, what: str) -> Any:
    raw = _as_bytes(raw, what)
    size = len(raw)
    if size > max_bytes:
        raise ValidationError.single(what, f"payload is {size} bytes, limit is {max_bytes}",
                                     code=DeadLetterReason.TOO_LARGE)
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        msg = str(exc)
        if "utf-8" in msg.lower():
            raise ValidationError.single(what, f"payload is not valid UTF-8: {msg}",
                                         code=DeadLetterReason.INVALID_UTF8) from None
        raise ValidationError.single(what, f"payload is not valid JSON: {msg}",
                                     code=DeadLetterReason.INVALID_JSON) from None


def _validate(data: Any, cls: type[E], embedding_dim: int | None) -> E:
    prefix = event_short_name(cls)
    if not isinstance(data, dict):
        raise ValidationError.single(prefix, f"expected an object, got {show_value(data)}")
    name = data.get("schema_name")
    if isinstance(name, str) and name not in EVENT_TYPES:
        raise ValidationError.single(f"{prefix}.schema_name", f"unknown schema {show_value(name)}",
                                     code=DeadLetterReason.UNKNOWN_SCHEMA)
    try:
        event = cls.model_validate(data, context=WIRE)
    except pydantic.ValidationError as exc:
        raise ValidationError(field_errors(prefix, exc)) from None
    if embedding_dim is not None and isinstance(event, Interaction) and event.embedding is not None:
        if len(event.embedding) != embedding_dim:
            raise ValidationError.single(
                f"{prefix}.embedding",
                f"expected {embedding_dim} dimensions, got {len(event.embedding)}",
            )
    return event


def decode(raw: Raw, cls: type[E], *, max_bytes: int | None = None,
           embedding_dim: int | None = None) -> E:
    """Decode and validate one event of type ``cls``.

    ``max_bytes`` defaults to :func:`max_bytes_for` ``(cls)``; ``embedding_dim`` enforces
    the task's embedding size on interactions.

    >>> from driftloop.schemas import Feedback
    >>> decode(b'{"schema_name":"driftloop.feedback","schema_version":1,"id":"f",'
    ...        b'"interaction_id":"i","ts":0,"task":"t","kind":"rating","value":"five"}',
    ...        Feedback)
    Traceback (most recent call last):
    ...
    driftloop.schemas.errors.ValidationError: feedback.value: expected a number for kind=rating, ...
    """
    limit = max_bytes_for(cls) if max_bytes is None else max_bytes
    return _validate(_loads(raw, limit, event_short_name(cls)), cls, embedding_dim)


def decode_any(raw: Raw, *, max_bytes: int | None = None) -> Event:
    """Decode one event of any driftloop type, chosen by its ``schema_name``.

    >>> decode_any(b'{"schema_name":"driftloop.nope","schema_version":1}')
    Traceback (most recent call last):
    ...
    driftloop.schemas.errors.ValidationError: event.schema_name: unknown schema "driftloop.nope"
    """
    limit = max(max(_MAX_BYTES.values()), DEFAULT_MAX_BYTES) if max_bytes is None else max_bytes
    payload = _as_bytes(raw, "event")
    data = _loads(payload, limit, "event")
    name = data.get("schema_name") if isinstance(data, dict) else None
    cls = EVENT_TYPES.get(name) if isinstance(name, str) else None
    if cls is None:
        if not isinstance(data, dict):
            raise ValidationError.single("event", f"expected an object, got {show_value(data)}")
        raise ValidationError.single("event.schema_name", f"unknown schema {show_value(name)}",
                                     code=DeadLetterReason.UNKNOWN_SCHEMA)
    size = len(payload)
    if max_bytes is None and size > max_bytes_for(cls):
        raise ValidationError.single(
            event_short_name(cls), f"payload is {size} bytes, limit is {max_bytes_for(cls)}",
            code=DeadLetterReason.TOO_LARGE)
    return _validate(data, cls, None)


# The envelope shares the events' version rule (an integer >= 1).
_ENVELOPE_VERSION = pydantic.TypeAdapter(SchemaVersion)


def _check_envelope(data: dict[str, Any]) -> list[Any]:
    problems: list[FieldError] = []
    if "schema_version" not in data:
        problems.append(FieldError("batch.schema_version", "required field missing"))
    else:
        try:
            _ENVELOPE_VERSION.validate_python(data["schema_version"])
        except pydantic.ValidationError as exc:
            problems.extend(field_errors("batch.schema_version", exc))
    events = data.get("events")
    if "events" not in data:
        problems.append(FieldError("batch.events", "required field missing"))
    elif not isinstance(events, list):
        problems.append(FieldError("batch.events", f"expected an array, got {show_value(events)}"))
    if problems:
        raise ValidationError(problems, code=DeadLetterReason.INVALID_BATCH)
    return events  # type: ignore[return-value]


def decode_batch(raw: Raw, cls: type[E], *, max_bytes: int | None = None,
                 embedding_dim: int | None = None,
                 max_event_bytes: int | None = None) -> list[E | ValidationError]:
    """Decode a message holding one event or a batch envelope of events of type ``cls``.

    Returns one entry per event, in order: the event, or the ValidationError that event
    raised (its ``event_index`` says where it was). A payload that is not decodable as a
    whole (not JSON, a broken envelope) raises ValidationError.

    ``max_bytes`` bounds the message (default: the batch limit), ``max_event_bytes`` one
    event in it (default :func:`max_bytes_for` ``(cls)``): a lone event over it raises, an
    event over it inside a batch is that event's ``too_large`` error (there its size is an
    upper bound that counts 25 bytes per embedding number, measured only when the whole
    message is over the limit).

    >>> from driftloop.schemas import Feedback, encode_batch
    >>> good = Feedback(id="f", interaction_id="i", ts=0, task="t", kind="label", value="pos")
    >>> raw = b'{"schema_name":"driftloop.batch","schema_version":1,"events":[' \\
    ...       + encode(good) + b',{"id":1}]}'
    >>> results = decode_batch(raw, Feedback)
    >>> [type(r).__name__ for r in results], results[1].event_index
    (['Feedback', 'ValidationError'], 1)
    """
    limit = max(BATCH_MAX_BYTES, max_bytes_for(cls)) if max_bytes is None else max_bytes
    event_limit = max_bytes_for(cls) if max_event_bytes is None else max_event_bytes
    prefix = event_short_name(cls)
    payload = _as_bytes(raw, prefix)
    data = _loads(payload, limit, prefix)
    if not (isinstance(data, dict) and data.get("schema_name") == BATCH_SCHEMA_NAME):
        if len(payload) > event_limit:
            raise ValidationError.single(
                prefix, f"event is {len(payload)} bytes, limit is {event_limit}",
                code=DeadLetterReason.TOO_LARGE)
        return [_validate(data, cls, embedding_dim)]
    # Only a message larger than one event may is worth measuring event by event.
    measure = len(payload) > event_limit
    results: list[E | ValidationError] = []
    for index, item in enumerate(_check_envelope(data)):
        try:
            if measure:
                _check_event_size(item, event_limit, prefix)
            results.append(_validate(item, cls, embedding_dim))
        except ValidationError as exc:
            exc.event_index = index
            results.append(exc)
    return results


# Longest JSON number orjson writes ("-2.2250738585072014e-308", or a 64-bit integer) + comma.
_NUMBER_BYTES = 25


def _check_event_size(item: Any, limit: int, prefix: str) -> None:
    # Writing the embedding's floats back out would cost more than decoding them did; its
    # size has an upper bound instead (an embedding of non-numbers fails validation anyway).
    extra = 0
    if isinstance(item, dict) and isinstance(item.get("embedding"), list):
        extra = _NUMBER_BYTES * len(item["embedding"])
        item = {key: value for key, value in item.items() if key != "embedding"}
    try:
        size = len(orjson.dumps(item)) + extra
    except orjson.JSONEncodeError:
        return  # an integer past 64 bits: validation names it
    if size > limit:
        raise ValidationError.single(prefix, f"event is {size} bytes, limit is {limit}",
                                     code=DeadLetterReason.TOO_LARGE)
