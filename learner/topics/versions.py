"""Reading and appending the ``model-versions`` topic with aiokafka.

The topic is the registry: :func:`read_version_log` folds it from the beginning up to its end
offsets (the state at call time); :func:`publish_versions` appends status events keyed by task
and waits for the broker's acknowledgement, so a caller may commit work after it returns.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.structs import ConsumerRecord

from ...client.kafka import new_producer, read_to_end_offsets
from ...schemas.codec import decode, encode
from ...schemas.errors import ValidationError
from ...schemas.events import ModelVersion
from ...schemas.settings import Settings
from ...schemas.topics import Topic
from ..errors import RegistryError
from ..registry.version_log import VersionLog
from ..trust import Trust

__all__ = ["publish_versions", "read_to_end", "read_version_log"]

log = logging.getLogger(__name__)


async def read_to_end(settings: Settings, topic: Topic, *,
                      timeout: float = 30.0) -> list[ConsumerRecord]:
    """Every record of a registry-side topic (``model-versions``, ``serving-acks``) from the
    beginning up to its end offsets at call time, ordered by timestamp.

    A topic that does not exist is a :class:`RegistryError` naming it.
    """
    name = settings.kafka.topic(topic)
    try:
        records = await read_to_end_offsets(settings, name, timeout=timeout)
    except TimeoutError as exc:
        raise RegistryError(str(exc)) from None
    if records is None:
        raise RegistryError(f"topic {name} does not exist (run `driftloop topics create`)")
    # One partition in the default layout; with more, timestamps order the fold.
    return sorted(records, key=lambda r: (r.timestamp, r.partition, r.offset))


async def read_version_log(settings: Settings, *, timeout: float = 30.0) -> VersionLog:
    """The registry as of now: every event on ``model-versions`` up to its end offsets.

    Undecodable records are logged, counted (``unreadable``) and skipped (the registry must
    stay readable), and so are events a signing deployment cannot verify (``untrusted``):
    a forged event never becomes a parent. A topic that does not exist is an error naming it.
    """
    versions = VersionLog()
    trust = Trust(settings)
    for record in await read_to_end(settings, Topic.MODEL_VERSIONS, timeout=timeout):
        try:
            event = decode(record.value, ModelVersion)
        except ValidationError as exc:
            versions.unreadable += 1
            log.warning("skipping unreadable record %s[%d]@%d (%s): %s", record.topic,
                        record.partition, record.offset, exc.code, exc)
            continue
        if trust.signed_by_us(event):
            versions.apply(event)
        else:
            versions.untrusted += 1
    return versions


async def publish_versions(producer: AIOKafkaProducer, settings: Settings,
                           events: Sequence[ModelVersion]) -> None:
    """Append events to ``model-versions`` (keyed by task) and wait until acknowledged; each
    is signed first when the deployment signs (``trust.signing_key``)."""
    topic = settings.kafka.topic(Topic.MODEL_VERSIONS)
    trust = Trust(settings)
    sent = [await producer.send(topic, encode(trust.sign(event)), key=event.task.encode())
            for event in events]
    await asyncio.gather(*sent)


async def publish_with_new_producer(settings: Settings, events: Sequence[ModelVersion]) -> None:
    """Append events with a producer of their own (one-shot callers: CLI, tools, tests)."""
    async with new_producer(settings) as producer:
        await publish_versions(producer, settings, events)
