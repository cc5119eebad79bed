"""The gate pool: held-out examples of earlier requests, kept per domain for later gates.

A request carries ~20 held-out new examples in the quick demo; a gate judging that few
promotes candidates that are no better than a strong parent by noise. Held-out membership is
a function of the text (:func:`~driftloop.learner.gate.split.held_out`), so an example held out
once is never trained on later, and the learner can keep it: each gate scores parent and
candidate on the request's own held-out examples plus the pooled ones of the same domains,
and evidence accumulates across updates.

The pool is bounded (the last ``capacity`` examples per domain, ``max_bytes`` of text in
all) and is saved as JSON next to the adapter store (:mod:`.pool_file`), so a restarted
learner, or the group member that takes the task over, continues with it. Loading re-checks
every entry against the current seed and holdout fraction, so a pool written under other
settings never puts a trainable example into a gate.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from typing import Any

from ...schemas.events import TrainingExample
from .split import held_out

__all__ = ["GatePool", "text_digest"]

log = logging.getLogger(__name__)

FORMAT = 2  # 2: each entry carries its regime; format 1 entries read as regime 0
Bucket = tuple[str, int]  # (domain, regime)


def text_digest(text: str) -> str:
    """What the gate remembers of a text: its sha256, in hex (pooled, withdrawn, and a
    rejected candidate's ledger, :mod:`.second_look`)."""
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
                 regime: int | None = None, since: int | None = None) -> list[TrainingExample]:
        """The pooled examples of ``domains`` (of one ``regime`` when given, or of the regimes
        ``since`` to ``regime``), oldest first, without the texts in ``exclude``.

        >>> pool = GatePool(capacity=9, max_bytes=10_000, holdout_fraction=0.999)
        >>> pool.admit([TrainingExample(input=f"t{i}", target="a", regime=i % 3)
        ...             for i in range(6)])
        6
        >>> [e.input for e in pool.examples({"default"}, regime=2)]
        ['t2', 't5']
        >>> [e.input for e in pool.examples({"default"}, regime=2, since=1)]
        ['t1', 't4', 't2', 't5']
        """
        skip = {text_digest(text) for text in exclude}
        wanted = set(domains)
        low = regime if since is None else since
        return [example for (domain, r), kept in sorted(self._buckets.items())
                if domain in wanted and (regime is None or low <= r <= regime)
                for digest, example in kept.items() if digest not in skip]

    def older(self, regime: int, *, exclude: Iterable[str] = (), limit: int | None = None,
              domains: Iterable[str] | None = None) -> list[TrainingExample]:
        """The pooled examples of every domain (or of ``domains``) from regimes before
        ``regime``: the traffic a candidate must not forget. With ``limit``, the newest of
        each bucket in turn.

        >>> pool = GatePool(capacity=9, max_bytes=10_000, holdout_fraction=0.999)
        >>> pool.admit([TrainingExample(input=f"t{i}", target="a", regime=i % 3)
        ...             for i in range(9)])
        9
        >>> sorted(e.input for e in pool.older(2))
        ['t0', 't1', 't3', 't4', 't6', 't7']
        >>> len(pool.older(2, limit=4)), pool.older(2, domains={"movies"})
        (4, [])
        """
        skip = {text_digest(text) for text in exclude}
        wanted = None if domains is None else set(domains)
        buckets = [[e for digest, e in reversed(kept.items()) if digest not in skip]
                   for (d, r), kept in sorted(self._buckets.items())
                   if r < regime and (wanted is None or d in wanted)]
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
            digest = text_digest(example.input)
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
        return self._withdraw_digests(text_digest(text) for text in texts)

    def _withdraw_digests(self, digests: Iterable[str]) -> int:
        removed = 0
        for digest in digests:
            for bucket in [b for b, kept in self._buckets.items() if digest in kept]:
                self._drop(bucket, digest)
                removed += 1
            self._withdrawn[digest] = None
            self._withdrawn.move_to_end(digest)
            while len(self._withdrawn) > max(self.capacity, 1) * 16:
                self._withdrawn.popitem(last=False)
        return removed

    def merge(self, record: Any) -> int:
        """Fold in another writer's :meth:`to_dict` record; return how many examples it added.

        What either side withdrew stays withdrawn, every example either side pooled is kept
        (this pool's stay the newest), and the bounds apply to the union.

        >>> a = GatePool(capacity=9, max_bytes=10_000, holdout_fraction=0.999)
        >>> b = GatePool(capacity=9, max_bytes=10_000, holdout_fraction=0.999)
        >>> _ = a.admit([TrainingExample(input="mine", target="x")])
        >>> _ = b.admit([TrainingExample(input=t, target="x") for t in ("theirs", "gone")])
        >>> _ = b.withdraw(["gone"])
        >>> a.merge(b.to_dict()), sorted(e.input for e in a.examples({"default"}))
        (1, ['mine', 'theirs'])
        """
        theirs = GatePool(capacity=self.capacity, max_bytes=self.max_bytes,
                          holdout_fraction=self.holdout_fraction, seed=self.seed).load(record)
        ours = self.to_dict()
        before = {digest for _, digest in self._order}
        theirs._withdraw_digests(list(self._withdrawn))  # both sides' withdrawals
        self.load(theirs.to_dict())  # their examples first, then ours on top: ours newest
        self.admit([TrainingExample(input=text, target=target, domain=domain, regime=regime)
                    for domain, text, target, regime in ours["examples"]])
        return len({digest for _, digest in self._order} - before)

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
