"""Every record of a source partition is applied, in offset order, even when Faust skips one.

The worker's exactly-once rests on reading each source partition in order: a task's state
remembers the last offset it applied per partition and skips anything at or below it as a
redelivery (:meth:`~driftloop.streams.pipeline.TaskState.seen`). faust-streaming can break
that order around a rebalance or a restart: measured here, a worker that took over a partition
while the stream was live applied offset 3 during its recovery and never saw offset 2 (the
fetcher had handed it over while the flow was suspended, and the seek to the committed offset
did not bring it back). Offset 2's events were lost for good, with nothing in the logs.

:class:`SourceOrder` keeps, per source partition, the next offset the worker expects: the
group's committed offset when the partition is first read in an assignment, then one past
each record handled. A record beyond it means records were skipped; :meth:`SourceOrder.missed`
reads them from the broker with a consumer of its own (no group, nothing committed) so the
worker applies them, in order, before the record in hand, within the same step. Records the
state already holds are skipped by the state as usual. Offsets that hold no record (a
transaction marker, a compacted or expired record) come back empty and are simply passed.

The same bookkeeping tells the stall watchdog (:mod:`~driftloop.streams.watchdog`) how far
each partition was handled: the offset before the next one expected.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from ..client.kafka import admin_client, new_consumer
from ..schemas.settings import Settings
from .errors import StreamsError

__all__ = ["MissedRecordsError", "SourceOrder"]

log = logging.getLogger(__name__)


class MissedRecordsError(StreamsError):
    """Records a partition skipped could not be read back before the deadline."""


@dataclass
class SourceOrder:
    """The next offset expected on each source partition, and the records Faust skipped.

    Parameters
    ----------
    settings
        Where the broker is (its clients come from :mod:`driftloop.client.kafka`).
    group_id
        The worker's consumer group: its committed offsets are where a partition starts.
    timeout_s
        How long reading skipped records back may take before :class:`MissedRecordsError`.

    Examples
    --------
    The bookkeeping, without a broker (a partition whose start is known; the worker learns
    starts with :meth:`learn_starts`):

    >>> order = SourceOrder(Settings(), group_id="driftloop-worker")
    >>> order.start("interactions", 0, 10)
    >>> order.check("interactions", 1, 0), order.check("interactions", 0, 10)
    (True, False)
    >>> order.gap("interactions", 0, 10), order.gap("interactions", 0, 12)
    (None, (10, 12))
    >>> order.handled("interactions", 0, 12)
    >>> order.gap("interactions", 0, 13), order.gap("interactions", 0, 11)
    (None, None)
    >>> order.forget([("interactions", 0)])
    >>> order.expected("interactions", 0) is None
    True
    """

    settings: Settings
    group_id: str
    timeout_s: float = 30.0
    records_recovered: int = 0
    gaps_seen: int = 0
    _next: dict[tuple[str, int], int] = field(default_factory=dict)
    _reader: AIOKafkaConsumer | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _starts_retry_at: float = 0.0

    # -- bookkeeping (no broker) ---------------------------------------------------------
    def expected(self, topic: str, partition: int) -> int | None:
        """The next offset expected on the partition (None: not known yet)."""
        return self._next.get((topic, partition))

    def done(self, topic: str, partition: int) -> int | None:
        """The last offset handled, or before the partition's start (None: not known yet)."""
        expected = self._next.get((topic, partition))
        return None if expected is None else expected - 1

    def start(self, topic: str, partition: int, offset: int | None) -> None:
        """Where a partition starts in this assignment (its committed offset)."""
        if offset is not None and offset >= 0:
            self._next[(topic, partition)] = offset

    def check(self, topic: str, partition: int, offset: int) -> bool:
        """Whether the record needs a look before it is applied: its partition's start is
        not known yet, or records were skipped before it (the hot path: one dict read)."""
        expected = self._next.get((topic, partition))
        return expected is None or offset > expected

    def gap(self, topic: str, partition: int, offset: int) -> tuple[int, int] | None:
        """The offsets ``[first, offset)`` not seen before ``offset``, or None."""
        expected = self._next.get((topic, partition))
        if expected is None or offset <= expected:
            return None
        return expected, offset

    def handled(self, topic: str, partition: int, offset: int) -> None:
        """Record a handled record; a redelivery of an older one never moves it back."""
        key = (topic, partition)
        if offset + 1 > self._next.get(key, -1):
            self._next[key] = offset + 1

    def forget(self, partitions: list[tuple[str, int]]) -> None:
        """Drop revoked partitions: a later assignment starts from the committed offset."""
        for key in partitions:
            self._next.pop(key, None)

    # -- the broker ----------------------------------------------------------------------
    async def skipped_before(self, topic: str, partition: int, offset: int,
                             assigned: Callable[[], Iterable[tuple[str, int]]]) -> list[Any]:
        """The records of the partition Faust skipped before ``offset``, read back from the
        broker, to apply first (empty on the hot path: one dict read).

        A partition read for the first time in an assignment learns where it starts, with
        every partition of ``assigned()`` (one request for all); when that fails the record
        goes on without a start, and the starts are asked again 10 s later. Raises
        :class:`MissedRecordsError` when skipped records cannot be read back: applying the
        record in hand would lose them.
        """
        if not self.check(topic, partition, offset):
            return []
        if self.expected(topic, partition) is None:
            await self._try_learn_starts(topic, partition, assigned)
        gap = self.gap(topic, partition, offset)
        if gap is None:
            return []
        first, end = gap
        try:
            missed = await self.missed(topic, partition, first, end)
        except Exception as exc:
            raise MissedRecordsError(
                f"offsets {first}..{end - 1} of {topic}[{partition}] were skipped and could not "
                f"be read back ({exc})") from exc
        log.warning("%s[%d]: offset %d arrived before offsets %d..%d; applying the %d records "
                    "read back from the broker first", topic, partition, offset, first,
                    end - 1, len(missed))
        return missed

    async def _try_learn_starts(self, topic: str, partition: int,
                                assigned: Callable[[], Iterable[tuple[str, int]]]) -> None:
        now = time.monotonic()
        if now < self._starts_retry_at:
            return
        try:
            partitions = list(assigned())
        except Exception:  # between generations: this partition at least
            partitions = []
        try:
            await self.learn_starts(sorted({*partitions, (topic, partition)}))
        except Exception as exc:
            self._starts_retry_at = now + 10.0
            log.warning("could not read where the source partitions start (%s): records "
                        "skipped before the first one read are not detected", exc)

    async def learn_starts(self, partitions: list[tuple[str, int]]) -> None:
        """Set where each partition not known yet starts: the group's committed offset, else
        the earliest the broker keeps (one request each for all of them). A partition
        handled while the answer was on its way keeps the position it has."""
        tps = [TopicPartition(t, p) for t, p in partitions if (t, p) not in self._next]
        if not tps:
            return
        starts = await self.committed_offsets(tps)
        rest = [tp for tp in tps if tp not in starts]
        if rest:
            starts.update(await self.earliest_offsets(rest))
        for tp, offset in starts.items():
            if (tp.topic, tp.partition) not in self._next:
                self.start(tp.topic, tp.partition, offset)

    async def committed_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        """The group's committed offsets of those partitions that have one."""
        async with admin_client(self.settings) as admin:
            committed = await admin.list_consumer_group_offsets(self.group_id, partitions=tps)
        return {tp: found.offset for tp, found in committed.items()
                if found is not None and found.offset >= 0}

    async def earliest_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        """The earliest offset the broker keeps of each partition."""
        async with self._lock:
            return await (await self._open()).beginning_offsets(tps)

    async def missed(self, topic: str, partition: int, first: int, end: int) -> list[Any]:
        """The records at offsets ``[first, end)`` of the partition, read from the broker."""
        async with self._lock:  # one reader, one partition at a time
            reader = await self._open()
            tp = TopicPartition(topic, partition)
            reader.assign([tp])
            reader.seek(tp, first)
            records: list[Any] = []
            deadline = time.monotonic() + self.timeout_s
            while True:
                # Ask the position first: offsets without a record (markers, compacted or
                # expired records) move it past ``end`` with nothing returned.
                if await reader.position(tp) >= end:
                    break
                if time.monotonic() > deadline:
                    raise MissedRecordsError(
                        f"could not read back offsets {first}..{end - 1} of {topic}[{partition}] "
                        f"in {self.timeout_s:.0f} s")
                batch = await reader.getmany(tp, timeout_ms=500)
                for record in batch.get(tp, ()):
                    if first <= record.offset < end:
                        records.append(record)
            self.gaps_seen += 1
            self.records_recovered += len(records)
            return records

    async def _open(self) -> AIOKafkaConsumer:
        if self._reader is None:
            reader = new_consumer(self.settings, auto_offset_reset="earliest")
            await reader.start()
            self._reader = reader
        return self._reader

    async def close(self) -> None:
        if self._reader is not None:
            await self._reader.stop()
            self._reader = None
