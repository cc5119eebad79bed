"""Join feedback to its interaction by id within a time window, whichever arrives first.

Entries are kept in *buckets*, one per Kafka message (``topic:partition:offset``), because
that is the unit the worker persists: one table write per message instead of one per event,
and a redelivered message rewrites the same bucket (idempotent). Feedback whose interaction
has not arrived waits in its own bucket; an interaction that arrives later picks it up.
Buckets older than the window (by event time) or beyond the entry bound are dropped.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigurationError

__all__ = ["Bucket", "JoinWindow", "JoinedPair"]

INTERACTIONS = "i"
FEEDBACK = "f"


@dataclass(slots=True)
class Bucket:
    """The join entries that came in one Kafka message: ``{id: entry}`` and the newest ts.

    For interactions the id is the interaction id; for feedback it is the feedback id and
    the entry names its ``interaction_id``.
    """

    kind: str
    ts: float
    entries: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class JoinedPair:
    interaction: dict[str, Any]
    feedback: dict[str, Any]


class JoinWindow:
    """The join state of one task.

    Parameters
    ----------
    window_seconds
        How long (event time) an interaction waits for feedback, and feedback for its
        interaction.
    max_entries
        Bound on interactions + waiting feedback; the oldest buckets go first.

    Examples
    --------
    >>> join = JoinWindow(window_seconds=60)
    >>> join.add_feedback("fb:0:0", [{"id": "f1", "interaction_id": "i1", "ts": 5.0}])
    []
    >>> pairs = join.add_interactions("ix:0:0", [{"id": "i1", "ts": 4.0}])
    >>> [(p.interaction["id"], p.feedback["id"]) for p in pairs]
    [('i1', 'f1')]
    >>> join.waiting_feedback
    0
    """

    def __init__(self, *, window_seconds: float = 3600.0, max_entries: int = 200_000) -> None:
        if not math.isfinite(window_seconds) or window_seconds <= 0:
            raise ConfigurationError(f"window_seconds must be > 0, got {window_seconds!r}")
        if not isinstance(max_entries, int) or max_entries < 1:
            raise ConfigurationError(f"max_entries must be a positive integer, got {max_entries!r}")
        self.window_seconds = float(window_seconds)
        self.max_entries = max_entries
        self._reset()

    def _reset(self) -> None:
        self._buckets: OrderedDict[str, Bucket] = OrderedDict()
        # Each side's bucket keys in arrival order: a side expires by the other's progress.
        self._sides: dict[str, OrderedDict[str, None]] = {INTERACTIONS: OrderedDict(),
                                                          FEEDBACK: OrderedDict()}
        self._interaction_at: dict[str, str] = {}  # interaction id -> bucket key
        self._waiting: dict[str, dict[str, str]] = {}  # interaction id -> {feedback id: key}
        self._entries = 0
        self._watermark = 0.0
        # Event time reached on each side (interactions, feedback): see _expire.
        self._marks: dict[str, float] = {}
        self._dirty: set[str] = set()
        self._deleted: set[str] = set()
        self._expired_feedback = 0  # waiting feedback dropped unjoined, since the last take

    # -- read-only --------------------------------------------------------------------------
    @property
    def interactions(self) -> int:
        return len(self._interaction_at)

    @property
    def waiting_feedback(self) -> int:
        return sum(len(v) for v in self._waiting.values())

    @property
    def watermark(self) -> float:
        return self._watermark

    def get(self, interaction_id: str) -> dict[str, Any] | None:
        key = self._interaction_at.get(interaction_id)
        return None if key is None else self._buckets[key].entries[interaction_id]

    # -- updates -----------------------------------------------------------------------------
    def add_interactions(self, key: str, entries: Iterable[dict[str, Any]]) -> list[JoinedPair]:
        """Remember interactions (entries need ``id`` and ``ts``); return the waiting
        feedback they complete."""
        bucket = self._bucket(key, INTERACTIONS)
        pairs: list[JoinedPair] = []
        # The hot path (one call per Kafka message, hundreds of entries): locals, no
        # per-entry allocation unless feedback is waiting.
        at, stored, waiting = self._interaction_at, bucket.entries, self._waiting
        newest, added = bucket.ts, 0
        for entry in entries:
            iid = entry["id"]
            if iid in at:  # a duplicate interaction keeps the first copy
                continue
            stored[iid] = entry
            ts = entry["ts"]
            if ts > newest:
                newest = ts
            at[iid] = key
            added += 1
            if waiting and iid in waiting:
                for fid, fkey in waiting.pop(iid).items():
                    fbucket = self._buckets[fkey]
                    pairs.append(JoinedPair(entry, fbucket.entries.pop(fid)))
                    self._entries -= 1
                    self._touch(fkey)
        bucket.ts = newest
        self._entries += added
        self._after_update(key, bucket, newest)
        return pairs

    def add_feedback(self, key: str, entries: Iterable[dict[str, Any]]) -> list[JoinedPair]:
        """Join feedback (entries need ``id``, ``interaction_id`` and ``ts``) to known
        interactions; keep the rest waiting."""
        bucket = self._bucket(key, FEEDBACK)
        pairs: list[JoinedPair] = []
        newest = self._marks.get(FEEDBACK, 0.0)
        for entry in entries:
            newest = max(newest, entry["ts"])
            interaction = self.get(entry["interaction_id"])
            if interaction is not None:
                pairs.append(JoinedPair(interaction, entry))
                continue
            fid = entry["id"]
            waiting = self._waiting.setdefault(entry["interaction_id"], {})
            if fid in waiting:
                continue
            waiting[fid] = key
            bucket.entries[fid] = entry
            bucket.ts = max(bucket.ts, entry["ts"])
            self._entries += 1
        self._after_update(key, bucket, newest)
        return pairs

    def _bucket(self, key: str, kind: str) -> Bucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = Bucket(kind=kind, ts=0.0)
            self._buckets[key] = bucket
            self._sides[kind][key] = None
        return bucket

    def _touch(self, key: str) -> None:
        if not self._buckets[key].entries:
            self._sides[self._buckets.pop(key).kind].pop(key, None)
            self._dirty.discard(key)
            self._deleted.add(key)
        else:
            self._dirty.add(key)

    def _after_update(self, key: str, bucket: Bucket, newest: float) -> None:
        self._marks[bucket.kind] = max(self._marks.get(bucket.kind, 0.0), newest)
        self._watermark = max(self._watermark, bucket.ts, newest)
        if key in self._buckets:
            self._touch(key)
        self._expire()

    def horizon(self, kind: str) -> float:
        """Event time before which buckets of ``kind`` (interactions or feedback) expire.

        Each side is expired by the *other* side's progress, as a two-sided stream join
        is: an interaction can leave once the feedback read has passed it by a window (no
        label for it is still queued), waiting feedback once the interactions read have
        passed it by a window (its interaction is not coming). Interactions and feedback
        are read from two topics, and after a restart or a lag one side's backlog can run
        far ahead of the other in event time: expiring by the faster side dropped
        interactions whose feedback was still queued (the fault bench lost a third of its
        labels that way over ten worker kills, and most of them over fifty when the slower
        side could hold expiry back by one window only). Until the other side has been seen
        nothing expires by time: expiring by a side's own progress lost every old label of a
        test whose worker, under load, read ten thousand interactions before the first
        feedback message. A side that never sees the other (a task without feedback), or
        whose other side stops, is bounded by ``max_entries`` (the oldest buckets go first),
        as a busy task is anyway.

        >>> join = JoinWindow(window_seconds=10)
        >>> _ = join.add_interactions("a", [{"id": "i1", "ts": 100.0}])
        >>> join.horizon(INTERACTIONS)  # no feedback seen yet: nothing expires by time
        -inf
        >>> _ = join.add_feedback("b", [{"id": "f", "interaction_id": "i0", "ts": 95.0}])
        >>> join.horizon(INTERACTIONS), join.horizon(FEEDBACK)  # each by the other side
        (85.0, 90.0)
        >>> _ = join.add_interactions("c", [{"id": "i2", "ts": 500.0}])
        >>> join.horizon(INTERACTIONS)  # labels still queued hold the interactions
        85.0
        """
        other = FEEDBACK if kind == INTERACTIONS else INTERACTIONS
        if other not in self._marks:
            return -math.inf
        return self._marks[other] - self.window_seconds

    def _expire(self) -> None:
        for kind, keys in self._sides.items():
            horizon = self.horizon(kind)
            while keys:
                key = next(iter(keys))
                if self._buckets[key].ts >= horizon:
                    break
                self._drop(key)
        while self._entries > self.max_entries and self._buckets:  # oldest first
            self._drop(next(iter(self._buckets)))

    def _drop(self, key: str) -> None:
        bucket = self._buckets.pop(key)
        self._sides[bucket.kind].pop(key, None)
        for entry_id, entry in bucket.entries.items():
            self._entries -= 1
            if bucket.kind == INTERACTIONS:
                if self._interaction_at.get(entry_id) == key:
                    del self._interaction_at[entry_id]
            else:
                self._expired_feedback += 1
                waiting = self._waiting.get(entry["interaction_id"], {})
                waiting.pop(entry_id, None)
                if not waiting:
                    self._waiting.pop(entry["interaction_id"], None)
        self._dirty.discard(key)
        self._deleted.add(key)

    def take_expired_feedback(self) -> int:
        """How much waiting feedback left the window unjoined since the last call (its
        interaction never came, or came too late); the caller counts it, nothing is silent.

        >>> join = JoinWindow(window_seconds=10)
        >>> join.add_feedback("fb:0:0", [{"id": "f1", "interaction_id": "i0", "ts": 1.0}])
        []
        >>> _ = join.add_interactions("ix:0:1", [{"id": "i9", "ts": 50.0}])
        >>> join.take_expired_feedback(), join.take_expired_feedback()
        (1, 0)
        """
        expired, self._expired_feedback = self._expired_feedback, 0
        return expired

    # -- persistence -----------------------------------------------------------------------
    def take_changes(self) -> tuple[dict[str, Bucket], set[str]]:
        """Buckets to write and bucket keys to delete since the last call."""
        changed = {key: self._buckets[key] for key in self._dirty}
        deleted = self._deleted - set(changed)
        self._dirty, self._deleted = set(), set()
        return changed, deleted

    def restore(self, buckets: Iterable[tuple[str, Bucket]]) -> None:
        """Rebuild from persisted buckets (after a restart), oldest first."""
        self._reset()
        for key, bucket in sorted(buckets, key=lambda item: item[1].ts):
            self._buckets[key] = bucket
            self._sides[bucket.kind][key] = None
            for entry_id, entry in bucket.entries.items():
                self._entries += 1
                if bucket.kind == INTERACTIONS:
                    self._interaction_at.setdefault(entry_id, key)
                else:
                    self._waiting.setdefault(entry["interaction_id"], {})[entry_id] = key
            self._watermark = max(self._watermark, bucket.ts)
        if self._buckets:
            # Each side starts at the newest bucket it kept; a side that kept none (feedback
            # that all joined) at the oldest bucket of the other, so nothing restored expires
            # before that side's backlog is read again and shows how far it is.
            oldest = min(bucket.ts for bucket in self._buckets.values())
            newest = {kind: max((self._buckets[key].ts for key in keys), default=oldest)
                      for kind, keys in self._sides.items()}
            self._marks = newest

    def clone(self) -> JoinWindow:
        return JoinWindow(**self.get_params())

    def get_params(self) -> dict[str, Any]:
        return {"window_seconds": self.window_seconds, "max_entries": self.max_entries}
