from __future__ import annotations

import pytest

from driftloop.learner.split import MIN_VALIDATION, split_request
from driftloop.schemas.events import TrainingRequest


def request(n_new: int, n_replay: int = 0, request_id: str = "r") -> TrainingRequest:
    examples = [{"input": f"new {i}", "target": "a"} for i in range(n_new)]
    examples += [{"input": f"old {i}", "target": "a", "origin": "replay"}
                 for i in range(n_replay)]
    return TrainingRequest(id=request_id, ts=0, task="t", trigger="manual", examples=examples)


def test_parts_are_disjoint_and_cover_the_request() -> None:
    parts = split_request(request(80, 20), holdout_fraction=0.25, validation_fraction=0.1)
    everything = [*parts.train, *parts.validation, *parts.holdout_new, *parts.holdout_replay]
    assert sorted(e.input for e in everything) == sorted(e.input for e in request(80, 20).examples)
    assert len(parts.holdout_new) == 20 and len(parts.holdout_replay) == 5
    assert all(e.origin == "new" for e in parts.holdout_new)
    assert all(e.origin == "replay" for e in parts.holdout_replay)


def test_early_stop_slice_only_when_it_holds_enough_examples() -> None:
    # 75 training examples: a 10% slice would be 8, too few to choose weights by
    assert not split_request(request(80, 20), validation_fraction=0.1).validation
    parts = split_request(request(240, 60), holdout_fraction=0.25, validation_fraction=0.1)
    assert len(parts.validation) == 22 >= MIN_VALIDATION
    assert len(parts.train) == 300 - 60 - 15 - 22


def test_split_depends_on_request_id_and_seed_only() -> None:
    assert split_request(request(40)) == split_request(request(40))
    assert split_request(request(40)) != split_request(request(40, request_id="other"))
    assert split_request(request(40)) != split_request(request(40), seed=1)


def test_small_requests() -> None:
    parts = split_request(request(2))
    assert len(parts.train) == 1 and len(parts.holdout_new) == 1 and not parts.validation
    assert not split_request(request(1)).holdout_new


@pytest.mark.parametrize(("holdout", "validation"), [(0.0, 0.1), (1.0, 0.1), (0.2, 1.0),
                                                     (0.2, -0.1)])
def test_bad_fractions(holdout: float, validation: float) -> None:
    with pytest.raises(ValueError, match="fraction"):
        split_request(request(10), holdout_fraction=holdout, validation_fraction=validation)
