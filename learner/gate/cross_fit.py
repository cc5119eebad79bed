"""Cross-fitting: every new label of a request is gate evidence, not only the held-out share.

Soon after a shift the gate's recent slice is a few dozen texts (a quarter of the request's
new examples, plus the pool's of the same regime), and a candidate 10-15 points better on
clean texts was not shown better on them (traced in docs/benchmarks.md). The other three
quarters are trained on, so they say nothing about the candidate itself; they can still
say something about the *update*: split them into ``k`` folds, train one fold candidate per
fold on everything else (same start, settings and seed), and score each on the fold it
never saw. Each fold text then has a parent outcome and an outcome of a candidate that did
not train on it, and those pairs join the recent slice's paired test.

What the fold candidates measure is the update's procedure on a little less data than the
candidate that is stored and served; the candidate itself is still scored on every text it
never trained on, and none of the texts it trained on ever enters the gate pool
(:mod:`.pool`). This module only divides the examples; the learner trains
(:mod:`driftloop.learner.training.update`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from ...schemas.enums import ExampleOrigin
from ...schemas.events import TrainingExample
from .split import RequestSplit

__all__ = ["Fold", "fold_of", "folds_for"]


@dataclass(frozen=True, slots=True)
class Fold:
    """One fold candidate's data: what it trains and early-stops on, and what it is scored on."""

    train: tuple[TrainingExample, ...]
    validation: tuple[TrainingExample, ...]
    scored: tuple[TrainingExample, ...]


def fold_of(text: str, folds: int, seed: int = 0) -> int:
    """The fold a text belongs to: a stable hash of the seed and the text (duplicates of a
    text always share a fold, so no fold candidate trains on the text it is scored on).

    >>> fold_of("great film", 2) == fold_of("great film", 2)
    True
    >>> sorted({fold_of(f"text {i}", 3) for i in range(100)})
    [0, 1, 2]
    """
    if folds < 1:
        raise ValueError(f"folds must be >= 1, got {folds}")
    digest = hashlib.sha256(f"{seed}\0fold\0{text}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % folds


def folds_for(split: RequestSplit, folds: int, seed: int = 0) -> list[Fold]:
    """The fold candidates of a split: the new examples it trains on (training and
    early-stop parts) divided into ``folds`` by :func:`fold_of`; each fold candidate keeps
    every other example of both parts (the replayed ones always). Folds with nothing to
    score, or nothing left to train on, are left out.

    Examples
    --------
    >>> new = tuple(TrainingExample(input=f"n{i}", target="a") for i in range(8))
    >>> old = (TrainingExample(input="r", target="a", origin="replay"),)
    >>> parts = folds_for(RequestSplit(new + old, (), (), ()), 2)
    >>> sorted(len(f.scored) for f in parts), sum(len(f.scored) for f in parts)
    ([4, 4], 8)
    >>> all(len(f.train) == 9 - len(f.scored) for f in parts)  # the replayed one stays
    True
    >>> folds_for(RequestSplit(new, (), (), ()), 1)
    []
    """
    if folds < 2:
        return []
    scored_by_fold: list[list[TrainingExample]] = [[] for _ in range(folds)]
    for example in (*split.train, *split.validation):
        if example.origin is ExampleOrigin.NEW:
            scored_by_fold[fold_of(example.input, folds, seed)].append(example)
    result = []
    for scored in scored_by_fold:
        texts = {e.input for e in scored}
        train = _without(split.train, texts)
        if scored and train:
            result.append(Fold(train, _without(split.validation, texts), tuple(scored)))
    return result


def _without(examples: Sequence[TrainingExample], texts: set[str]) -> tuple[TrainingExample, ...]:
    return tuple(e for e in examples if e.input not in texts)
