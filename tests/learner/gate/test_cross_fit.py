from __future__ import annotations

import pytest

from driftloop.learner.gate.cross_fit import fold_of, folds_for
from driftloop.learner.gate.split import RequestSplit
from driftloop.schemas.events import TrainingExample


def _example(text: str, origin: str = "new") -> TrainingExample:
    return TrainingExample(input=text, target="a" if len(text) % 2 else "b", origin=origin)


def test_no_fold_candidate_trains_or_stops_early_on_a_text_it_is_scored_on() -> None:
    train = (*(_example(f"text {i}") for i in range(40)),
             _example("text 3", "replay"), _example("old", "replay"))
    validation = tuple(_example(f"text {i}") for i in range(35, 45))  # 35-39 twice
    folds = folds_for(RequestSplit(train, validation, (), ()), 3, seed=4)
    assert len(folds) == 3
    scored = [e.input for fold in folds for e in fold.scored]
    # Every new text the candidate trains on is scored once per copy it has in the split.
    assert sorted(set(scored)) == sorted({e.input for e in (*train, *validation)
                                          if e.origin == "new"})
    for fold in folds:
        texts = {e.input for e in fold.scored}
        assert not texts & {e.input for e in (*fold.train, *fold.validation)}
        assert all(fold_of(t, 3, seed=4) == fold_of(next(iter(texts)), 3, seed=4)
                   for t in texts)
        assert any(e.input == "old" for e in fold.train)  # replayed examples always train


def test_folds_depend_on_the_seed_and_the_text_only() -> None:
    examples = tuple(_example(f"text {i}") for i in range(30))
    one = folds_for(RequestSplit(examples, (), (), ()), 2, seed=1)
    reordered = folds_for(RequestSplit(examples[::-1], (), (), ()), 2, seed=1)
    assert [sorted(e.input for e in f.scored) for f in one] == [
        sorted(e.input for e in f.scored) for f in reordered]
    other = folds_for(RequestSplit(examples, (), (), ()), 2, seed=2)
    assert [f.scored for f in one] != [f.scored for f in other]


def test_nothing_to_fold() -> None:
    assert folds_for(RequestSplit((_example("only"),), (), (), ()), 2) == []  # no rest to train
    assert folds_for(RequestSplit((_example("x", "replay"),), (), (), ()), 2) == []
    with pytest.raises(ValueError, match="folds"):
        fold_of("x", 0)
