"""Bytes <-> events, through orjson, with errors that name the field and the reason.

A Kafka message on ``interactions`` or ``feedback`` carries either one event or a batch
envelope ``{"schema_name": "driftloop.batch", "schema_version": 1, "events": [...]}``.
:func:`decode_batch` accepts both and returns one result per event, so one bad event in a
batch becomes its own dead letter while the rest go on.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

import orjson
import pydantic

from .errors import FieldError, ValidationError
from .events import EVENT_TYPES, Event, Interaction, _show

__all__ = [
    "BATCH_SCHEMA_NAME",
    "DEFAULT_MAX_BYTES",
    "decode",
    "decode_any",
    "decode_batch",
    "encode",
    "encode_batch",
    "event_short_name",
    "to_dict",
]

E = TypeVar("E", bound=Event)

BATCH_SCHEMA_NAME = "driftloop.batch"
DEFAULT_MAX_BYTES = 1024 * 1024
_TYPE_NAMES = {
    "string": "a string", "int": "an integer", "float": "a number", "bool": "a boolean",
    "dict": "an object", "list": "an array",
}


def event_short_name(cls: type[Event]) -> str:
    """``driftloop.label_request`` -> ``label_request`` (the prefix of error paths)."""
    return cls.SCHEMA_NAME.rsplit(".", 1)[-1]


def encode(event: Event) -> bytes:
    """Serialize an event to JSON bytes (enums as strings, unknown fields kept)."""
    return orjson.dumps(to_dict(event))


def to_dict(event: Event) -> dict[str, Any]:
    """The event as plain JSON-ready data, including the schema name and version."""
    data = event.model_dump(mode="json", exclude_none=True)
    data["schema_name"] = type(event).SCHEMA_NAME
    return data


def encode_batch(events: Sequence[Event]) -> bytes:
    """Serialize several events of one type into a batch envelope."""
    return orjson.dumps({
        "schema_name": BATCH_SCHEMA_NAME,
        "schema_version": 1,
        "events": [to_dict(event) for event in events],
    })


def _loads(raw: bytes | bytearray | memoryview | str, max_bytes: int, what: str) -> Any:
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogatepass")
    if not isinstance(raw, bytes | bytearray | memoryview):
        raise ValidationError.single(what, f"expected bytes, got {type(raw).__name__}",
                                     code="invalid_json")
    size = len(raw)
    if size > max_bytes:
        raise ValidationError.single(what, f"payload is {size} bytes, limit is {max_bytes}",
                                     code="too_large")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        msg = str(exc)
        if "utf-8" in msg.lower() or "surrogate" in msg.lower():
            raise ValidationError.single(what, f"payload is not valid UTF-8: {msg}",
                                         code="invalid_utf8") from None
        raise ValidationError.single(what, f"payload is not valid JSON: {msg}",
                                     code="invalid_json") from None


def _reason(err: dict[str, Any]) -> str:
    kind, value = err["type"], err.get("input")
    if kind == "missing":
        return "required field missing"
    if kind == "value_error":
        return str(err["msg"]).removeprefix("Value error, ")
    if kind.endswith("_type") or kind.endswith("_parsing"):
        base = kind.removesuffix("_type").removesuffix("_parsing")
        expected = _TYPE_NAMES.get(base, base)
        return f"expected {expected}, got {_show(value)}"
    if kind == "finite_number":
        return f"expected a finite number, got {value}"
    if kind in ("enum", "literal_error"):
        return f"{err['msg'].lower()}, got {_show(value)}"
    return f"{err['msg'].lower()}, got {_show(value)}"


def _path(prefix: str, loc: Iterable[Any]) -> str:
    parts = [prefix]
    for item in loc:
        if isinstance(item, int):
            parts[-1] += f"[{item}]"
        elif item in ("str", "float", "int", "function-after[_check_schema_name(), str]"):
            continue  # union branch names pydantic adds to the location
        else:
            parts.append(str(item))
    return ".".join(parts)


def _from_pydantic(cls: type[Event], exc: pydantic.ValidationError) -> ValidationError:
    prefix = event_short_name(cls)
    errors: list[FieldError] = []
    seen: set[str] = set()
    for err in exc.errors(include_url=False):
        loc = [part for part in err["loc"] if not str(part).startswith("function-")]
        reason = _reason(err)
        if not loc and reason.startswith(("value: ", "schema_name: ")):
            field, _, reason = reason.partition(": ")
            loc = [field]
        path = _path(prefix, loc)
        if path in seen:  # a union reports each failed branch; one line per field is enough
            continue
        seen.add(path)
        errors.append(FieldError(path, reason))
    return ValidationError(errors or [FieldError(prefix, str(exc))])


def _validate(data: Any, cls: type[E], embedding_dim: int | None) -> E:
    prefix = event_short_name(cls)
    if not isinstance(data, dict):
        raise ValidationError.single(prefix, f"expected an object, got {_show(data)}")
    for required in ("schema_name", "schema_version"):
        if required not in data:
            raise ValidationError.single(f"{prefix}.{required}", "required field missing")
    try:
        event = cls.model_validate(data)
    except pydantic.ValidationError as exc:
        raise _from_pydantic(cls, exc) from None
    if embedding_dim is not None and isinstance(event, Interaction) and event.embedding is not None:
        if len(event.embedding) != embedding_dim:
            raise ValidationError.single(
                f"{prefix}.embedding",
                f"expected {embedding_dim} dimensions, got {len(event.embedding)}",
            )
    return event


def decode(
    raw: bytes | bytearray | memoryview | str,
    cls: type[E],
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    embedding_dim: int | None = None,
) -> E:
    """Decode and validate one event of type ``cls``.

    Raises :class:`~driftloop.schemas.errors.ValidationError` (and nothing else) for bytes
    that are too large, not UTF-8, not JSON, or not a valid ``cls``. ``embedding_dim``
    enforces the task's embedding size on interactions.
    """
    return _validate(_loads(raw, max_bytes, event_short_name(cls)), cls, embedding_dim)


def decode_any(raw: bytes | bytearray | memoryview | str, *,
               max_bytes: int = DEFAULT_MAX_BYTES) -> Event:
    """Decode one event of any driftloop type, chosen by its ``schema_name``."""
    data = _loads(raw, max_bytes, "event")
    name = data.get("schema_name") if isinstance(data, dict) else None
    cls = EVENT_TYPES.get(name) if isinstance(name, str) else None
    if cls is None:
        raise ValidationError.single("event.schema_name",
                                     f"unknown schema {_show(name)}", code="unknown_schema")
    return _validate(data, cls, None)


def decode_batch(
    raw: bytes | bytearray | memoryview | str,
    cls: type[E],
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    embedding_dim: int | None = None,
) -> list[E | ValidationError]:
    """Decode a message holding one event or a batch envelope of events of type ``cls``.

    Returns one entry per event, in order: the event, or the ValidationError that event
    raised. A payload that is not decodable as a whole raises ValidationError.

    >>> from driftloop.schemas import Feedback, encode_batch
    >>> good = Feedback(id="f", interaction_id="i", ts=0, task="t", kind="label", value="pos")
    >>> raw = b'{"schema_name":"driftloop.batch","schema_version":1,"events":[' \\
    ...       + encode(good) + b',{"id":1}]}'
    >>> [type(r).__name__ for r in decode_batch(raw, Feedback)]
    ['Feedback', 'ValidationError']
    """
    prefix = event_short_name(cls)
    data = _loads(raw, max_bytes, prefix)
    if isinstance(data, dict) and data.get("schema_name") == BATCH_SCHEMA_NAME:
        events = data.get("events")
        if not isinstance(events, list):
            raise ValidationError.single("batch.events", f"expected an array, got {_show(events)}")
        results: list[E | ValidationError] = []
        for index, item in enumerate(events):
            try:
                results.append(_validate(item, cls, embedding_dim))
            except ValidationError as exc:
                exc.event_index = index  # type: ignore[attr-defined]
                results.append(exc)
        return results
    return [_validate(data, cls, embedding_dim)]
