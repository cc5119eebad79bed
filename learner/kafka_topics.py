"""Topic metadata from the broker, asked through the admin client.

A consumer without subscriptions holds no topic metadata, and ``consumer.topics()`` returns a
fresh snapshot without filling its own view in, so partition ids come from here.
"""

from __future__ import annotations

import asyncio
import time

from aiokafka.admin import AIOKafkaAdminClient

from ..schemas.settings import Settings

__all__ = ["topic_partitions"]

_UNKNOWN_TOPIC = 3  # Kafka error UNKNOWN_TOPIC_OR_PARTITION
_LEADER_NOT_AVAILABLE = 5


async def topic_partitions(settings: Settings, *names: str,
                           timeout: float = 3.0) -> dict[str, set[int]]:
    """Partition ids of each named topic that exists (missing topics are left out).

    A topic created a moment ago can be unknown to the broker's metadata, or still electing
    its leader, for a short while after CreateTopics returns: both are asked again until
    ``timeout`` seconds have passed (so only the error path pays the wait).
    """
    admin = AIOKafkaAdminClient(**settings.kafka.client_kwargs())
    await admin.start()
    deadline = time.monotonic() + timeout
    try:
        while True:
            described = await admin.describe_topics(list(names))
            settling = [t for t in described
                        if t["error_code"] in (_UNKNOWN_TOPIC, _LEADER_NOT_AVAILABLE)]
            if not settling or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)  # poll interval of the deadline-bound wait
    finally:
        await admin.close()
    return {topic["topic"]: {p["partition"] for p in topic["partitions"]}
            for topic in described
            if topic["error_code"] != _UNKNOWN_TOPIC and topic["partitions"]}
