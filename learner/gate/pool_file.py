"""Where a task's gate pool is kept, written by compare-and-swap so no learner loses another's.

The store is shared by every learner of a deployment, and a rebalance can hand a task to
another learner while the first is still in an update: both then save the same task's pool.
Each save is a new *generation* (``<store root>/gate-pool/<deployment>/<task>/<generation>.json``:
deployments sharing a store keep their pools apart) created
only if no one took that number first (``os.link`` on a local disk, which refuses an
existing name); a writer that finds a newer generation than the one it read merges it in
(:meth:`~.pool.GatePool.merge`) and tries the next number. A learner also merges a newer
generation before each update, so what another learner pooled is judged on at once.
A pool saved by an older driftloop as ``gate-pool/<task>.json`` reads as generation 0.
"""

from __future__ import annotations

import json
import logging
import os
import posixpath
import random
import time
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from ...schemas.events import TrainingExample
from .pool import GatePool
from .split import held_out

__all__ = ["GatePoolFile", "PoolContentionError", "TaskGatePools"]

log = logging.getLogger(__name__)

KEEP_GENERATIONS = 3
"""Generations kept per task (older ones are deleted after a save)."""
MAX_ATTEMPTS = 32
"""Saves tried before giving up (the pool stays in memory; the next save carries it)."""
BACKOFF_SECONDS = 0.002
"""First bound of the random wait between two attempts (doubling, at most 64 times it)."""


class PoolContentionError(OSError):
    """Every attempt to save a gate pool found a newer generation first."""


class GatePoolFile:
    """A task's gate pool in the store, one file per generation.

    Parameters
    ----------
    fs, root
        An fsspec filesystem and the store's root on it (:class:`ArtifactStore` ``fs`` and
        ``root``). The names are not sha256 digests, so the store never takes them for
        adapters.
    deployment
        The deployment's name (``Settings.deployment_id``): its pools are its own.

    Examples
    --------
    >>> import tempfile, fsspec
    >>> file = GatePoolFile(fsspec.filesystem("file"), tempfile.mkdtemp())
    >>> pool = GatePool(capacity=5, max_bytes=1000, holdout_fraction=0.5)
    >>> pool.admit([TrainingExample(input=f"t{i}", target="a") for i in range(6)])
    3
    >>> file.save("sentiment", pool, read=0)
    1
    >>> fresh = GatePool(capacity=5, max_bytes=1000, holdout_fraction=0.5)
    >>> file.load("sentiment", fresh), len(fresh)
    (1, 3)
    >>> file.load("other", GatePool(capacity=5, max_bytes=1000, holdout_fraction=0.5))
    0
    """

    def __init__(self, fs: Any, root: str, *, deployment: str = "default") -> None:
        self.fs = fs
        self.root = root.rstrip("/")
        self.deployment = deployment
        self.local = "file" in _protocols(fs)

    def folder(self, task: str) -> str:
        return f"{self.root}/gate-pool/{self.deployment}/{task}"

    def path(self, task: str, generation: int | None = None) -> str:
        """The file of one generation (the newest when None; the pre-generation name when
        there is none)."""
        if generation is None:
            generation = self.latest(task)
        if generation == 0:
            return f"{self.root}/gate-pool/{task}.json"
        return f"{self.folder(task)}/{generation:012d}.json"

    def latest(self, task: str) -> int:
        """The newest generation saved (0: none, or only a pre-generation file)."""
        try:
            names = self.fs.ls(self.folder(task), detail=False)
        except FileNotFoundError:
            return 0
        numbers = [int(stem) for stem in (posixpath.basename(n).removesuffix(".json")
                                          for n in names if n.endswith(".json"))
                   if stem.isdigit()]
        return max(numbers, default=0)

    def load(self, task: str, pool: GatePool) -> int:
        """Fill ``pool`` from the newest generation; return that generation.

        A missing file is an empty pool; a bad one is logged and read as empty.
        """
        generation = self.latest(task)
        record = self._read(task, generation, pool)
        if record is None:
            pool.clear()
        return generation

    def merge_newer(self, task: str, pool: GatePool, read: int) -> int:
        """Merge every generation newer than ``read`` into ``pool``; return the newest."""
        generation = self.latest(task)
        if generation > read:
            record = self._read(task, generation, pool, fill=False)
            if record is not None:
                added = pool.merge(record)
                log.info("gate pool of %s: generation %d from another learner merged (%d "
                         "examples new here)", task, generation, added)
        return generation

    def save(self, task: str, pool: GatePool, *, read: int) -> int:
        """Write ``pool`` as the generation after ``read``; if another writer got there
        first, merge what it wrote and try the next number. Returns the generation written.
        """
        for attempt in range(MAX_ATTEMPTS):
            read = self.merge_newer(task, pool, read)
            target = read + 1
            # A number below the newest is not free but pruned: a save under it would be
            # orphaned below the newest, its examples lost to every reader (seen with four
            # savers on threads, one run in six). Checked just before the write, and after
            # it, since a writer can stall between the two while others save and prune.
            if self.latest(task) < target and self._create(self.path(task, target),
                                                           pool.to_dict()):
                self._prune(task, target)
                if self._kept_by_newest(task, pool, target):
                    return target
                log.info("gate pool of %s: generation %d was saved under a pruned number; "
                         "saving again", task, target)
                continue
            log.info("gate pool of %s: generation %d taken by another learner; merging",
                     task, target)
            # Jittered, growing waits: a writer that keeps losing the race to busier ones
            # (seen with four savers on two loaded cores) lets them finish, then wins.
            time.sleep(random.uniform(0.0, BACKOFF_SECONDS * 2 ** min(attempt, 6)))
        raise PoolContentionError(f"gate pool of {task}: {MAX_ATTEMPTS} saves in a row found "
                                  "a newer generation")

    def _kept_by_newest(self, task: str, pool: GatePool, written: int) -> bool:
        """Whether the newest generation holds what ``pool`` holds: it is the one just
        ``written``, or a later one that merged it."""
        newest = self.latest(task)
        if newest == written:
            return True
        record = self._read(task, newest, pool, fill=False)
        if record is None:
            return False
        ours = pool.to_dict()
        theirs = {(e[0], e[1]) for e in record.get("examples", [])}
        return ({(e[0], e[1]) for e in ours["examples"]} <= theirs
                and set(ours["withdrawn"]) <= set(record.get("withdrawn", [])))

    # -- the file operations ------------------------------------------------------------------

    def _read(self, task: str, generation: int, pool: GatePool, *,
              fill: bool = True) -> dict[str, Any] | None:
        path = self.path(task, generation)
        try:
            if not self.fs.exists(path):
                return None
            size = self.fs.size(path)
            # Text plus JSON quoting and the withdrawn digests: far below this when sound.
            limit = 4 * pool.max_bytes + 80 * 16 * max(pool.capacity, 1) + (1 << 20)
            if size is not None and size > limit:
                raise ValueError(f"{size} bytes, more than a pool of {pool.max_bytes} bytes "
                                 "can take")
            with self.fs.open(path, "rb") as handle:
                record = json.loads(handle.read())
            if fill:
                pool.load(record)
            else:  # checked the same way before a merge takes it
                GatePool(capacity=pool.capacity, max_bytes=pool.max_bytes,
                         holdout_fraction=pool.holdout_fraction, seed=pool.seed).load(record)
            return record
        except (OSError, ValueError) as exc:  # json's errors are ValueErrors too
            log.warning("gate pool %s unreadable (%s): starting with an empty pool", path, exc)
            return None

    def _create(self, path: str, record: dict[str, Any]) -> bool:
        """Write ``path`` only if it does not exist yet; False when someone else has it."""
        self.fs.makedirs(posixpath.dirname(path), exist_ok=True)
        staging = f"{path}.incoming-{uuid.uuid4().hex}"
        with self.fs.open(staging, "wb") as handle:
            handle.write(json.dumps(record, ensure_ascii=False).encode())
        try:
            if self.local:
                try:
                    os.link(staging, path)  # atomic, and refuses an existing name
                except FileExistsError:
                    return False
                return True
            # Object stores: the best this layer can do without a conditional-write API.
            if self.fs.exists(path):
                return False
            self.fs.mv(staging, path)
            return True
        finally:
            if self.fs.exists(staging):
                self.fs.rm(staging)

    def _prune(self, task: str, newest: int) -> None:
        for generation in range(max(newest - KEEP_GENERATIONS - 8, 1),
                                newest - KEEP_GENERATIONS + 1):
            path = self.path(task, generation)
            try:
                if self.fs.exists(path):
                    self.fs.rm(path)
            except OSError as exc:  # a concurrent prune; harmless
                log.debug("gate pool %s not pruned: %s", path, exc)


def _protocols(fs: Any) -> tuple[str, ...]:
    protocol = getattr(fs, "protocol", ())
    return (protocol,) if isinstance(protocol, str) else tuple(protocol)


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
        self._read: dict[str, int] = {}  # the generation each in-memory pool has seen

    def pool(self, task: str) -> GatePool:
        """The task's pool of earlier held-out examples: read from the store on first use,
        and merged with any newer generation another learner saved since."""
        if task not in self._pools:
            pool = GatePool(capacity=self.capacity, max_bytes=self.max_bytes,
                            holdout_fraction=self.holdout_fraction, seed=self.seed)
            self._read[task] = self.file.load(task, pool) if self.capacity else 0
            self._pools[task] = pool
        elif self.capacity:
            try:
                self._read[task] = self.file.merge_newer(task, self._pools[task],
                                                         self._read[task])
            except OSError as exc:
                log.warning("gate pool of %s: newer generations not read: %s", task, exc)
        return self._pools[task]

    def clear(self, task: str) -> None:
        """Empty the task's pool, in memory and in the store (a fresh experiment)."""
        self.pool(task).clear()
        self._read[task] = self.file.latest(task) if self.capacity else 0  # no merge back
        self._save(task)

    def after_update(self, task: str, *, trained: Iterable[TrainingExample],
                     holdout: Sequence[TrainingExample]) -> None:
        """Pool an update's held-out new examples; drop any pooled text it trained on."""
        pool = self.pool_in_memory(task)
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
            self._read[task] = self.file.save(task, self.pool_in_memory(task),
                                              read=self._read.get(task, 0))
        except OSError as exc:  # the next restart starts from the last saved pool
            log.warning("gate pool of %s not saved to %s: %s", task, self.file.folder(task),
                        exc)

    def pool_in_memory(self, task: str) -> GatePool:
        """The task's pool as this learner holds it (no store read)."""
        return self._pools[task] if task in self._pools else self.pool(task)
