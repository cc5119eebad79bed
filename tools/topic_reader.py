"""Read a topic from its beginning to its end offsets as of now (a snapshot), for operators."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from aiokafka import AIOKafkaConsumer, TopicPartition

from ..learner.kafka_topics import topic_partitions
from ..schemas.settings import Settings
from .errors import ToolsError

__all__ = ["RawRecord", "read_snapshot"]

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
    partitions = (await topic_partitions(settings, topic, timeout=0)).get(topic)
    if not partitions:
        if missing_ok:
            return []
        raise ToolsError(f"topic {topic} does not exist")
    tps = [TopicPartition(topic, p) for p in sorted(partitions)]
    consumer = AIOKafkaConsumer(**settings.kafka.client_kwargs(), enable_auto_commit=False,
                                isolation_level="read_committed",
                                max_partition_fetch_bytes=32 * 1024 * 1024,
                                fetch_max_bytes=64 * 1024 * 1024)
    await consumer.start()
    records: list[RawRecord] = []
    try:
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        pending = {tp for tp in tps if ends[tp] > 0}
        deadline = time.monotonic() + timeout
        while pending:
            if time.monotonic() > deadline:
                raise ToolsError(f"timed out reading {topic} after {timeout:.0f} s")
            batches = await consumer.getmany(*pending, timeout_ms=500)
            for tp, batch in batches.items():
                records.extend(RawRecord(r.topic, r.partition, r.offset, r.timestamp, r.key,
                                         r.value, tuple(r.headers or ()))
                               for r in batch if r.offset < ends[tp])
            for tp in list(pending):
                if await consumer.position(tp) >= ends[tp]:
                    pending.discard(tp)
    finally:
        await consumer.stop()
    return records


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
