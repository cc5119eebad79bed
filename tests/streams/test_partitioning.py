"""A task's partition is the one Kafka's default partitioner gives the task's key."""

from __future__ import annotations

import pytest
from aiokafka.partitioner import DefaultPartitioner

from driftloop.streams.partitioning import TaskPartitions, task_partition


@pytest.mark.parametrize(("key", "java"), [
    # Utils.murmur2 of the Java client on these keys (its UtilsTest), as unsigned ints.
    ("21", -973932308), ("foobar", -790332482), ("a-little-bit-long-string", -985981536),
    ("a-little-bit-longer-string", -1486304829),
    ("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971), ("abc", 479470107),
])
def test_the_partition_is_the_java_clients_for_the_same_key(key: str, java: int) -> None:
    for partitions in (1, 3, 6, 7, 64):
        assert task_partition(key, partitions) == (java & 0x7FFFFFFF) % partitions


@pytest.mark.parametrize("task", ["sentiment", "toxicity", "t", "", "émotion", "a" * 300])
@pytest.mark.parametrize("partitions", [1, 2, 6, 12])
def test_the_partition_is_where_an_aiokafka_producer_keyed_by_task_sends(
        task: str, partitions: int) -> None:
    chosen = DefaultPartitioner()(task.encode(), list(range(partitions)), [])
    assert task_partition(task, partitions) == chosen


def test_each_task_is_hashed_once_and_the_cache_stays_bounded(monkeypatch) -> None:
    from driftloop.streams import partitioning
    calls: list[str] = []
    real = partitioning.task_partition
    monkeypatch.setattr(partitioning, "task_partition",
                        lambda task, n: calls.append(task) or real(task, n))
    owners = TaskPartitions(6, max_tasks=3)
    assert [owners[t] for t in ("a", "b", "a", "a", "b")] == [4, 2, 4, 4, 2]
    assert calls == ["a", "b"]
    for task in ("c", "d", "e"):  # a producer inventing task names cannot grow it past 3
        owners[task]
    assert len(owners) <= 3 and owners["a"] == 4


def test_the_error_text_names_the_task_and_both_partitions() -> None:
    text = TaskPartitions(6).misplaced("sentiment", "prod.feedback", 2)
    assert "'sentiment'" in text and "prod.feedback partition 2" in text
    assert "belongs to partition 5 of 6" in text


@pytest.mark.parametrize(("args", "message"), [
    ({"partitions": 0}, "partitions must be >= 1, got 0"),
    ({"partitions": 6, "max_tasks": 0}, "max_tasks must be >= 1, got 0"),
])
def test_invalid_arguments_fail_at_construction(args: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TaskPartitions(**args)
    with pytest.raises(ValueError, match="partitions must be >= 1"):
        task_partition("t", -1)
