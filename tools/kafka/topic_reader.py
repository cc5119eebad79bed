"""Read a topic for operators: all of it up to its end offsets as of now (a snapshot), or a
window of it bounded by record time and a record count."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from aiokafka import TopicPartition

from ...client.kafka import new_consumer, read_to_end_offsets, topic_partitions
from ...schemas.settings import Settings
from ..errors import ToolsError

__all__ = ["RawRecord", "WindowRead", "decode_all", "keep_latest", "read_snapshot", "read_window"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RawRecord:
    """One record as read: where it was and what it held."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()


async def read_snapshot(settings: Settings, topic: str, *, timeout: float = 120.0,
                        missing_ok: bool = True) -> list[RawRecord]:
    """Every committed record of ``topic`` up to the end offsets at call time.

    A topic that does not exist yields ``[]`` when ``missing_ok`` (a report of a fresh
    deployment), else raises :class:`ToolsError`.
    """
    try:
        records = await read_to_end_offsets(settings, topic, timeout=timeout)
    except TimeoutError as exc:
        raise ToolsError(str(exc)) from None
    if records is None:
        if missing_ok:
            return []
        raise ToolsError(f"topic {topic} does not exist")
    return [RawRecord(r.topic, r.partition, r.offset, r.timestamp, r.key, r.value,
                      tuple(r.headers or ())) for r in records]


@dataclass(frozen=True, slots=True)
class WindowRead:
    """What :func:`read_window` read, and how much of the window it left unread."""

    records: list[RawRecord]
    in_window: int
    """Offsets between the window's start and end offsets, over all partitions."""
    skipped: int = 0
    """Offsets of the window the cap left unread (the oldest)."""

    @property
    def capped(self) -> bool:
        """The cap cut the read: older records of the window were not read."""
        return self.skipped > 0


def keep_latest(lengths: dict[int, int], cap: int) -> dict[int, int]:
    """How many of the latest records to read per partition so that at most ``cap`` are
    read in all, shared fairly (a short partition leaves its share to the others).

    >>> keep_latest({0: 10, 1: 500, 2: 500}, 300)
    {0: 10, 1: 145, 2: 145}
    >>> keep_latest({0: 3, 1: 4}, 100)
    {0: 3, 1: 4}
    """
    kept: dict[int, int] = {}
    budget = max(0, cap)
    pending = sorted(lengths, key=lambda p: lengths[p])
    while pending:
        partition = pending.pop(0)
        share = budget // (len(pending) + 1)
        kept[partition] = min(lengths[partition], share)
        budget -= kept[partition]
    return dict(sorted(kept.items()))


async def read_window(settings: Settings, topic: str, *, since_ms: int | None = None,
                      until_ms: int | None = None, max_records: int | None = None,
                      keep: Callable[[RawRecord], bool] | None = None,
                      timeout: float = 120.0) -> WindowRead:
    """The committed records of ``topic`` whose record time is in ``[since_ms, until_ms]``
    (as far as the broker's time index says), at most ``max_records`` of them: the latest.

    The start is found with the broker's time index (``offsets_for_times``), so a window at
    the end of a long topic costs only the window; the end is the end offsets at call time,
    or the first offset after ``until_ms``. Record times are the producer's send times:
    a caller that filters on event times should widen the window by the slack it allows.
    ``keep`` drops records as they arrive (a task's key), so they are never held.
    A topic that does not exist is an empty read.
    """
    partitions = (await topic_partitions(settings, topic, timeout=0)).get(topic)
    if not partitions:
        return WindowRead([], 0)
    assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
    async with new_consumer(settings, isolation_level="read_committed",
                            max_partition_fetch_bytes=32 * 1024 * 1024,
                            fetch_max_bytes=64 * 1024 * 1024) as consumer:
        consumer.assign(assigned)
        starts = await consumer.beginning_offsets(assigned)
        ends = await consumer.end_offsets(assigned)
        if since_ms is not None:
            found = await consumer.offsets_for_times({tp: since_ms for tp in assigned})
            starts = {tp: ends[tp] if found[tp] is None else max(starts[tp], found[tp].offset)
                      for tp in assigned}
        if until_ms is not None:
            found = await consumer.offsets_for_times({tp: until_ms + 1 for tp in assigned})
            ends = {tp: ends[tp] if found[tp] is None else found[tp].offset for tp in assigned}
        lengths = {tp.partition: max(0, ends[tp] - starts[tp]) for tp in assigned}
        in_window = sum(lengths.values())
        skipped = 0
        if max_records is not None and in_window > max_records:
            kept = keep_latest(lengths, max_records)
            starts = {tp: ends[tp] - kept[tp.partition] for tp in assigned}
            skipped = in_window - sum(kept.values())
        records: list[RawRecord] = []
        pending = {tp for tp in assigned if ends[tp] > starts[tp]}
        for tp in pending:
            consumer.seek(tp, starts[tp])
        deadline = time.monotonic() + timeout
        while pending:
            if time.monotonic() > deadline:
                raise ToolsError(f"timed out reading {topic} after {timeout:.0f} s")
            batches = await consumer.getmany(*pending, timeout_ms=500)
            for tp, batch in batches.items():
                for r in batch:
                    if r.offset >= ends[tp]:
                        continue
                    record = RawRecord(r.topic, r.partition, r.offset, r.timestamp, r.key,
                                       r.value, tuple(r.headers or ()))
                    if keep is None or keep(record):
                        records.append(record)
            for tp in list(pending):
                if await consumer.position(tp) >= ends[tp]:
                    pending.discard(tp)
    return WindowRead(records, in_window, skipped)


def decode_all(records: list[RawRecord], decode: Callable[[bytes], list[T]],
               on_error: Callable[[RawRecord, Exception], None]) -> list[T]:
    """Decode every record with ``decode`` (one record -> several events for batches)."""
    out: list[T] = []
    for record in records:
        try:
            out.extend(decode(record.value or b""))
        except ValueError as exc:  # driftloop's ValidationError is a ValueError
            on_error(record, exc)
    return out
