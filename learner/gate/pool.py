"""The gate pool: held-out examples of earlier requests, kept per domain for later gates.

A request carries ~20 held-out new examples in the quick demo; a gate judging that few
promotes candidates that are no better than a strong parent by noise. Held-out membership is
a function of the text (:func:`~driftloop.learner.gate.split.held_out`), so an example held out
once is never trained on later, and the learner can keep it: each gate scores parent and
candidate on the request's own held-out examples plus the pooled ones of the same domains,
and evidence accumulates across updates.

The pool is bounded (the last ``capacity`` examples per domain, ``max_bytes`` of text in
all) and is saved as JSON next to the adapter store (:class:`GatePoolFile`), so a restarted
learner, or the group member that takes the task over, continues with it. Loading re-checks
every entry against the current seed and holdout fraction, so a pool written under other
settings never puts a trainable example into a gate.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from typing import Any

from ...schemas.events import TrainingExample
from .split import held_out

__all__ = ["GatePool", "GatePoolFile", "TaskGatePools"]

log = logging.getLogger(__name__)

FORMAT = 2  # 2: each entry carries its regime; format 1 entries read as regime 0
Bucket = tuple[str, int]  # (domain, regime)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class GatePool:
    """Held-out examples of one task's earlier requests, the newest ``capacity`` per domain.

    Parameters
    ----------
    capacity
        Most examples kept per domain (the oldest leave first).
    max_bytes
        Most bytes of input and target text kept over all domains (the oldest leave first).
    holdout_fraction, seed
        The learner's split settings: only examples that :func:`held_out` holds out under
        them are admitted, so no pooled example is ever in a training part.

    Examples
    --------
    >>> from driftloop.learner.gate.split import held_out
    >>> texts = [f"review {i}" for i in range(40)]
    >>> held = [t for t in texts if held_out(t, 0.25)]
    >>> pool = GatePool(capacity=3, max_bytes=10_000, holdout_fraction=0.25)
    >>> pool.admit([TrainingExample(input=t, target="pos", domain="movies") for t in texts])
    9
    >>> [e.input for e in pool.examples({"movies"})] == held[-3:]  # the newest three
    True
    >>> pool.counts(), len(pool.examples({"movies"}, exclude={held[-1]}))
    ({'movies': 3}, 2)
    >>> pool.withdraw([held[-1]])  # trained on after all: never offered again
    1
    >>> pool.admit([TrainingExample(input=held[-1], target="pos", domain="movies")])
    0
    """

    def __init__(self, *, capacity: int, max_bytes: int, holdout_fraction: float,
                 seed: int = 0) -> None:
        if capacity < 0:
            raise ValueError(f"capacity must be >= 0, got {capacity}")
        if max_bytes <= 0:
            raise ValueError(f"max_bytes must be > 0, got {max_bytes}")
        if not 0 < holdout_fraction < 1:
            raise ValueError(f"holdout_fraction must be in (0, 1), got {holdout_fraction}")
        self.capacity = capacity
        self.max_bytes = max_bytes
        self.holdout_fraction = holdout_fraction
        self.seed = seed
        self._reset()

    def _reset(self) -> None:
        # digest -> example, oldest first, per (domain, regime); an admission order across them
        self._buckets: dict[Bucket, OrderedDict[str, TrainingExample]] = {}
        self._order: OrderedDict[tuple[Bucket, str], int] = OrderedDict()
        self._bytes = 0
        # Examples trained on although held out by content (a request whose every new example
        # hashed to the holdout lends one to training): kept out of the pool for good.
        self._withdrawn: OrderedDict[str, None] = OrderedDict()

    def clear(self) -> GatePool:
        """Forget every pooled and withdrawn example."""
        self._reset()
        return self

    def __len__(self) -> int:
        return len(self._order)

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def counts(self) -> dict[str, int]:
        """Pooled examples per domain."""
        counts: dict[str, int] = {}
        for (domain, _), kept in sorted(self._buckets.items()):
            if kept:
                counts[domain] = counts.get(domain, 0) + len(kept)
        return counts

    def examples(self, domains: Iterable[str], *, exclude: Iterable[str] = (),
                 regime: int | None = None) -> list[TrainingExample]:
        """The pooled examples of ``domains`` (of one ``regime`` when given), oldest first,
        without the texts in ``exclude``."""
        skip = {_digest(text) for text in exclude}
        wanted = set(domains)
        return [example for (domain, r), kept in sorted(self._buckets.items())
                if domain in wanted and (regime is None or r == regime)
                for digest, example in kept.items() if digest not in skip]

    def older(self, regime: int, *, exclude: Iterable[str] = (),
              limit: int | None = None) -> list[TrainingExample]:
        """The pooled examples of every domain from regimes before ``regime``: the traffic
        a candidate must not forget. With ``limit``, the newest of each bucket in turn.

        >>> pool = GatePool(capacity=9, max_bytes=10_000, holdout_fraction=0.999)
        >>> pool.admit([TrainingExample(input=f"t{i}", target="a", regime=i % 3)
        ...             for i in range(9)])
        9
        >>> sorted(e.input for e in pool.older(2))
        ['t0', 't1', 't3', 't4', 't6', 't7']
        >>> len(pool.older(2, limit=4))
        4
        """
        skip = {_digest(text) for text in exclude}
        buckets = [[e for digest, e in reversed(kept.items()) if digest not in skip]
                   for (_, r), kept in sorted(self._buckets.items()) if r < regime]
        picked: list[TrainingExample] = []
        for row in itertools.zip_longest(*buckets):  # round robin: every regime has its say
            picked += [e for e in row if e is not None]
        return picked if limit is None else picked[:limit]

    def admit(self, examples: Sequence[TrainingExample]) -> int:
        """Pool the examples that are held out by content; return how many were new to it.

        An example already pooled moves to the newest place; a withdrawn one is refused.
        """
        added = 0
        for example in examples:
            if self.capacity == 0 or not held_out(example.input, self.holdout_fraction,
                                                  self.seed):
                continue
            digest = _digest(example.input)
            if digest in self._withdrawn:
                continue
            bucket = (example.domain, example.regime)
            kept = self._buckets.setdefault(bucket, OrderedDict())
            if digest in kept:
                self._drop(bucket, digest)
            else:
                added += 1
            kept[digest] = example
            self._order[(bucket, digest)] = 0
            self._bytes += _size(example)
            while len(kept) > self.capacity:
                self._drop(bucket, next(iter(kept)))
        while self._bytes > self.max_bytes and self._order:
            self._drop(*next(iter(self._order)))
        return added

    def withdraw(self, texts: Iterable[str]) -> int:
        """Remove (and refuse from now on) examples with these inputs; return how many left."""
        removed = 0
        for text in texts:
            digest = _digest(text)
            for bucket in [b for b, kept in self._buckets.items() if digest in kept]:
                self._drop(bucket, digest)
                removed += 1
            self._withdrawn[digest] = None
            self._withdrawn.move_to_end(digest)
            while len(self._withdrawn) > max(self.capacity, 1) * 16:
                self._withdrawn.popitem(last=False)
        return removed

    def _drop(self, bucket: Bucket, digest: str) -> None:
        example = self._buckets[bucket].pop(digest)
        del self._order[(bucket, digest)]
        self._bytes -= _size(example)

    # -- persistence ------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready record (settings, examples in admission order, withdrawn digests)."""
        return {
            "format": FORMAT, "seed": self.seed, "holdout_fraction": self.holdout_fraction,
            "examples": [[bucket[0], self._buckets[bucket][digest].input,
                          self._buckets[bucket][digest].target, bucket[1]]
                         for bucket, digest in self._order],
            "withdrawn": list(self._withdrawn),
        }

    def load(self, record: Any) -> GatePool:
        """Replace the contents with a :meth:`to_dict` record; raise ValueError if malformed.

        Entries that the current settings would not hold out (written under another seed or
        fraction) are dropped, and the bounds of this pool apply.
        """
        if not isinstance(record, dict) or record.get("format") not in (1, FORMAT):
            raise ValueError(f"not a gate pool record of format {FORMAT}")
        entries, withdrawn = record.get("examples"), record.get("withdrawn", [])
        if not isinstance(entries, list) or not isinstance(withdrawn, list):
            raise ValueError("gate pool record: 'examples' and 'withdrawn' must be lists")
        examples = []
        for entry in entries:
            if not (isinstance(entry, list) and len(entry) in (3, 4)
                    and all(isinstance(v, str) for v in entry[:3])):
                raise ValueError(f"gate pool record: bad entry {str(entry)[:80]!r}")
            domain, text, target = entry[:3]
            regime = entry[3] if len(entry) == 4 else 0  # format 1 had no regimes
            try:
                examples.append(TrainingExample(input=text, target=target, domain=domain,
                                                regime=regime))
            except ValueError as exc:
                raise ValueError(f"gate pool record: bad entry {str(entry)[:80]!r}") from exc
        if not all(isinstance(d, str) for d in withdrawn):
            raise ValueError("gate pool record: 'withdrawn' must hold digests")
        self._reset()
        self._withdrawn.update(dict.fromkeys(withdrawn))
        self.admit(examples)
        if len(self) < len(examples):
            log.info("gate pool: %d of %d saved examples kept (seed, holdout fraction or "
                     "bounds differ from the saved pool's)", len(self), len(examples))
        return self


def _size(example: TrainingExample) -> int:
    return len(example.input.encode()) + len(example.target.encode())


class GatePoolFile:
    """Where a task's gate pool is saved: ``<store root>/gate-pool/<task>.json``.

    The store is shared by every learner of a deployment (adapters live there), so the pool
    survives a restart and follows the task when the group hands it to another learner.
    The name is not a sha256, so the store never takes it for an adapter.

    Parameters
    ----------
    fs, root
        An fsspec filesystem and the store's root on it (:class:`ArtifactStore` ``fs`` and
        ``root``).

    Examples
    --------
    >>> import tempfile, fsspec
    >>> file = GatePoolFile(fsspec.filesystem("file"), tempfile.mkdtemp())
    >>> pool = GatePool(capacity=5, max_bytes=1000, holdout_fraction=0.5)
    >>> pool.admit([TrainingExample(input=f"t{i}", target="a") for i in range(6)])
    3
    >>> file.save("sentiment", pool)
    >>> len(file.load("sentiment", GatePool(capacity=5, max_bytes=1000, holdout_fraction=0.5)))
    3
    >>> len(file.load("other", GatePool(capacity=5, max_bytes=1000, holdout_fraction=0.5)))
    0
    """

    def __init__(self, fs: Any, root: str) -> None:
        self.fs = fs
        self.root = root.rstrip("/")

    def path(self, task: str) -> str:
        return f"{self.root}/gate-pool/{task}.json"

    def load(self, task: str, pool: GatePool) -> GatePool:
        """``pool`` filled from the saved file; empty (and a warning) if the file is bad."""
        path = self.path(task)
        try:
            if not self.fs.exists(path):
                return pool.clear()
            size = self.fs.size(path)
            # Text plus JSON quoting and the withdrawn digests: far below this when sound.
            limit = 4 * pool.max_bytes + 80 * 16 * max(pool.capacity, 1) + (1 << 20)
            if size is not None and size > limit:
                raise ValueError(f"{size} bytes, more than a pool of {pool.max_bytes} bytes "
                                 "can take")
            with self.fs.open(path, "rb") as handle:
                record = json.loads(handle.read())
            return pool.load(record)
        except (OSError, ValueError) as exc:  # json's errors are ValueErrors too
            log.warning("gate pool %s unreadable (%s): starting with an empty pool", path, exc)
            return pool.clear()

    def save(self, task: str, pool: GatePool) -> None:
        """Write the pool (to a temporary name, then moved over the old file)."""
        path = self.path(task)
        self.fs.makedirs(f"{self.root}/gate-pool", exist_ok=True)
        staging = f"{path}.incoming"
        with self.fs.open(staging, "wb") as handle:
            handle.write(json.dumps(pool.to_dict(), ensure_ascii=False).encode())
        self.fs.mv(staging, path)


class TaskGatePools:
    """The gate pool of every task a learner updates, read on first use, saved after each.

    Parameters
    ----------
    file
        Where the pools are kept.
    capacity, max_bytes, holdout_fraction, seed
        As :class:`GatePool`'s; a ``capacity`` of 0 switches pooling off (nothing is saved).

    Examples
    --------
    >>> import tempfile, fsspec
    >>> file = GatePoolFile(fsspec.filesystem("file"), tempfile.mkdtemp())
    >>> pools = TaskGatePools(file, capacity=5, max_bytes=1000, holdout_fraction=0.5)
    >>> split = [TrainingExample(input=f"t{i}", target="a") for i in range(6)]
    >>> pools.after_update("sentiment", trained=[], holdout=split)
    >>> len(pools.pool("sentiment")), len(TaskGatePools(file, capacity=5, max_bytes=1000,
    ...                                               holdout_fraction=0.5).pool("sentiment"))
    (3, 3)
    """

    def __init__(self, file: GatePoolFile, *, capacity: int, max_bytes: int,
                 holdout_fraction: float, seed: int = 0) -> None:
        self.file = file
        self.capacity, self.max_bytes = capacity, max_bytes
        self.holdout_fraction, self.seed = holdout_fraction, seed
        self._pools: dict[str, GatePool] = {}

    def pool(self, task: str) -> GatePool:
        """The task's pool of earlier held-out examples (read from the store on first use)."""
        if task not in self._pools:
            pool = GatePool(capacity=self.capacity, max_bytes=self.max_bytes,
                            holdout_fraction=self.holdout_fraction, seed=self.seed)
            if self.capacity:
                self.file.load(task, pool)
            self._pools[task] = pool
        return self._pools[task]

    def clear(self, task: str) -> None:
        """Empty the task's pool, in memory and in the store (a fresh experiment)."""
        self.pool(task).clear()
        self._save(task)

    def after_update(self, task: str, *, trained: Iterable[TrainingExample],
                     holdout: Sequence[TrainingExample]) -> None:
        """Pool an update's held-out new examples; drop any pooled text it trained on."""
        pool = self.pool(task)
        # Held out by content but trained on: a request whose every new example hashed to
        # the holdout lent one to training (split._take_by_content).
        pool.withdraw(e.input for e in trained
                      if held_out(e.input, self.holdout_fraction, self.seed))
        pool.admit(holdout)
        self._save(task)

    def _save(self, task: str) -> None:
        if not self.capacity:
            return
        try:
            self.file.save(task, self.pool(task))
        except OSError as exc:  # the next restart starts from the last saved pool
            log.warning("gate pool of %s not saved to %s: %s", task, self.file.path(task), exc)
