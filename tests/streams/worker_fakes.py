"""Stand-ins for the Faust side of the worker's pieces: topics that keep what is sent, tables
that are dicts, a consumer with an assignment, and source records. The pieces themselves are
real; the broker tests (test_agents.py and its neighbours) run them under Faust. (Kept out of
conftest.py: test modules import these by a unique module name.)"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from aiokafka import TopicPartition

from driftloop.schemas import Topic
from driftloop.schemas.settings import Settings
from driftloop.streams.tables import WorkerTables


class FakeTopic:
    """A Faust topic's name, and every message sent to it."""

    def __init__(self, name: str, on_send: Any = None) -> None:
        self.name, self.sent, self.on_send = name, [], on_send

    def get_topic_name(self) -> str:
        return self.name

    async def send(self, *, key: bytes, value: bytes, headers: Any = None) -> None:
        if self.on_send is not None:
            self.on_send(self.name)
        self.sent.append((key, value, headers))


def fake_topics(settings: Settings, on_send: Any = None) -> dict[Topic, FakeTopic]:
    return {topic: FakeTopic(settings.kafka.topic(topic), on_send) for topic in Topic}


def dict_tables(settings: Settings) -> WorkerTables:
    return WorkerTables(settings, states={}, buffers={}, buckets={}, dead_counts={},
                        canaries={})


def fake_app(*held: tuple[str, int], paused: int = 0, partitions: int = 6) -> Any:
    """An app whose consumer holds ``held`` (topic, partition) pairs."""
    assignment = [TopicPartition(topic, partition) for topic, partition in held]
    consumer = SimpleNamespace(assignment=lambda: assignment,
                               topic_partitions=lambda topic: partitions,
                               _paused_partitions=set(assignment[:paused]))
    return SimpleNamespace(consumer=consumer)


def record(topic: str, partition: int, offset: int, value: bytes | None, *,
           key: bytes | None = None, headers: Any = None) -> Any:
    """A source record as Faust hands it to the agent."""
    return SimpleNamespace(topic=topic, partition=partition, offset=offset, key=key,
                           value=value, headers=headers)
