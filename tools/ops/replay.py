"""Copy a slice of one topic into another, exactly once, resumable.

A replay reads records of a source topic, selected by partition and offset range or by time
range, and writes them, keys, headers and timestamps kept, into a target topic (a pipeline
topic for a backfill, or a topic of its own). Each chunk of copied records and the source
position are committed in one Kafka transaction (the consume-transform-produce pattern): the
position lives as the committed offsets of a consumer group named after the job, so a replay
killed at any moment and started again continues where its last transaction ended, and a
``read_committed`` reader of the target sees every record exactly once.

Records the source's retention deletes before the replay reaches them cannot be copied; they
are counted (``expired``, per partition the offsets lost) and the replay goes on from the
partition's new beginning, so nothing disappears without being reported.

The job id is derived from what is replayed (source, target, partitions, range), so running
the same command again resumes; ``restart=True`` forgets the position. Each committed position
carries its partition's planned end (the offset metadata ``end=<offset>``), so a resumed job
stops where the first run planned to: records produced to the source since are not part of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import OffsetOutOfRangeError
from aiokafka.structs import ConsumerRecord

from ...client.kafka import admin_client, new_consumer, new_producer, topic_partitions
from ...schemas.settings import Settings
from ..errors import ToolsError

__all__ = ["ReplayError", "ReplayResult", "ReplaySpec", "keep_recorded_ends", "plan_replay",
           "run_replay"]

CHUNK_RECORDS = 500


class ReplayError(ToolsError):
    """A replay cannot run as asked (missing topic, writing into its own source, bad range)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplaySpec:
    """What to copy: a source topic slice and a target topic (full, prefixed names).

    Offsets are a half-open range ``[from_offset, to_offset)`` applied to every selected
    partition; times are milliseconds since the epoch, ``[since_ms, until_ms)``, compared with
    each record's timestamp. Both may be combined; ``None`` leaves that side open (a missing
    upper bound means the end of the partition when the job first starts; a resumed run
    keeps that end).

    Examples
    --------
    >>> spec = ReplaySpec(source="interactions", target="interactions-backfill",
    ...                   since_ms=1_700_000_000_000)
    >>> spec.job_id == ReplaySpec(source="interactions", target="interactions-backfill",
    ...                           since_ms=1_700_000_000_000).job_id
    True
    """

    source: str
    target: str
    partitions: tuple[int, ...] | None = None
    from_offset: int | None = None
    to_offset: int | None = None
    since_ms: int | None = None
    until_ms: int | None = None
    allow_same_topic: bool = False

    def __post_init__(self) -> None:
        if self.source == self.target and not self.allow_same_topic:
            raise ReplayError(f"refusing to replay {self.source!r} into itself "
                              "(pass allow_same_topic / --into-source to do it anyway)")
        for low, high, what in ((self.from_offset, self.to_offset, "offset"),
                                (self.since_ms, self.until_ms, "time")):
            if low is not None and low < 0:
                raise ReplayError(f"{what} range starts below zero: {low}")
            if low is not None and high is not None and high <= low:
                raise ReplayError(f"empty {what} range: [{low}, {high})")

    @property
    def job_id(self) -> str:
        """A stable id for this replay: the same spec resumes the same job."""
        parts = (self.source, self.target, self.partitions, self.from_offset, self.to_offset,
                 self.since_ms, self.until_ms)
        return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]

    def in_range(self, offset: int, timestamp_ms: int) -> bool:
        if self.from_offset is not None and offset < self.from_offset:
            return False
        if self.to_offset is not None and offset >= self.to_offset:
            return False
        if self.since_ms is not None and timestamp_ms < self.since_ms:
            return False
        return not (self.until_ms is not None and timestamp_ms >= self.until_ms)


@dataclass(slots=True)
class PartitionPlan:
    """The offsets one partition is read over: ``[start, end)``, ``resumed_from`` if resumed,
    ``expired`` the offsets after that position that retention deleted while it was stopped."""

    start: int
    end: int
    resumed_from: int | None = None
    expired: int = 0

    @property
    def remaining(self) -> int:
        return max(0, self.end - self.start)


@dataclass(slots=True)
class ReplayResult:
    """What a replay did: records copied (or counted, for a dry run), skipped as out of range,
    and ``expired``: offsets the source's retention deleted before the replay read them."""

    job_id: str
    dry_run: bool
    copied: int = 0
    skipped: int = 0
    expired: int = 0
    per_partition: dict[int, int] = field(default_factory=dict)
    resumed: bool = False
    seconds: float = 0.0


def _group_id(settings: Settings, spec: ReplaySpec) -> str:
    return f"{settings.kafka.topic_prefix}driftloop-replay-{spec.job_id}"


def _selected(spec: ReplaySpec, available: set[int] | None) -> list[TopicPartition]:
    if not available:
        raise ReplayError(f"source topic {spec.source!r} does not exist")
    wanted = sorted(available) if spec.partitions is None else list(spec.partitions)
    missing = sorted(set(wanted) - available)
    if missing:
        raise ReplayError(f"topic {spec.source!r} has no partition {missing} "
                          f"(it has {sorted(available)})")
    return [TopicPartition(spec.source, p) for p in wanted]


async def plan_replay(consumer: AIOKafkaConsumer, spec: ReplaySpec,
                      source_partitions: set[int] | None, *,
                      resume: bool = True) -> dict[TopicPartition, PartitionPlan]:
    """Resolve the spec to an offset range per partition (end offsets as of now; a resumed
    job's recorded ends replace them, see :func:`keep_recorded_ends`)."""
    tps = _selected(spec, source_partitions)
    beginnings = await consumer.beginning_offsets(tps)
    ends = await consumer.end_offsets(tps)
    starts = {tp: beginnings[tp] for tp in tps}
    stops = dict(ends)
    if spec.since_ms is not None:
        found = await consumer.offsets_for_times({tp: spec.since_ms for tp in tps})
        for tp in tps:
            starts[tp] = found[tp].offset if found[tp] is not None else ends[tp]
    if spec.from_offset is not None:
        starts = {tp: max(starts[tp], spec.from_offset) for tp in tps}
    if spec.to_offset is not None:
        stops = {tp: min(stops[tp], spec.to_offset) for tp in tps}
    plans = {tp: PartitionPlan(start=starts[tp], end=max(starts[tp], stops[tp])) for tp in tps}
    if resume:
        for tp, plan in plans.items():
            committed = await consumer.committed(tp)
            if committed is None:
                continue
            plan.resumed_from = committed
            if committed < plan.start:  # the log now begins after the recorded position
                plan.expired = plan.start - committed
            else:
                plan.start = min(committed, plan.end)
    return plans


def keep_recorded_ends(plans: dict[TopicPartition, PartitionPlan],
                       recorded: dict[TopicPartition, int]) -> None:
    """End each resumed partition where the job's first run planned to (``recorded``, from
    its committed positions), so records produced since are not copied.

    >>> tp = TopicPartition("t", 0)
    >>> plans = {tp: PartitionPlan(start=250, end=400, resumed_from=250)}
    >>> keep_recorded_ends(plans, {tp: 300})
    >>> plans[tp].end, plans[tp].remaining
    (300, 50)

    Offsets that retention deleted while the job was stopped count up to that end only:

    >>> plans = {tp: PartitionPlan(start=500, end=600, resumed_from=250, expired=250)}
    >>> keep_recorded_ends(plans, {tp: 300})
    >>> plans[tp].expired, plans[tp].remaining
    (50, 0)
    """
    for tp, plan in plans.items():
        if plan.resumed_from is None or tp not in recorded:
            continue
        end = min(plan.end, recorded[tp])
        if plan.expired:
            plan.expired = max(0, min(plan.start, end) - plan.resumed_from)
        plan.end = max(plan.start, end)


class _RateLimit:
    """At most ``per_second`` records a second, measured over the whole run."""

    def __init__(self, per_second: float | None) -> None:
        self.per_second = per_second
        self._started = time.monotonic()
        self._sent = 0

    async def wait(self, records: int) -> None:
        self._sent += records
        if not self.per_second:
            return
        ahead = self._sent / self.per_second - (time.monotonic() - self._started)
        if ahead > 0:
            await asyncio.sleep(ahead)


async def run_replay(
    settings: Settings,
    spec: ReplaySpec,
    *,
    dry_run: bool = False,
    rate: float | None = None,
    restart: bool = False,
    progress: Callable[[int, int], None] | None = None,
    stop: asyncio.Event | None = None,
) -> ReplayResult:
    """Copy the records ``spec`` selects; return counts. See the module docstring.

    ``progress(done, total)`` is called after each chunk (``total`` is the number of
    offsets planned, an upper bound when a time range filters records). Setting ``stop``
    ends the replay after the current transaction; running again resumes.
    """
    started = time.monotonic()
    group = _group_id(settings, spec)
    result = ReplayResult(job_id=spec.job_id, dry_run=dry_run)
    partitions = await _source_and_target(settings, spec, dry_run=dry_run)
    async with contextlib.AsyncExitStack() as clients:
        consumer = await clients.enter_async_context(_replay_consumer(settings, group))
        plans = await plan_replay(consumer, spec, partitions.get(spec.source),
                                  resume=not restart and not dry_run)
        result.resumed = any(plan.resumed_from is not None for plan in plans.values())
        if result.resumed:  # the group has positions, so its coordinator exists
            keep_recorded_ends(plans, await _recorded_ends(settings, group))
        result.expired = sum(plan.expired for plan in plans.values())
        writer = None
        if not dry_run:
            producer = await clients.enter_async_context(_replay_producer(settings, group))
            # Same partition count on both sides: keep each record's partition, so per-key
            # order and the partition a consumer reads it from do not change. Otherwise the
            # key decides.
            writer = _ChunkWriter(producer, spec.target, group, _RateLimit(rate),
                                  keep_partition=partitions[spec.target] == partitions[spec.source],
                                  ends={tp: plan.end for tp, plan in plans.items()})
        await _copy(consumer, spec, plans, writer, result, progress=progress, stop=stop)
    result.seconds = time.monotonic() - started
    return result


async def _source_and_target(settings: Settings, spec: ReplaySpec, *,
                             dry_run: bool) -> dict[str, set[int]]:
    """Partition ids of the source and target topics; a missing target is an error to copy."""
    partitions = await topic_partitions(settings, spec.source, spec.target)
    if not dry_run and spec.target not in partitions:
        raise ReplayError(f"target topic {spec.target!r} does not exist "
                          "(create it first: driftloop topics create, or your own tooling)")
    return partitions


END_NOTE = "end="


def _end_note(end: int) -> str:
    """The offset metadata a committed position carries: its partition's planned end.

    >>> _end_note(1200), _noted_end(_end_note(1200)), _noted_end(""), _noted_end("end=x")
    ('end=1200', 1200, None, None)
    """
    return f"{END_NOTE}{end}"


def _noted_end(metadata: str) -> int | None:
    """The end a position's metadata records; None for a position committed without one."""
    if not metadata.startswith(END_NOTE):
        return None
    try:
        return int(metadata.removeprefix(END_NOTE))
    except ValueError:
        return None


async def _recorded_ends(settings: Settings, group: str) -> dict[TopicPartition, int]:
    """The planned ends the job's committed positions carry (none for a new job)."""
    async with admin_client(settings) as admin:
        committed = await admin.list_consumer_group_offsets(group)
    ends = {tp: _noted_end(position.metadata or "") for tp, position in committed.items()}
    return {tp: end for tp, end in ends.items() if end is not None}


def _replay_consumer(settings: Settings, group: str) -> AIOKafkaConsumer:
    """Reads the source under the job's group, whose committed offsets are the position."""
    # No automatic reset: a position that retention deleted raises, and _read_chunk counts
    # what was lost before moving on (a reset would skip it without a word).
    return new_consumer(settings, group_id=group, isolation_level="read_committed",
                        auto_offset_reset="none",
                        max_partition_fetch_bytes=32 * 1024 * 1024,
                        fetch_max_bytes=64 * 1024 * 1024)


def _replay_producer(settings: Settings, group: str) -> AIOKafkaProducer:
    """Writes the target in transactions that also commit the job's position."""
    return new_producer(settings, transactional_id=f"{group}-tx",
                        enable_idempotence=True, max_request_size=32 * 1024 * 1024)


@dataclass(slots=True)
class _Chunk:
    """Records read in one fetch: those in range, and each partition's next offset."""

    records: list[tuple[TopicPartition, ConsumerRecord]] = field(default_factory=list)
    positions: dict[TopicPartition, int] = field(default_factory=dict)
    skipped: int = 0
    expired: int = 0


class _ChunkWriter:
    """Writes chunks to the target, one transaction each, with the source position."""

    def __init__(self, producer: AIOKafkaProducer, target: str, group: str,
                 limiter: _RateLimit, *, keep_partition: bool,
                 ends: dict[TopicPartition, int]) -> None:
        self.producer = producer
        self.ends = ends
        self.target = target
        self.group = group
        self.limiter = limiter
        self.keep_partition = keep_partition

    async def write(self, chunk: _Chunk) -> None:
        await self.limiter.wait(len(chunk.records))
        async with self.producer.transaction():
            for tp, record in chunk.records:
                await self.producer.send(
                    self.target, value=record.value, key=record.key,
                    headers=list(record.headers or ()), timestamp_ms=record.timestamp,
                    partition=tp.partition if self.keep_partition else None)
            await self.producer.send_offsets_to_transaction(
                {tp: (offset, _end_note(self.ends[tp])) for tp, offset in chunk.positions.items()},
                self.group)


async def _copy(consumer: AIOKafkaConsumer, spec: ReplaySpec,
                plans: dict[TopicPartition, PartitionPlan], writer: _ChunkWriter | None,
                result: ReplayResult, *, progress: Callable[[int, int], None] | None,
                stop: asyncio.Event | None) -> None:
    """Read the planned ranges chunk by chunk; write each (unless a dry run) and count it."""
    total = sum(plan.remaining for plan in plans.values())
    pending = {tp for tp, plan in plans.items() if plan.remaining > 0}
    consumer.assign(list(plans))
    for tp, plan in plans.items():
        consumer.seek(tp, plan.start)
    reached = {tp: plan.start for tp, plan in plans.items()}
    fresh = {tp: plan.start for tp, plan in plans.items() if plan.resumed_from is None}
    if writer is not None and fresh:
        # Record where a new job starts, so offsets that retention deletes before a resumed
        # run reaches them are counted as expired rather than silently left out.
        await writer.write(_Chunk(positions=fresh))
    while pending and not (stop is not None and stop.is_set()):
        chunk = await _read_chunk(consumer, spec, plans, pending)
        if writer is not None and chunk.positions:
            await writer.write(chunk)
        _count(result, chunk)
        reached.update(chunk.positions)
        if progress is not None:
            progress(sum(min(reached[tp], plan.end) - plan.start
                         for tp, plan in plans.items()), total)


async def _read_chunk(consumer: AIOKafkaConsumer, spec: ReplaySpec,
                      plans: dict[TopicPartition, PartitionPlan],
                      pending: set[TopicPartition]) -> _Chunk:
    """One fetch of the pending partitions; a partition whose end is reached leaves them."""
    chunk = _Chunk()
    try:
        batches = await consumer.getmany(*pending, timeout_ms=500, max_records=CHUNK_RECORDS)
    except OffsetOutOfRangeError as exc:
        await _skip_expired(consumer, exc.args[0], plans, chunk)
        batches = {}
    for tp, records in batches.items():
        end = plans[tp].end
        for record in records:
            if record.offset >= end:
                break
            chunk.positions[tp] = record.offset + 1
            if spec.in_range(record.offset, record.timestamp):
                chunk.records.append((tp, record))
            else:
                chunk.skipped += 1
    for tp in list(pending):
        # A read_committed reader skips control records, so the end is reached by
        # position, not by having seen the record at end - 1.
        if await consumer.position(tp) >= plans[tp].end:
            pending.discard(tp)
            chunk.positions[tp] = max(chunk.positions.get(tp, 0), plans[tp].end)
    return chunk


async def _skip_expired(consumer: AIOKafkaConsumer, fetched: dict[TopicPartition, int],
                        plans: dict[TopicPartition, PartitionPlan], chunk: _Chunk) -> None:
    """Move partitions whose position retention deleted to their new beginning, counting
    the offsets lost in range (the chunk's positions record the move, so a resumed replay does
    not count them twice)."""
    beginnings = await consumer.beginning_offsets(list(fetched))
    for tp, offset in fetched.items():
        first = beginnings[tp]
        if offset >= first:
            raise ReplayError(f"offset {offset} of {tp.topic} partition {tp.partition} is past "
                              "the end of its log: was the topic deleted and created again?")
        end = plans[tp].end
        chunk.expired += max(0, min(first, end) - offset)
        chunk.positions[tp] = min(first, end)
        consumer.seek(tp, min(first, end))


def _count(result: ReplayResult, chunk: _Chunk) -> None:
    """Add a chunk to the result's counts.

    >>> result = ReplayResult(job_id="j", dry_run=True)
    >>> tp = TopicPartition("t", 2)
    >>> _count(result, _Chunk(records=[(tp, None), (tp, None)], skipped=1))
    >>> result.copied, result.skipped, result.per_partition
    (2, 1, {2: 2})
    """
    for tp, _record in chunk.records:
        result.per_partition[tp.partition] = result.per_partition.get(tp.partition, 0) + 1
    result.copied += len(chunk.records)
    result.skipped += chunk.skipped
    result.expired += chunk.expired
