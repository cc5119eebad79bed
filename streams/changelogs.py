"""Create the worker's changelog topics before Faust starts, and wait until they are visible.

Faust can declare them itself (``topic_allow_declare``), but it does so while the agents are
already consuming: the first table write can then see a changelog with no partitions in the
consumer's metadata and crash the agent (``PartitionsMismatch``). Creating them up front,
with the partition count of the source topics, removes the race.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import Any

from aiokafka.admin import NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from ..client.kafka import admin_client
from ..schemas.settings import Settings
from .errors import StreamsError

__all__ = ["ensure_changelogs"]


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
