"""SourceOrder on the real broker: where a partition starts, and reading skipped records back."""

from __future__ import annotations

import pytest
from aiokafka import TopicPartition
from kafka_helpers import produce

from driftloop.client.kafka import new_consumer
from driftloop.schemas import Topic
from driftloop.streams.source_order import MissedRecordsError, SourceOrder

pytestmark = [pytest.mark.kafka]


async def _commit(settings, group: str, tp: TopicPartition, offset: int) -> None:
    """Commit ``offset`` for ``group`` the way a worker of that group would."""
    async with new_consumer(settings, group_id=group) as consumer:
        consumer.assign([tp])
        await consumer.commit({tp: offset})


async def test_starts_are_committed_offsets_else_the_earliest_and_gaps_are_read_back(
        kafka_settings):
    topic = kafka_settings.kafka.topic(Topic.INTERACTIONS)
    for partition in (0, 1):
        await produce(kafka_settings, Topic.INTERACTIONS,
                      [f"p{partition}-{i}" for i in range(6)], partition=partition)
    await _commit(kafka_settings, "workers", TopicPartition(topic, 0), 2)
    order = SourceOrder(kafka_settings, group_id="workers", timeout_s=2.0)
    try:
        await order.learn_starts([(topic, 0), (topic, 1)])
        # Partition 0 starts where the group left it; partition 1, never committed, at 0.
        assert order.expected(topic, 0) == 2 and order.expected(topic, 1) == 0
        # Faust handed over offset 5 first: offsets 2-4 are missing and come back in order.
        assert order.gap(topic, 0, 5) == (2, 5)
        missed = await order.missed(topic, 0, 2, 5)
        assert [(r.offset, r.value) for r in missed] == [(2, b"p0-2"), (3, b"p0-3"),
                                                         (4, b"p0-4")]
        assert (order.gaps_seen, order.records_recovered) == (1, 3)
        # Offsets that hold nothing cannot be waited for forever: a clear error, in time.
        with pytest.raises(MissedRecordsError, match=r"offsets 6\.\.9 of .*\[0\] in 2 s"):
            await order.missed(topic, 0, 6, 10)
    finally:
        await order.close()
