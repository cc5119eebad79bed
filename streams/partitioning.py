"""Which partition owns a task: the one Kafka's default partitioner gives the task's key.

``interactions`` and ``feedback`` are co-partitioned by task, and a task's state (its tables'
changelog entries) is written to the partition of the event being applied, so a task's events
must all arrive on one partition: the one a producer keying by the task's UTF-8 bytes reaches
with the default partitioner of the Java client and of aiokafka (murmur2 of the key, sign bit
cleared, modulo the partition count). The worker applies an event only there and dead-letters
it anywhere else (:data:`WRONG_PARTITION`).

librdkafka-based clients (confluent-kafka, node-rdkafka) default to a CRC32 partitioner
instead; they must be set to ``partitioner=murmur2_random`` to agree.
"""

from __future__ import annotations

from aiokafka.partitioner import murmur2

from ..schemas.enums import DeadLetterReason

__all__ = ["WRONG_PARTITION", "TaskPartitions", "task_partition"]

# The dead-letter reason (and metric label) of an event that arrived off its task's partition.
WRONG_PARTITION = DeadLetterReason.WRONG_PARTITION


def task_partition(task: str, partitions: int) -> int:
    """The partition a message keyed by ``task`` goes to among ``partitions``.

    The same function the producers use (aiokafka's murmur2, the Java client's algorithm), so
    the worker and every producer keying by task agree by construction.

    >>> task_partition("sentiment", 6), task_partition("sentiment", 3)
    (5, 2)
    """
    if partitions < 1:
        raise ValueError(f"partitions must be >= 1, got {partitions}")
    return (murmur2(task.encode()) & 0x7FFFFFFF) % partitions


class TaskPartitions(dict[str, int]):
    """Task -> owning partition among ``partitions``, each computed once.

    A plain ``dict`` underneath, so a hit on the per-event hot path is one C-level lookup;
    a miss hashes the task (pure-Python murmur2, a few microseconds). Producers control
    the task names, so the cache is bounded: at ``max_tasks`` entries it starts over.

    Parameters
    ----------
    partitions
        Partition count of the topic the events come from.
    max_tasks
        Most tasks remembered.

    Examples
    --------
    >>> owners = TaskPartitions(6)
    >>> owners["sentiment"], owners["toxicity"], len(owners)
    (5, 2, 2)
    >>> owners.misplaced("sentiment", "interactions", 2)
    "task 'sentiment' arrived on interactions partition 2 but belongs to partition 5 of 6 ...
    >>> TaskPartitions(0)
    Traceback (most recent call last):
    ...
    ValueError: partitions must be >= 1, got 0
    """

    def __init__(self, partitions: int, *, max_tasks: int = 100_000) -> None:
        super().__init__()
        if partitions < 1:
            raise ValueError(f"partitions must be >= 1, got {partitions}")
        if max_tasks < 1:
            raise ValueError(f"max_tasks must be >= 1, got {max_tasks}")
        self.partitions = partitions
        self.max_tasks = max_tasks

    def __missing__(self, task: str) -> int:
        if len(self) >= self.max_tasks:
            self.clear()
        owner = self[task] = task_partition(task, self.partitions)
        return owner

    def misplaced(self, task: str, topic: str, partition: int) -> str:
        """The dead letter's error text for an event of ``task`` read from ``partition``."""
        return (f"task {task!r} arrived on {topic} partition {partition} but belongs to "
                f"partition {self[task]} of {self.partitions} (murmur2 of the key {task!r}): "
                "producers must key interactions and feedback by task with Kafka's default "
                "partitioner, so a task's state lives in one partition")
