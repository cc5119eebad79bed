from __future__ import annotations

import pytest

from driftloop.learner.gate.split import MIN_VALIDATION, held_out, split_request
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
    # chosen by content, topped up to the fraction: never less, a little more at times
    assert 20 <= len(parts.holdout_new) <= 28 and 5 <= len(parts.holdout_replay) <= 10
    assert all(e.origin == "new" for e in parts.holdout_new)
    assert all(e.origin == "replay" for e in parts.holdout_replay)


def test_early_stop_slice_only_when_it_holds_enough_examples() -> None:
    # 75 training examples: a 10% slice would be 8, too few to choose weights by
    assert not split_request(request(80, 20), validation_fraction=0.1).validation
    parts = split_request(request(240, 60), holdout_fraction=0.25, validation_fraction=0.1)
    held = len(parts.holdout_new) + len(parts.holdout_replay)
    assert len(parts.validation) == round((300 - held) * 0.1) >= MIN_VALIDATION
    assert len(parts.train) == 300 - held - len(parts.validation)


def test_split_depends_on_content_and_seed() -> None:
    assert split_request(request(40)) == split_request(request(40))
    assert split_request(request(40)) != split_request(request(40), seed=1)
    # another request id changes nothing: a re-sent request trains the same adapter
    big = split_request(request(240, 60))
    other = split_request(request(240, 60, request_id="other"))
    assert big == other and len(big.validation) >= 16
    assert split_request(request(240, 60), seed=1).validation != big.validation


def test_held_out_once_held_out_in_every_later_request() -> None:
    first = split_request(request(40), holdout_fraction=0.25)
    # a later request re-sends the same texts as replay, next to new ones
    later = TrainingRequest(id="later", ts=1, task="t", trigger="manual", examples=[
        *({"input": e.input, "target": "a", "origin": "replay"} for e in first.holdout_new),
        *({"input": e.input, "target": "a", "origin": "replay"} for e in first.train),
        *({"input": f"fresh {i}", "target": "a"} for i in range(20))])
    parts = split_request(later, holdout_fraction=0.25)
    trained = {e.input for e in (*parts.train, *parts.validation)}
    # held out by content (not by the per-target top-up): held out again, never trained on
    by_content = {e.input for e in first.holdout_new if held_out(e.input, 0.25)}
    assert by_content and by_content <= {e.input for e in parts.holdout_replay}
    assert not trained & by_content


def test_held_out_share_follows_the_fraction() -> None:
    texts = [f"review number {i}" for i in range(4000)]
    for fraction in (0.1, 0.25, 0.5):
        share = sum(held_out(t, fraction) for t in texts) / len(texts)
        assert abs(share - fraction) < 0.03
    assert [held_out(t, 0.25) for t in texts[:50]] != [held_out(t, 0.25, 1) for t in texts[:50]]


def test_small_requests() -> None:
    for n in range(2, 12):  # however the texts hash: one to train on, one for the gate
        parts = split_request(request(n))
        assert parts.train and parts.holdout_new and not parts.validation
    assert not split_request(request(1)).holdout_new


def test_an_all_held_out_request_lends_one_example_to_training() -> None:
    texts = [f"t{i}" for i in range(200) if held_out(f"t{i}", 0.25)][:3]
    examples = [{"input": t, "target": "a"} for t in texts]
    parts = split_request(TrainingRequest(id="r", ts=0, task="t", trigger="manual",
                                          examples=examples))
    assert len(parts.train) == 1 and len(parts.holdout_new) == 2
    assert held_out(parts.train[0].input, 0.25)  # the learner withdraws it from its pool


def test_each_target_gets_at_least_its_share_of_the_holdout() -> None:
    examples = [{"input": f"t{i}", "target": "pos" if i % 4 else "neg"} for i in range(80)]
    parts = split_request(TrainingRequest(id="r", ts=0, task="t", trigger="manual",
                                          examples=examples), holdout_fraction=0.25)
    held = [e.target for e in parts.holdout_new]
    assert held.count("neg") >= 5 and held.count("pos") >= 15
    # every text the hash holds out is there; the top-up only adds
    assert {e["input"] for e in examples if held_out(e["input"], 0.25)} <= {
        e.input for e in parts.holdout_new}


def test_duplicate_texts_stay_on_one_side() -> None:
    examples = [{"input": "same", "target": "a"}] * 3 + [{"input": "other", "target": "b"}]
    parts = split_request(TrainingRequest(id="r", ts=0, task="t", trigger="manual",
                                          examples=examples))
    assert {e.input for e in parts.train}.isdisjoint({e.input for e in parts.holdout_new})


@pytest.mark.parametrize(("holdout", "validation"), [(0.0, 0.1), (1.0, 0.1), (0.2, 1.0),
                                                     (0.2, -0.1)])
def test_bad_fractions(holdout: float, validation: float) -> None:
    with pytest.raises(ValueError, match="fraction"):
        split_request(request(10), holdout_fraction=holdout, validation_fraction=validation)
