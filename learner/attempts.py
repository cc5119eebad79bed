"""How often each training request was tried, kept where the request's offset is: in Kafka.

Before a request trains, the learner commits the request's *own* offset (not the next one)
with metadata naming the request and the attempt; after a failure it commits the same offset
again with the error's last frames. A learner that restarts (after a crash, an OOM kill or a
rebalance, on this machine or another) reads that metadata back from the consumer group and
knows the request has failed before: after ``learner.max_attempts`` attempts it becomes a
dead letter instead of stopping every request behind it. No local file is involved, so the
count follows the partition to whichever learner owns it.

Examples
--------
>>> note = AttemptNote.parse('{"request": "r1", "attempt": 2, "error": "OSError: gone"}')
>>> note.attempt, note.error
(2, 'OSError: gone')
>>> AttemptNote.parse("") is None, AttemptNote.parse("not json") is None
(True, True)
>>> len(AttemptNote("r1", 1, "x" * 10_000).encode()) <= METADATA_BYTES
True
"""

from __future__ import annotations

import logging
import traceback
from dataclasses import dataclass

import orjson
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import CommitFailedError, IllegalStateError
from aiokafka.structs import OffsetAndMetadata, TopicPartition

from .errors import PartitionMovedError

__all__ = ["METADATA_BYTES", "AttemptLedger", "AttemptNote", "commit_owned", "ensure_owned",
           "error_tail"]

log = logging.getLogger(__name__)

METADATA_BYTES = 3_500
"""Room for the note in a commit (the broker's ``offset.metadata.max.bytes`` is 4,096)."""


@dataclass(frozen=True, slots=True)
class AttemptNote:
    """What a commit's metadata says about the request at that offset."""

    request: str
    attempt: int
    error: str = ""

    @classmethod
    def parse(cls, metadata: str | None) -> AttemptNote | None:
        """The note in a commit's metadata; None when there is none (or it is not ours)."""
        if not metadata:
            return None
        try:
            data = orjson.loads(metadata)
            return cls(str(data["request"]), int(data["attempt"]), str(data.get("error", "")))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return None

    def encode(self) -> str:
        """JSON within :data:`METADATA_BYTES` (the error is cut from the front: its end,
        the innermost frames and the message, is what explains it)."""
        room = METADATA_BYTES - len(self.request.encode()) - 64
        error = self.error.encode()[-max(room, 0):].decode("utf-8", "ignore")
        return orjson.dumps({"request": self.request, "attempt": self.attempt,
                             "error": error}).decode()


def error_tail(exc: BaseException, frames: int = 4) -> str:
    """The exception's last ``frames`` frames and its message, as a traceback prints them."""
    lines = traceback.format_exception(type(exc), exc, exc.__traceback__, limit=-frames)
    return "".join(lines).strip()


class AttemptLedger:
    """Attempts of the requests on a consumer's partitions, read from and written to its
    group's committed offsets."""

    def __init__(self, consumer: AIOKafkaConsumer, admin: AIOKafkaAdminClient,
                 group_id: str) -> None:
        self.consumer, self.admin, self.group_id = consumer, admin, group_id

    async def previous(self, tp: TopicPartition, offset: int, request_id: str) -> AttemptNote:
        """The last attempt recorded for the request at ``offset`` (attempt 0: none)."""
        committed = await self.admin.list_consumer_group_offsets(self.group_id,
                                                                 partitions=[tp])
        entry = committed.get(tp)
        note = AttemptNote.parse(entry.metadata) if entry is not None else None
        if entry is None or entry.offset != offset or note is None or note.request != request_id:
            return AttemptNote(request_id, 0)
        return note

    async def begin(self, tp: TopicPartition, offset: int, request_id: str,
                    previous: AttemptNote) -> AttemptNote:
        """Record one more attempt before training; return it."""
        note = AttemptNote(request_id, previous.attempt + 1, previous.error)
        await self._commit(tp, offset, note)
        return note

    async def failed(self, tp: TopicPartition, offset: int, note: AttemptNote,
                     exc: BaseException) -> AttemptNote:
        """Record how an attempt failed; return the note with the error."""
        failed = AttemptNote(note.request, note.attempt, error_tail(exc))
        await self._commit(tp, offset, failed)
        return failed

    async def _commit(self, tp: TopicPartition, offset: int, note: AttemptNote) -> None:
        await commit_owned(self.consumer, tp, OffsetAndMetadata(offset, note.encode()))


def ensure_owned(consumer: AIOKafkaConsumer, tp: TopicPartition) -> None:
    """:class:`PartitionMovedError` unless ``tp`` is still assigned to this consumer."""
    if tp not in consumer.assignment():
        raise PartitionMovedError(f"{tp.topic}[{tp.partition}] went to another learner")


async def commit_owned(consumer: AIOKafkaConsumer, tp: TopicPartition,
                       offset: int | OffsetAndMetadata) -> None:
    """Commit ``offset`` for ``tp``; :class:`PartitionMovedError` when a rebalance took the
    partition away (the commit is refused: the new owner starts from the last commit)."""
    ensure_owned(consumer, tp)
    try:
        await consumer.commit({tp: offset})
    except (CommitFailedError, IllegalStateError) as exc:
        raise PartitionMovedError(f"{tp.topic}[{tp.partition}]: commit refused after a "
                                  f"rebalance ({exc})") from exc
