"""Reading and appending the ``model-versions`` topic with aiokafka.

The topic is the registry: :func:`read_version_log` folds it from the beginning up to its end
offsets (the state at call time); :func:`publish_versions` appends status events keyed by task
and waits for the broker's acknowledgement, so a caller may commit work after it returns.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import ConsumerRecord

from ..schemas.codec import decode, encode
from ..schemas.errors import ValidationError
from ..schemas.events import ModelVersion
from ..schemas.settings import Settings
from ..schemas.topics import Topic
from .errors import RegistryError
from .kafka_topics import topic_partitions
from .registry import VersionLog

__all__ = ["publish_versions", "read_to_end", "read_version_log"]

log = logging.getLogger(__name__)


async def read_to_end(settings: Settings, topic: Topic, *,
                      timeout: float = 30.0) -> list[ConsumerRecord]:
    """Every record of a registry-side topic (``model-versions``, ``serving-acks``) from the
    beginning up to its end offsets at call time, ordered by timestamp.

    A topic that does not exist is a :class:`RegistryError` naming it.
    """
    name = settings.kafka.topic(topic)
    consumer = AIOKafkaConsumer(**settings.kafka.client_kwargs(), enable_auto_commit=False,
                                group_id=None)
    await consumer.start()
    try:
        ids = (await topic_partitions(settings, name, timeout=0)).get(name)
        if not ids:
            raise RegistryError(f"topic {name} does not exist (run `driftloop topics create`)")
        assigned = [TopicPartition(name, p) for p in sorted(ids)]
        consumer.assign(assigned)
        await consumer.seek_to_beginning(*assigned)
        ends = await consumer.end_offsets(assigned)
        deadline = time.monotonic() + timeout
        pending = {tp for tp in assigned if ends[tp] > 0}
        records: list[ConsumerRecord] = []
        while pending:
            if time.monotonic() > deadline:
                raise RegistryError(f"timed out reading {name} after {timeout:.0f} s")
            batches = await consumer.getmany(*pending, timeout_ms=500)
            for messages in batches.values():
                records.extend(messages)
            for tp in list(pending):
                if await consumer.position(tp) >= ends[tp]:
                    pending.discard(tp)
        # One partition in the default layout; with more, timestamps order the fold.
        return sorted((r for r in records
                       if r.offset < ends[TopicPartition(r.topic, r.partition)]),
                      key=lambda r: (r.timestamp, r.partition, r.offset))
    finally:
        await consumer.stop()


async def read_version_log(settings: Settings, *, timeout: float = 30.0) -> VersionLog:
    """The registry as of now: every event on ``model-versions`` up to its end offsets.

    Undecodable records are logged, counted (``unreadable``) and skipped (the registry must
    stay readable); a topic that does not exist is an error naming it.
    """
    versions = VersionLog()
    for record in await read_to_end(settings, Topic.MODEL_VERSIONS, timeout=timeout):
        try:
            versions.apply(decode(record.value, ModelVersion))
        except ValidationError as exc:
            versions.unreadable += 1
            log.warning("skipping unreadable record %s[%d]@%d (%s): %s", record.topic,
                        record.partition, record.offset, exc.code, exc)
    return versions


async def publish_versions(producer: AIOKafkaProducer, settings: Settings,
                           events: Sequence[ModelVersion]) -> None:
    """Append events to ``model-versions`` (keyed by task) and wait until acknowledged."""
    topic = settings.kafka.topic(Topic.MODEL_VERSIONS)
    sent = [await producer.send(topic, encode(event), key=event.task.encode())
            for event in events]
    await asyncio.gather(*sent)


async def publish_with_new_producer(settings: Settings, events: Sequence[ModelVersion]) -> None:
    """Append events with a producer of their own (one-shot callers: CLI, tools, tests)."""
    producer = AIOKafkaProducer(**settings.kafka.client_kwargs(), acks="all")
    await producer.start()
    try:
        await publish_versions(producer, settings, events)
    finally:
        await producer.stop()
