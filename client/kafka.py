"""Kafka clients built from driftloop's settings, topic metadata, and reading a topic whole.

Every driftloop process talks to the broker through these three constructors, so the
connection and security options (``kafka.*`` settings, SASL and TLS included) are spelled
once, and so are driftloop's defaults: producers wait for every in-sync replica
(``acks="all"``), consumers never commit on a timer (offsets are committed after the effect,
by the code that made it) and read without a group unless given one.

A consumer without subscriptions holds no topic metadata, and ``consumer.topics()`` returns a
fresh snapshot without filling its own view in, so partition ids come from
:func:`topic_partitions`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import ConsumerRecord

from ..schemas.settings import Settings

__all__ = ["admin_client", "new_consumer", "new_producer", "read_to_end_offsets",
           "records_to_end", "topic_partitions"]

_UNKNOWN_TOPIC = 3  # Kafka error UNKNOWN_TOPIC_OR_PARTITION
_LEADER_NOT_AVAILABLE = 5


def new_producer(settings: Settings, **options: Any) -> AIOKafkaProducer:
    """A producer for the configured broker (``acks="all"`` unless ``options`` say otherwise).

    Not started: ``async with new_producer(settings) as producer:`` starts and stops it.
    """
    return AIOKafkaProducer(**settings.kafka.client_kwargs(), **({"acks": "all"} | options))


def new_consumer(settings: Settings, *topics: str, **options: Any) -> AIOKafkaConsumer:
    """A consumer for the configured broker, subscribed to ``topics`` if any are given.

    No consumer group and no commits on a timer unless ``options`` ask for them. Not
    started: ``async with new_consumer(settings) as consumer:`` starts and stops it.
    """
    defaults = {"group_id": None, "enable_auto_commit": False}
    return AIOKafkaConsumer(*topics, **settings.kafka.client_kwargs(), **(defaults | options))


@asynccontextmanager
async def admin_client(settings: Settings, **options: Any) -> AsyncIterator[AIOKafkaAdminClient]:
    """A started admin client for the configured broker, closed on the way out."""
    admin = AIOKafkaAdminClient(**settings.kafka.client_kwargs(), **options)
    await admin.start()
    try:
        yield admin
    finally:
        await admin.close()


async def topic_partitions(settings: Settings, *names: str,
                           timeout: float = 3.0) -> dict[str, set[int]]:
    """Partition ids of each named topic that exists (missing topics are left out).

    A topic created a moment ago can be unknown to the broker's metadata, or still electing
    its leader, for a short while after CreateTopics returns: both are asked again until
    ``timeout`` seconds have passed (so only the error path pays the wait).
    """
    deadline = time.monotonic() + timeout
    async with admin_client(settings) as admin:
        while True:
            described = await admin.describe_topics(list(names))
            settling = [t for t in described
                        if t["error_code"] in (_UNKNOWN_TOPIC, _LEADER_NOT_AVAILABLE)]
            if not settling or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)  # poll interval of the deadline-bound wait
    return {topic["topic"]: {p["partition"] for p in topic["partitions"]}
            for topic in described
            if topic["error_code"] != _UNKNOWN_TOPIC and topic["partitions"]}


async def read_to_end_offsets(settings: Settings, name: str, *,
                              timeout: float) -> list[ConsumerRecord] | None:
    """Every committed record of topic ``name`` from its beginning up to its end offsets at
    call time (a snapshot; ``read_committed``, so aborted transactions are never seen).

    None when the topic does not exist; :class:`TimeoutError` when the end is not reached
    within ``timeout`` seconds.
    """
    partitions = (await topic_partitions(settings, name, timeout=0)).get(name)
    if not partitions:
        return None
    records: list[ConsumerRecord] = []
    async for batch in records_to_end(settings, name, partitions, timeout=timeout):
        records.extend(batch)
    return records


async def records_to_end(settings: Settings, name: str, partitions: Iterable[int], *,
                         timeout: float) -> AsyncIterator[list[ConsumerRecord]]:
    """The committed records of ``partitions`` of topic ``name``, batch by batch, from their
    beginning up to their end offsets at call time (for a reader that keeps only what it
    needs of a large topic); :class:`TimeoutError` when the end is not reached within
    ``timeout`` seconds."""
    assigned = [TopicPartition(name, p) for p in sorted(partitions)]
    if not assigned:
        return
    async with new_consumer(settings, isolation_level="read_committed",
                            max_partition_fetch_bytes=32 * 1024 * 1024,
                            fetch_max_bytes=64 * 1024 * 1024) as consumer:
        consumer.assign(assigned)
        await consumer.seek_to_beginning(*assigned)
        ends = await consumer.end_offsets(assigned)
        pending = {tp for tp in assigned if ends[tp] > 0}
        deadline = time.monotonic() + timeout
        while pending:
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out reading {name} after {timeout:.0f} s")
            batches = await consumer.getmany(*pending, timeout_ms=500)
            for tp, batch in batches.items():
                kept = [r for r in batch if r.offset < ends[tp]]
                if kept:
                    yield kept
            for tp in list(pending):
                if await consumer.position(tp) >= ends[tp]:
                    pending.discard(tp)
