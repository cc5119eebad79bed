"""Reading a topic to its end: whole (``read_to_end_offsets``) or some partitions batch by
batch (``records_to_end``), on the real broker."""

from __future__ import annotations

from kafka_helpers import produce

from driftloop.client.kafka import read_to_end_offsets, records_to_end
from driftloop.schemas.settings import Settings
from driftloop.schemas.topics import Topic


async def test_a_topic_is_read_whole_or_by_partition_up_to_its_end(
        kafka_settings: Settings) -> None:
    for partition in range(3):
        await produce(kafka_settings, Topic.LABEL_REQUESTS,
                      [f"p{partition}-{k}" for k in range(4)], partition=partition)
    name = kafka_settings.kafka.topic(Topic.LABEL_REQUESTS)

    whole = await read_to_end_offsets(kafka_settings, name, timeout=30)
    assert whole is not None and len(whole) == 12

    batches = [batch async for batch in records_to_end(kafka_settings, name, {1, 2},
                                                       timeout=30)]
    values = [r.value.decode() for batch in batches for r in batch]
    assert sorted(values) == sorted(f"p{p}-{k}" for p in (1, 2) for k in range(4))
    assert [v for v in values if v.startswith("p1")] == [f"p1-{k}" for k in range(4)]
    assert [batch async for batch in records_to_end(kafka_settings, name, set(),
                                                    timeout=30)] == []
    assert await read_to_end_offsets(kafka_settings, "no-such-topic", timeout=5) is None
