"""A parent's gate results, kept per example: the next gate against the same parent scores
only the texts it has not seen.

The gate scores parent and candidate on every held-out text of the request and of the gate
pool (up to ``gate_recent_examples + gate_old_examples``). A parent does not change between
updates, and after a shift one parent often faces several candidates in a row, each judged
on the same pooled texts plus a few new ones: scoring the parent again was a third of an
update's time once the pool had filled. The candidate is always scored in full.

Results are kept per parent version and example (a 16-byte digest of its input and target,
so long texts are not held twice), the challenge suite's answers beside the held-out texts,
with what else decides the parent's answer (its label order, token budget and prompt
template) in the key, for the last few parents, in memory only: a restarted learner scores
again.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from typing import TypeVar

from ...schemas.events import TrainingExample
from ..models.task_model import Evaluation

__all__ = ["ParentScores"]

Example = tuple[bool, float, float]  # hit, proper score, loss
T = TypeVar("T")


class ParentScores:
    """Per-example results of recent parents, the ``parents`` newest kept.

    Examples
    --------
    >>> calls = []
    >>> def evaluate(examples):
    ...     calls.append([e.input for e in examples])
    ...     hits = [e.input == e.target for e in examples]
    ...     return Evaluation(hits, 0.5, [float(h) for h in hits], [0.5] * len(hits))
    >>> cache = ParentScores(parents=2)
    >>> a, b = TrainingExample(input="x", target="x"), TrainingExample(input="y", target="n")
    >>> cache.evaluate(("v1",), [a, b], evaluate).hits
    [True, False]
    >>> cache.evaluate(("v1",), [b, TrainingExample(input="z", target="z"), a], evaluate).hits
    [False, True, True]
    >>> calls  # the second gate scored only the text it had not seen
    [['x', 'y'], ['z']]
    """

    def __init__(self, *, parents: int = 4, examples_per_parent: int = 5_000) -> None:
        if parents < 1 or examples_per_parent < 1:
            raise ValueError("parents and examples_per_parent must be >= 1")
        self.parents = parents
        self.examples_per_parent = examples_per_parent
        self._kept: OrderedDict[Hashable, dict[bytes, Example]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def evaluate(self, key: Hashable, examples: Sequence[TrainingExample],
                 evaluate: Callable[[list[TrainingExample]], Evaluation]) -> Evaluation:
        """The parent's results on ``examples`` in order: kept ones reused, the others
        scored by ``evaluate`` (and kept when it gives per-example losses)."""
        kept = self._parent(key, len(examples))
        digests = [_digest(e) for e in examples]
        missing = self._missing(kept, digests, examples)
        if missing:
            fresh = evaluate(list(missing.values()))
            if fresh.losses is None:  # nothing to keep per example: score all as before
                self._kept.pop(key, None)
                return evaluate(list(examples)) if len(missing) != len(examples) else fresh
            for digest, hit, score, loss in zip(missing, fresh.hits, fresh.scores,
                                                fresh.losses, strict=True):
                kept[digest] = (bool(hit), float(score), float(loss))
        rows = [kept[d] for d in digests]
        losses = [loss for _, _, loss in rows]
        return Evaluation([hit for hit, _, _ in rows],
                          sum(losses) / len(losses) if losses else 0.0,
                          [score for _, score, _ in rows], losses)

    def answers(self, key: Hashable, prompts: Sequence[str], expected: Sequence[str],
                score: Callable[[list[str], list[str]], list[bool]]) -> list[bool]:
        """The parent's challenge answers (right or wrong) on ``prompts`` in order: kept
        ones reused, the others scored by ``score``. A running suite changes by a few cases
        per update, and a generator's answers are most of what scoring its parent costs.

        >>> cache, asked = ParentScores(), []
        >>> def score(prompts, expected):
        ...     asked.append(prompts)
        ...     return [p == e for p, e in zip(prompts, expected)]
        >>> cache.answers(("v1",), ["a", "b"], ["a", "x"], score)
        [True, False]
        >>> cache.answers(("v1",), ["c", "a", "b"], ["c", "a", "x"], score), asked
        ([True, True, False], [['a', 'b'], ['c']])
        """
        kept = self._parent(key, len(prompts))
        pairs = list(zip(prompts, expected, strict=True))
        digests = [_digest_of(b"challenge", p, e) for p, e in pairs]
        missing = self._missing(kept, digests, pairs)
        if missing:
            fresh = score([p for p, _ in missing.values()], [e for _, e in missing.values()])
            for digest, hit in zip(missing, fresh, strict=True):
                kept[digest] = (bool(hit), float(hit), 0.0)
        return [kept[d][0] for d in digests]

    def _missing(self, kept: dict[bytes, Example], digests: Sequence[bytes],
                 items: Sequence[T]) -> dict[bytes, T]:
        """The items not kept yet, once each, by digest (counted as misses; the rest as
        hits)."""
        missing = {d: item for d, item in zip(digests, items, strict=True) if d not in kept}
        self.hits += len(items) - len(missing)
        self.misses += len(missing)
        return missing

    def _parent(self, key: Hashable, adding: int) -> dict[bytes, Example]:
        """The kept results of one parent, the newest ``parents`` kept, at most
        ``examples_per_parent`` each (a parent over the bound starts again)."""
        kept = self._kept.setdefault(key, {})
        self._kept.move_to_end(key)
        while len(self._kept) > self.parents:
            self._kept.popitem(last=False)
        if len(kept) + adding > self.examples_per_parent:
            kept.clear()  # bounded: start again rather than grow
        return kept


def _digest(example: TrainingExample) -> bytes:
    return _digest_of(b"holdout", example.input, example.target)


def _digest_of(part: bytes, text: str, expected: str) -> bytes:
    digest = hashlib.blake2b(digest_size=16, person=part)
    digest.update(text.encode())
    digest.update(b"\0")
    digest.update(expected.encode())
    return digest.digest()
