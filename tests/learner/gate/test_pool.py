"""The gate pool in memory: what it admits, keeps, withdraws and merges."""

from __future__ import annotations

import pytest
from pool_helpers import FRACTION, examples, held_texts, pool

from driftloop.learner.gate.pool import GatePool
from driftloop.learner.gate.split import held_out
from driftloop.schemas.events import TrainingExample


def test_only_examples_held_out_by_content_are_admitted() -> None:
    trainable = [t for t in (f"x {i}" for i in range(50)) if not held_out(t, FRACTION)]
    p = pool()
    assert p.admit(examples(trainable[:5])) == 0 and len(p) == 0
    assert p.admit(examples(held_texts(3))) == 3
    assert p.admit(examples(held_texts(3))) == 0 and len(p) == 3  # already pooled


def test_examples_per_domain_without_excluded_texts() -> None:
    p = pool()
    p.admit(examples(held_texts(3, "movie"), "movies") + examples(held_texts(2, "news"), "nyt"))
    assert p.counts() == {"movies": 3, "nyt": 2}
    assert len(p.examples({"movies"})) == 3 and len(p.examples({"movies", "nyt"})) == 5
    assert p.examples({"tweets"}) == []
    first = held_texts(1, "movie")[0]
    assert first not in {e.input for e in p.examples({"movies"}, exclude=[first])}


def test_capacity_per_domain_keeps_the_newest() -> None:
    texts = held_texts(8)
    p = pool(capacity=5)
    p.admit(examples(texts))
    p.admit(examples(held_texts(2, "news"), "nyt"))
    assert [e.input for e in p.examples({"movies"})] == texts[-5:]
    assert p.counts() == {"movies": 5, "nyt": 2}


def test_byte_bound_drops_the_oldest_over_all_domains() -> None:
    texts = held_texts(6)
    one = len(texts[0].encode()) + len("positive")
    p = pool(capacity=100, max_bytes=3 * one + 1)
    p.admit(examples(texts[:3]))
    p.admit(examples(held_texts(1, "news"), "nyt"))
    assert p.size_bytes <= 3 * one + 1 and len(p) <= 3
    assert texts[0] not in {e.input for e in p.examples({"movies"})}
    assert p.counts()["nyt"] == 1


def test_zero_capacity_pools_nothing() -> None:
    p = pool(capacity=0)
    assert p.admit(examples(held_texts(3))) == 0 and len(p) == 0


def test_withdrawn_examples_leave_and_are_refused_later() -> None:
    texts = held_texts(3)
    p = pool()
    p.admit(examples(texts))
    assert p.withdraw([texts[0], "never pooled"]) == 1
    assert p.admit(examples(texts[:1])) == 0
    assert texts[0] not in {e.input for e in p.examples({"movies"})}


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"capacity": -1, "max_bytes": 10, "holdout_fraction": 0.2}, "capacity"),
    ({"capacity": 1, "max_bytes": 0, "holdout_fraction": 0.2}, "max_bytes"),
    ({"capacity": 1, "max_bytes": 10, "holdout_fraction": 1.0}, "holdout_fraction"),
])
def test_bad_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        GatePool(**kwargs)


def test_regimes_are_kept_apart_and_older_ones_are_what_must_not_be_forgotten() -> None:
    texts = held_texts(30)
    kept = pool(capacity=10)
    kept.admit([TrainingExample(input=t, target="positive", domain="live", regime=i // 10)
                for i, t in enumerate(texts)])
    # One regime does not push another out of the same domain's pool.
    assert len(kept) == 30 and kept.counts() == {"live": 30}
    assert [e.input for e in kept.examples({"live"}, regime=2)] == texts[20:]
    older = kept.older(2)
    assert {e.input for e in older} == set(texts[:20])
    assert [e.regime for e in older[:4]] == [0, 1, 0, 1]  # round robin, newest first
    assert len(kept.older(2, limit=5)) == 5 and kept.older(0) == []


def test_a_merge_keeps_both_sides_and_both_withdrawals() -> None:
    texts = held_texts(8)
    ours, theirs = pool(), pool()
    ours.admit(examples(texts[:4]))
    theirs.admit(examples(texts[3:]))
    ours.withdraw([texts[7]])
    theirs.withdraw([texts[0]])
    assert ours.merge(theirs.to_dict()) == 3  # texts 4, 5, 6 (7 we withdrew, 3 we had)
    assert {e.input for e in ours.examples({"movies"})} == set(texts[1:7])
    assert ours.admit(examples([texts[0], texts[7]])) == 0  # withdrawn for good
