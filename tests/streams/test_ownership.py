"""Ownership: the source partitions of the assignment, each task's partition, and the answer
before the consumer has started."""

from __future__ import annotations

from types import SimpleNamespace

from worker_fakes import fake_app

from driftloop.schemas.settings import Settings
from driftloop.streams.ownership import Ownership
from driftloop.streams.partitioning import task_partition

SETTINGS = Settings(kafka={"topic_prefix": "p."})


def test_only_source_partitions_count_and_tasks_follow_their_partition():
    app = fake_app(("p.interactions", 1), ("p.feedback", 1), ("p.model-versions", 0),
                   ("p.interactions", 4))
    ownership = Ownership(app, SETTINGS)
    assert sorted(ownership.assigned_pairs()) == [("p.feedback", 1), ("p.interactions", 1),
                                                  ("p.interactions", 4)]
    assert ownership.owned_partitions() == {1, 4}
    owned = ownership.owned(ownership.owned_partitions())
    tasks = [f"task{n}" for n in range(40)]
    assert [t for t in tasks if owned(t)] == [t for t in tasks if task_partition(t, 6) in (1, 4)]


def test_the_partition_count_comes_from_the_consumer_and_each_rule_is_built_once():
    ownership = Ownership(fake_app(partitions=3), SETTINGS)
    rule = ownership.task_partitions("p.interactions")
    assert rule.partitions == 3 and ownership.task_partitions("p.feedback") is rule


def test_before_the_consumer_starts_every_task_counts_and_the_default_count_holds():
    ownership = Ownership(SimpleNamespace(), SETTINGS)  # no consumer yet
    assert ownership.owned_partitions() is None and ownership.owned(None)("anything")
    assert ownership.task_partitions("p.interactions").partitions == 6
