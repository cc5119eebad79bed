"""SourceOrder: where a partition starts and reading skipped records back, on the real broker;
the catch-up's decisions without one."""

from __future__ import annotations

import pytest
from aiokafka import TopicPartition
from kafka_helpers import produce

from driftloop.client.kafka import new_consumer
from driftloop.schemas import Topic
from driftloop.schemas.settings import Settings
from driftloop.streams.source_order import MissedRecordsError, SourceOrder


async def _commit(settings, group: str, tp: TopicPartition, offset: int) -> None:
    """Commit ``offset`` for ``group`` the way a worker of that group would."""
    async with new_consumer(settings, group_id=group) as consumer:
        consumer.assign([tp])
        await consumer.commit({tp: offset})


@pytest.mark.kafka
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


class _Broker(SourceOrder):
    """A SourceOrder whose broker answers from dicts (no broker needed)."""

    committed: dict = {}
    records: list | Exception = []

    async def committed_offsets(self, tps):  # type: ignore[no-untyped-def]
        if isinstance(self.committed, Exception):
            raise self.committed
        return {tp: self.committed[tp] for tp in tps if tp in self.committed}

    async def earliest_offsets(self, tps):  # type: ignore[no-untyped-def]
        return {tp: 0 for tp in tps}

    async def missed(self, topic, partition, first, end):  # type: ignore[no-untyped-def]
        if isinstance(self.records, Exception):
            raise self.records
        return [r for r in self.records if first <= r < end]


async def test_skipped_records_come_back_in_order_and_a_failure_to_read_them_is_an_error():
    order = _Broker(Settings(), group_id="workers")
    order.committed = {TopicPartition("ix", 0): 2}
    order.records = [2, 3, 4]
    assert await order.skipped_before("ix", 0, 5, lambda: [("ix", 1)]) == [2, 3, 4]
    assert order.expected("ix", 1) == 0  # the assignment's other partitions learnt too
    assert await order.skipped_before("ix", 1, 0, lambda: []) == []  # in order: nothing
    order.handled("ix", 1, 0)  # the step applied it
    order.records = OSError("broker gone")
    with pytest.raises(MissedRecordsError, match=r"offsets 1\.\.2 of ix\[1\] were skipped"):
        await order.skipped_before("ix", 1, 3, lambda: [])


async def test_starts_that_cannot_be_learnt_are_asked_again_later_and_never_move_back():
    order = _Broker(Settings(), group_id="workers")
    order.committed = OSError("no coordinator")
    assert await order.skipped_before("ix", 0, 7, lambda: []) == []  # goes on, no start
    order.committed = {TopicPartition("ix", 0): 2}
    await order.skipped_before("ix", 0, 8, lambda: [])
    assert order.expected("ix", 0) is None  # not asked again within 10 s
    order.handled("ix", 0, 8)
    await order.learn_starts([("ix", 0)])  # a start learnt late never moves a partition back
    assert order.expected("ix", 0) == 9
