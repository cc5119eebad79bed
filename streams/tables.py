"""The worker's tables, and a task's state read from them.

Every piece of stream state lives in a Faust table with a changelog, so a worker killed at any
moment resumes where it was (partitioned like the source topics: a task's values sit in its
partition). A task's values share one table, ``worker-state``, so that one step's records
are in one changelog partition, in the order they were written (:mod:`~driftloop.streams.redo`
explains why that makes a step whole or absent); its keys name their section:

* ``state|<task>``: :class:`~driftloop.streams.pipeline.TaskState` (with its last step's redo);
* ``buffer|<task>``: :class:`~driftloop.streams.buffer.ReplayBuffer`;
* ``bucket|<task>|<topic>:<partition>:<offset>``: :class:`~driftloop.streams.join.Bucket`;
* ``canary|<task>``: :class:`~driftloop.streams.canary.CanaryComparison`.

``dead-letter-counts`` (``topic:partition|reason`` -> count) is a table of its own: it counts
records, not a task's step. The table names are a contract (the changelog topics are named
after them). A value a table does not hold yet reads as a fresh one built from the settings.
The first read of a task after start or a rebalance finishes its last step if a kill cut it
short. Join windows are cached in memory, rebuilt from their buckets on first use, and dropped
when partitions are revoked. Writing a step's values is the step's job
(:mod:`~driftloop.streams.step`).
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from ..schemas.settings import Settings
from ..schemas.topics import TOPIC_SPECS, Topic
from .app import STATE_CODEC
from .buffer import ReplayBuffer
from .canary import CanaryComparison
from .join import Bucket, JoinWindow
from .pipeline import TaskState, new_buffer, new_join_window
from .redo import finish

__all__ = ["CHANGELOG_CONFIGS", "STATE_TABLE", "Section", "WorkerTables"]

STATE_TABLE = "worker-state"
"""The table (and, with the app id, the changelog topic) holding every task's values."""

V = TypeVar("V")

_MAX_RECORD_BYTES = 20 * 1024 * 1024
CHANGELOG_CONFIGS = {
    "cleanup.policy": "compact",
    # Faust's changelog topics must take the largest table value (a replay buffer).
    "max.message.bytes": str(_MAX_RECORD_BYTES),
    # Kafka compacts closed segments only. At its defaults (1 GiB or 7 days a segment) the
    # active segment kept every state record ever written, and a restarted worker (memory
    # store) read all of them: the fifty-kill fault run grew one partition to 341 MB, a
    # restart to more than the 20 s between kills, and the worker fell behind for good.
    # Short segments let the log cleaner keep a changelog near one record per key, so a
    # recovery reads about the state's size. A segment must hold the largest record.
    "segment.bytes": str(32 * 1024 * 1024),
    "segment.ms": str(60_000),
}
"""Topic configs of every changelog (kept up to date on existing topics by
:func:`~driftloop.streams.changelogs.ensure_changelogs`)."""


def _table(app: Any, name: str, partitions: int) -> Any:
    table = app.Table(name, default=None, partitions=partitions,
                      extra_topic_configs=CHANGELOG_CONFIGS)
    # Faust derives serializers from key/value types (json); the state needs pickle through
    # an allowlist, set before the changelog topic and the store are first built.
    table.value_serializer = STATE_CODEC
    table.key_serializer = "json"
    table.changelog_topic = table._new_changelog_topic()
    return table


class Section(MutableMapping[str, V], Generic[V]):
    """The values of one kind in the shared table: its keys without the ``<kind>|`` prefix.

    >>> table = {}
    >>> states, buffers = Section(table, "state"), Section(table, "buffer")
    >>> states["sentiment"] = 1
    >>> buffers["sentiment"] = 2
    >>> sorted(table), dict(states), "sentiment" in buffers, len(buffers)
    (['buffer|sentiment', 'state|sentiment'], {'sentiment': 1}, True, 1)
    """

    def __init__(self, table: MutableMapping[str, Any], kind: str) -> None:
        self._table, self._prefix = table, f"{kind}|"

    def __getitem__(self, key: str) -> V:
        return self._table[self._prefix + key]  # type: ignore[no-any-return]

    def get(self, key: str, default: Any = None) -> Any:
        return self._table.get(self._prefix + key, default)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and (self._prefix + key) in self._table

    def __setitem__(self, key: str, value: V) -> None:
        self._table[self._prefix + key] = value

    def __delitem__(self, key: str) -> None:
        del self._table[self._prefix + key]

    def __iter__(self) -> Iterator[str]:
        prefix, cut = self._prefix, len(self._prefix)
        return (key[cut:] for key in list(self._table) if key.startswith(prefix))

    def __len__(self) -> int:
        return sum(1 for _ in self)


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
    _slice_keys: dict[str, tuple[str, ...]] = field(default_factory=dict)
    _checked: set[str] = field(default_factory=set)
    shared: Any = None

    def __post_init__(self) -> None:
        # Looked up once per state read on the hot path: a plain dict, not Settings.task().
        self._per_domain = {name: task.adapter_per_domain
                            for name, task in self.settings.tasks.items()}
        self._slice_keys = {name: tuple(task.slice_keys)
                            for name, task in self.settings.tasks.items()}

    @classmethod
    def create(cls, app: Any, settings: Settings) -> WorkerTables:
        """The worker's tables on ``app`` (a Faust app), partitioned like the sources."""
        partitions = TOPIC_SPECS[Topic.INTERACTIONS].partitions
        if TOPIC_SPECS[Topic.FEEDBACK].partitions != partitions:
            raise RuntimeError("interactions and feedback must have the same partition count")
        return cls.sharing(settings, _table(app, STATE_TABLE, partitions),
                           dead_counts=_table(app, "dead-letter-counts", partitions))

    @classmethod
    def sharing(cls, settings: Settings, table: MutableMapping[str, Any], *,
                dead_counts: MutableMapping[str, int]) -> WorkerTables:
        """Every task value in one mapping (``table``), in sections by key prefix."""
        return cls(settings, states=Section(table, "state"), buffers=Section(table, "buffer"),
                   buckets=Section(table, "bucket"), dead_counts=dead_counts,
                   canaries=Section(table, "canary"), shared=table)

    def all(self) -> list[Any]:
        """Every table (their changelog topics are created before the worker starts)."""
        if self.shared is not None:
            return [self.shared, self.dead_counts]
        return [self.states, self.buffers, self.buckets, self.dead_counts, self.canaries]

    def state(self, task: str) -> TaskState:
        self._finish_last_step(task)
        state = self.states.get(task)
        if state is None:
            state = TaskState(task, self.settings.worker, self.settings.task(task))
        # The learner's settings decide whether it takes one request per domain; a state
        # persisted before the setting changed (or before it existed) follows them too.
        state.training.adapter_per_domain = self._per_domain.get(task, False)
        state.slice_keys = self._slice_keys.get(task, ())  # the settings' keys, as they are now
        state.reviewer_weight = self.settings.worker.buffer.reviewer_weight
        state.max_domains = self.settings.worker.max_domains
        state.overflow_domain = self.settings.worker.overflow_domain
        return state

    def _finish_last_step(self, task: str) -> None:
        """Once per task and assignment: write what a kill cut off the task's last step."""
        if task in self._checked:
            return
        self._checked.add(task)
        state = self.states.get(task)
        redo = getattr(state, "redo", None)
        if redo is not None and not redo.empty:
            finish(self, task, redo)

    def buffer(self, task: str) -> ReplayBuffer:
        self._finish_last_step(task)
        buffer = self.buffers.get(task)
        return buffer if buffer is not None else new_buffer(self.settings.worker)

    def canary(self, task: str) -> CanaryComparison:
        self._finish_last_step(task)
        canary = self.canaries.get(task)
        if canary is None:
            canary = CanaryComparison.from_settings(task, self.settings.worker.ab_test)
        return canary

    def join(self, task: str) -> JoinWindow:
        join = self.joins.get(task)
        if join is None:
            self._finish_last_step(task)
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
        self._checked.clear()
