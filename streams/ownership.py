"""Which source partitions, and so which tasks, this worker owns right now.

Producers key ``interactions`` and ``feedback`` by task, so a task's events and state live in
one partition (:mod:`~driftloop.streams.partitioning` has the rule). The consumer's
assignment says which partitions are this worker's; the tables also hold standby copies of
other workers' tasks and the last state of partitions lost in a rebalance, so what a worker
reports or ticks is filtered by this answer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..schemas.settings import Settings
from ..schemas.topics import TOPIC_SPECS, Topic
from .partitioning import TaskPartitions

__all__ = ["Ownership"]


@dataclass
class Ownership:
    """The worker's share of the source partitions, from its Faust app's consumer.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> from aiokafka import TopicPartition
    >>> held = [TopicPartition("interactions", 2), TopicPartition("model-versions", 0)]
    >>> app = SimpleNamespace(consumer=SimpleNamespace(assignment=lambda: held,
    ...                                                topic_partitions=lambda topic: 6))
    >>> ownership = Ownership(app, Settings())
    >>> ownership.owned_partitions()
    {2}
    >>> owned = ownership.owned(ownership.owned_partitions())
    >>> [task for task in ("a", "b", "c", "d") if owned(task)]
    ['b']
    >>> Ownership(SimpleNamespace(), Settings()).owned_partitions() is None  # not started
    True
    """

    app: Any
    settings: Settings
    _owners: dict[int, TaskPartitions] = field(default_factory=dict)  # by partition count

    def _name(self, topic: Topic) -> str:
        return self.settings.kafka.topic(topic)

    def assigned_sources(self) -> list[Any]:
        """The ``interactions`` and ``feedback`` partitions the consumer holds now."""
        sources = {self._name(Topic.INTERACTIONS), self._name(Topic.FEEDBACK)}
        return [tp for tp in self.app.consumer.assignment() if tp.topic in sources]

    def assigned_pairs(self) -> list[tuple[str, int]]:
        """:meth:`assigned_sources` as (topic, partition) pairs."""
        return [(tp.topic, tp.partition) for tp in self.assigned_sources()]

    def task_partitions(self, topic: str) -> TaskPartitions:
        """Each task's partition, by the count producers' partitioners see for ``topic``."""
        try:  # the consumer's metadata: a dict read, cheap enough for every message
            count = self.app.consumer.topic_partitions(topic)
        except Exception:  # not started yet or between generations
            count = None
        count = count or TOPIC_SPECS[Topic.INTERACTIONS].partitions
        owners = self._owners.get(count)
        if owners is None:
            owners = self._owners[count] = TaskPartitions(count)
        return owners

    def owned_partitions(self) -> set[int] | None:
        """The source partitions actively assigned to this worker (None: not known, before
        the consumer starts). The tables also hold standby copies of other workers' tasks and
        the last state of partitions this worker lost in a rebalance; reporting those would
        count a task twice across the group, once with stale figures."""
        source = self._name(Topic.INTERACTIONS)
        try:
            return {tp.partition for tp in self.app.consumer.assignment() if tp.topic == source}
        except Exception:  # not started yet
            return None

    def owned(self, mine: set[int] | None) -> Callable[[str], bool]:
        """Whether a task's partition is among ``mine`` (every task when that is not known)."""
        if mine is None:
            return lambda task: True
        owners = self.task_partitions(self._name(Topic.INTERACTIONS))
        return lambda task: owners[task] in mine
