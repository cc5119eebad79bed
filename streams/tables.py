"""The worker's tables, and a task's state read from them.

Every piece of stream state lives in a Faust table with a changelog, so a worker killed at any
moment resumes where it was (each table is partitioned like the source topics: a task's
values sit in its partition):

* ``task-state``: task -> :class:`~driftloop.streams.pipeline.TaskState`;
* ``replay-buffers``: task -> :class:`~driftloop.streams.buffer.ReplayBuffer`;
* ``join-buckets``: ``task|topic:partition:offset`` -> :class:`~driftloop.streams.join.Bucket`;
* ``ab-tests``: task -> :class:`~driftloop.streams.canary.CanaryComparison`;
* ``dead-letter-counts``: ``topic:partition|reason`` -> count.

The table names are a contract (the changelog topics are named after them). A value a table
does not hold yet reads as a fresh one built from the settings. Join windows are cached in
memory, rebuilt from their buckets on first use, and dropped when partitions are revoked.
Writing a step's values back is the step's job (:mod:`~driftloop.streams.step`).
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass, field
from typing import Any

from ..schemas.settings import Settings
from ..schemas.topics import TOPIC_SPECS, Topic
from .app import STATE_CODEC
from .buffer import ReplayBuffer
from .canary import CanaryComparison
from .join import Bucket, JoinWindow
from .pipeline import TaskState, new_buffer, new_join_window

__all__ = ["WorkerTables"]

# Faust's changelog topics must take the largest table value (a replay buffer).
_CHANGELOG_CONFIGS = {"max.message.bytes": str(20 * 1024 * 1024), "cleanup.policy": "compact"}


def _table(app: Any, name: str, partitions: int) -> Any:
    table = app.Table(name, default=None, partitions=partitions,
                      extra_topic_configs=_CHANGELOG_CONFIGS)
    # Faust derives serializers from key/value types (json); the state needs pickle through
    # an allowlist, set before the changelog topic and the store are first built.
    table.value_serializer = STATE_CODEC
    table.key_serializer = "json"
    table.changelog_topic = table._new_changelog_topic()
    return table


@dataclass
class WorkerTables:
    """The worker's tables (any mutable mappings), and the join windows cached from them.

    Examples
    --------
    Plain dicts stand in for Faust tables:

    >>> tables = WorkerTables(Settings(), states={}, buffers={}, buckets={}, dead_counts={},
    ...                       canaries={})
    >>> state = tables.state("sentiment")  # nothing stored yet: a fresh state
    >>> state.task, tables.buffer("sentiment").new_count, tables.canary("sentiment").candidate
    ('sentiment', 0, None)
    >>> tables.join("sentiment") is tables.join("sentiment")  # cached until a revocation
    True
    """

    settings: Settings
    states: MutableMapping[str, TaskState | None]
    buffers: MutableMapping[str, ReplayBuffer | None]
    buckets: MutableMapping[str, Bucket]
    dead_counts: MutableMapping[str, int]
    canaries: MutableMapping[str, CanaryComparison | None]
    joins: dict[str, JoinWindow] = field(default_factory=dict)
    _per_domain: dict[str, bool] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Looked up once per state read on the hot path: a plain dict, not Settings.task().
        self._per_domain = {name: task.adapter_per_domain
                            for name, task in self.settings.tasks.items()}

    @classmethod
    def create(cls, app: Any, settings: Settings) -> WorkerTables:
        """The worker's tables on ``app`` (a Faust app), partitioned like the sources."""
        partitions = TOPIC_SPECS[Topic.INTERACTIONS].partitions
        if TOPIC_SPECS[Topic.FEEDBACK].partitions != partitions:
            raise RuntimeError("interactions and feedback must have the same partition count")
        return cls(settings, states=_table(app, "task-state", partitions),
                   buffers=_table(app, "replay-buffers", partitions),
                   buckets=_table(app, "join-buckets", partitions),
                   dead_counts=_table(app, "dead-letter-counts", partitions),
                   canaries=_table(app, "ab-tests", partitions))

    def all(self) -> list[Any]:
        """Every table (their changelog topics are created before the worker starts)."""
        return [self.states, self.buffers, self.buckets, self.dead_counts, self.canaries]

    def state(self, task: str) -> TaskState:
        state = self.states.get(task)
        if state is None:
            state = TaskState(task, self.settings.worker, self.settings.task(task))
        # The learner's settings decide whether it takes one request per domain; a state
        # persisted before the setting changed (or before it existed) follows them too.
        state.training.adapter_per_domain = self._per_domain.get(task, False)
        return state

    def buffer(self, task: str) -> ReplayBuffer:
        buffer = self.buffers.get(task)
        return buffer if buffer is not None else new_buffer(self.settings.worker)

    def canary(self, task: str) -> CanaryComparison:
        canary = self.canaries.get(task)
        if canary is None:
            canary = CanaryComparison.from_settings(task, self.settings.worker.ab_test)
        return canary

    def join(self, task: str) -> JoinWindow:
        join = self.joins.get(task)
        if join is None:
            # First use since start or a rebalance: rebuild from the persisted buckets.
            join = new_join_window(self.settings.worker)
            prefix = f"{task}|"
            join.restore((key[len(prefix):], bucket) for key, bucket in self.buckets.items()
                         if key.startswith(prefix))
            self.joins[task] = join
        return join

    def forget_joins(self) -> None:
        """Drop the cached join windows: the tables are rebuilt for a new assignment."""
        self.joins.clear()
