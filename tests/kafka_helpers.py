"""Produce to and consume from the real test broker, waiting on conditions, never on sleeps.

Import from tests as ``from kafka_helpers import consume_until, produce`` (pytest puts the
``tests`` folder on ``sys.path`` because ``tests/conftest.py`` lives there).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Iterable, Sequence

from aiokafka.structs import ConsumerRecord
from waiting import wait_until_async

from driftloop.client.kafka import new_consumer, new_producer
from driftloop.schemas.settings import Settings
from driftloop.schemas.topics import Topic

__all__ = [
    "BROKER_HEAP",
    "BROKER_JVM_OPTIONS",
    "BROKER_START_TIMEOUT_S",
    "consume_until",
    "free_port",
    "free_port_pair",
    "produce",
    "resolve_topic",
]

# Test brokers (the session's and the few tests that need their own) use these.
BROKER_HEAP = "384m"
BROKER_START_TIMEOUT_S = 120.0
# C1 only and the serial collector: the broker starts sooner and takes less CPU from the
# other processes of a 2-core machine; a test broker never runs long enough for C2 to pay.
BROKER_JVM_OPTIONS = ("-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC")

Records = Sequence[ConsumerRecord]


def free_port() -> int:
    """A TCP port nothing listens on right now (the kernel's pick for port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def free_port_pair() -> tuple[int, int]:
    """Two distinct free ports: a broker's client and controller listeners."""
    first = free_port()
    second = free_port()
    while second == first:
        second = free_port()
    return first, second


def resolve_topic(settings: Settings, topic: Topic | str) -> str:
    """A driftloop topic (``Topic`` or its bare name) gets the prefix; other names stay as given."""
    if isinstance(topic, Topic) or topic in {t.value for t in Topic}:
        return settings.kafka.topic(topic)
    return topic


def _as_bytes(value: bytes | str | None) -> bytes | None:
    return value.encode() if isinstance(value, str) else value


async def produce(settings: Settings, topic: Topic | str, values: Iterable[bytes | str],
                  key: bytes | str | None = None, *, partition: int | None = None) -> int:
    """Send ``values`` (in order, one message each) and wait until the broker acked all.

    On ``interactions`` and ``feedback`` pass ``key=<task>`` like every producer must: the
    worker dead-letters an event read off its task's partition (``wrong_partition``), so
    ``partition=`` there is only for tests of that rule. Returns the number of messages sent.
    """
    async with new_producer(settings, max_request_size=20 * 1024 * 1024,
                            linger_ms=0) as producer:
        name = resolve_topic(settings, topic)
        pending = [await producer.send(name, _as_bytes(value), key=_as_bytes(key),
                                       partition=partition) for value in values]
        await asyncio.gather(*pending)
        return len(pending)


async def consume_until(settings: Settings, topic: Topic | str,
                        until: int | Callable[[list[ConsumerRecord]], bool],
                        timeout: float = 15.0) -> list[ConsumerRecord]:
    """Read ``topic`` from the beginning until a condition holds; fail after ``timeout``.

    ``until`` is a number of records, or a predicate called with every record read so far.
    Records of all partitions are returned in arrival order (per-partition order is kept).
    Raises :class:`TimeoutError` naming what was seen when the deadline passes.
    """
    if isinstance(until, int):
        count = until

        def done(records: list[ConsumerRecord]) -> bool:
            return len(records) >= count
    else:
        done = until
    consumer = new_consumer(settings, resolve_topic(settings, topic), auto_offset_reset="earliest",
                            fetch_max_bytes=64 * 1024 * 1024,
                            max_partition_fetch_bytes=32 * 1024 * 1024)
    async with consumer:
        records: list[ConsumerRecord] = []

        async def read_until_done() -> bool:
            if not done(records):
                batches = await consumer.getmany(timeout_ms=500)
                for batch in batches.values():
                    records.extend(batch)
            return done(records)

        # getmany blocks up to 0.5 s itself: no poll period on top
        await wait_until_async(read_until_done, timeout,
                               f"condition on {resolve_topic(settings, topic)}", interval=0,
                               seen=lambda: f"{len(records)} records read")
        return records
