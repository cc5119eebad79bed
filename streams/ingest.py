"""Bytes from Kafka -> events, and everything that fails -> dead letters.

One Kafka message holds one event or a batch envelope; a payload that cannot be read at all
becomes one dead letter, a bad event inside a good envelope becomes its own dead letter with
its ``event_index`` and its own bytes, and the good events go on. So does an event read from a
partition its task does not hash to (``wrong_partition``, see
:mod:`~driftloop.streams.partitioning`): an envelope may mix tasks, and each event is judged
on its own. Nothing here raises.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import orjson

from ..schemas.codec import decode_batch
from ..schemas.enums import DeadLetterReason
from ..schemas.errors import ValidationError
from ..schemas.events import DeadLetter, Event, Interaction
from .partitioning import WRONG_PARTITION, TaskPartitions

__all__ = ["MAX_DEAD_LETTER_PAYLOAD", "DecodedMessage", "dead_letter", "decode_message"]

E = TypeVar("E", bound=Event)

# Dead letters carry the raw bytes, cut to this bound (the topic accepts 8 MiB messages and
# the base64 form is a third larger).
MAX_DEAD_LETTER_PAYLOAD = 1024 * 1024


@dataclass(slots=True)
class DecodedMessage:
    """The good events of one message and the dead letters of the rest."""

    events: list[Event] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)


def dead_letter(raw: bytes | None, *, topic: str, partition: int, offset: int,
                reason: DeadLetterReason,
                error: str, event_index: int | None = None, key: bytes | None = None,
                consumer: str | None = None, now: float | None = None) -> DeadLetter:
    """A dead letter holding ``raw`` (base64, cut to :data:`MAX_DEAD_LETTER_PAYLOAD`)."""
    payload = raw or b""
    cut = payload[:MAX_DEAD_LETTER_PAYLOAD]
    return DeadLetter(
        ts=time.time() if now is None else now,
        source_topic=topic, partition=partition, offset=offset, event_index=event_index,
        reason=reason, error=error[:4096] or reason,
        payload_b64=base64.b64encode(cut).decode("ascii"), payload_size=len(payload),
        truncated=len(cut) < len(payload),
        key_b64=None if key is None else base64.b64encode(key).decode("ascii"),
        consumer=consumer,
    )


def _event_bytes(raw: bytes, index: int) -> bytes:
    # Only on the error path: the bad event's own JSON, so an operator can fix and replay it.
    try:
        return orjson.dumps(orjson.loads(raw)["events"][index])
    except Exception:  # the envelope was readable moments ago; keep the whole message then
        return raw


def decode_message(raw: bytes | None, cls: type[E], *, topic: str, partition: int,
                   offset: int, key: bytes | None = None, max_bytes: int | None = None,
                   embedding_dims: Callable[[str], int | None] | None = None,
                   consumer: str | None = None, max_event_bytes: int | None = None,
                   owners: TaskPartitions | None = None) -> DecodedMessage:
    """Decode one Kafka message into events of type ``cls``; never raises.

    ``max_bytes`` bounds the message, ``max_event_bytes`` one event in it (see
    :func:`~driftloop.schemas.codec.decode_batch`); larger ones are ``too_large``.

    ``embedding_dims`` maps a task to the embedding size configured for it (``None``:
    any size); an interaction whose embedding has another size is a dead letter.

    ``owners`` gives each task's partition (of ``topic``'s partition count); an event whose
    task belongs to another partition than ``partition`` is a ``wrong_partition`` dead letter.

    >>> from driftloop.schemas import Feedback, encode
    >>> good = encode(Feedback(id="f", interaction_id="i", ts=0, task="t", kind="label",
    ...                        value="pos"))
    >>> out = decode_message(good, Feedback, topic="feedback", partition=0, offset=7)
    >>> len(out.events), len(out.dead_letters)
    (1, 0)
    >>> bad = decode_message(b"{not json", Feedback, topic="feedback", partition=0, offset=8)
    >>> bad.dead_letters[0].reason.value, bad.dead_letters[0].offset
    ('invalid_json', 8)
    >>> moved = decode_message(good, Feedback, topic="feedback", partition=0, offset=9,
    ...                        owners=TaskPartitions(6))
    >>> moved.dead_letters[0].reason.value, moved.dead_letters[0].error[:48]
    ('wrong_partition', "task 't' arrived on feedback partition 0 but bel")
    """
    out = DecodedMessage()

    def reject(reason: DeadLetterReason, error: str, index: int | None,
               payload: bytes | None) -> None:
        out.dead_letters.append(dead_letter(
            payload, topic=topic, partition=partition, offset=offset, reason=reason,
            error=error, event_index=index, key=key, consumer=consumer))

    if raw is None:
        reject(DeadLetterReason.EMPTY, "message has no value (a tombstone?)", None, raw)
        return out
    try:
        results = decode_batch(raw, cls, max_bytes=max_bytes, max_event_bytes=max_event_bytes)
    except ValidationError as exc:
        reject(exc.code, str(exc), None, raw)
        return out
    except Exception as exc:  # a decoder bug must not stop the worker either
        reject(DeadLetterReason.INTERNAL, f"{type(exc).__name__}: {exc}", None, raw)
        return out
    batched = len(results) > 1 or (raw.lstrip()[:1] == b"{" and b'"driftloop.batch"' in raw[:200])
    for index, result in enumerate(results):
        refusal = (result.code, str(result)) if isinstance(result, ValidationError) else \
            _refusal(result, topic=topic, partition=partition, owners=owners,
                     embedding_dims=embedding_dims)
        if refusal is None:
            out.events.append(result)
        elif batched:
            reject(*refusal, index, _event_bytes(raw, index))
        else:
            reject(*refusal, None, raw)
    return out


def _refusal(event: Event, *, topic: str, partition: int, owners: TaskPartitions | None,
             embedding_dims: Callable[[str], int | None] | None
             ) -> tuple[DeadLetterReason, str] | None:
    """Why a well-formed event cannot be applied here (reason, error), or None."""
    task: str = event.task  # type: ignore[attr-defined]
    if owners is not None and owners[task] != partition:
        return WRONG_PARTITION, owners.misplaced(task, topic, partition)
    if embedding_dims is not None and isinstance(event, Interaction) \
            and event.embedding is not None:
        want = embedding_dims(task)
        if want is not None and len(event.embedding) != want:
            return (DeadLetterReason.EMBEDDING_DIM, f"interaction.embedding: expected {want} "
                    f"dimensions, got {len(event.embedding)}")
    return None
