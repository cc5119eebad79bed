"""Create the worker's changelog topics before Faust starts, and wait until they are visible.

Faust can declare them itself (``topic_allow_declare``), but it does so while the agents are
already consuming: the first table write can then see a changelog with no partitions in the
consumer's metadata and crash the agent (``PartitionsMismatch``). Creating them up front,
with the partition count of the source topics, removes the race.

A changelog made by an older version keeps the topic configs it was created with; the
worker brings the ones it declares up to date (``segment.ms`` and ``segment.bytes`` decide
how much a restarted worker reads back), keeping any other config an operator set.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import TopicAlreadyExistsError

from ..client.kafka import admin_client
from ..schemas.settings import Settings
from .errors import StreamsError

__all__ = ["ensure_changelogs"]

log = logging.getLogger(__name__)

_DYNAMIC_TOPIC_CONFIG = 1
"""DescribeConfigs' ``config_source`` of a value set on the topic itself."""


async def ensure_changelogs(settings: Settings, tables: Iterable[Any], *,
                            timeout: float = 60.0) -> list[str]:
    """Create each table's changelog topic (idempotent); return their names."""
    wanted = {t.changelog_topic.get_topic_name():
              (t.partitions, {k: str(v) for k, v in t.changelog_topic.config.items()})
              for t in tables}
    async with admin_client(settings) as admin:
        present = set(await admin.list_topics())
        missing = [NewTopic(name, partitions, 1, topic_configs=configs)
                   for name, (partitions, configs) in wanted.items() if name not in present]
        if missing:
            try:
                await admin.create_topics(missing)
            except TopicAlreadyExistsError:
                pass  # another worker of the group created them first
        existing = {name: configs for name, (_, configs) in wanted.items() if name in present}
        if existing:
            await _update_configs(admin, existing)
        deadline = time.monotonic() + timeout
        while True:
            described = await admin.describe_topics(list(wanted))
            ready = {d["topic"] for d in described
                     if not d.get("error_code") and len(d.get("partitions", ())) ==
                     wanted[d["topic"]][0]}
            if ready == set(wanted):
                return sorted(wanted)
            if time.monotonic() > deadline:
                raise StreamsError(f"changelog topics not ready after {timeout} s: "
                                   f"{sorted(set(wanted) - ready)}")
            await asyncio.sleep(0.2)


async def _update_configs(admin: AIOKafkaAdminClient, wanted: dict[str, dict[str, str]]) -> None:
    """Set the declared configs on changelogs that differ; AlterConfigs replaces a topic's
    whole set, so the values already set on the topic go back in beside ours."""
    responses = await admin.describe_configs(
        [ConfigResource(ConfigResourceType.TOPIC, name) for name in wanted])
    changes = []
    for response in responses:
        for _code, _message, _type, name, entries in response.resources:
            current = {entry[0]: entry[1] for entry in entries}
            if all(current.get(key) == value for key, value in wanted[name].items()):
                continue
            kept = {entry[0]: entry[1] for entry in entries
                    if entry[3] == _DYNAMIC_TOPIC_CONFIG and entry[1] is not None}
            log.info("changelog %s: topic configs %s brought up to date", name,
                     sorted(k for k, v in wanted[name].items() if current.get(k) != v))
            changes.append(ConfigResource(ConfigResourceType.TOPIC, name,
                                          configs={**kept, **wanted[name]}))
    if changes:
        for response in await admin.alter_configs(changes):
            for code, message, _type, name in response.resources:
                if code:
                    raise StreamsError(f"changelog {name}: its topic configs could not be "
                                       f"updated (error {code}: {message})")
