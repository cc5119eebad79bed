"""McNemar's exact test: its tail is exact, its error rate holds, its figures are right."""

from __future__ import annotations

import random
from math import comb

import pytest

from driftloop.learner.gate.paired import binomial_tail, compare, pool, stratify_weights


@pytest.mark.parametrize(("k", "n"), [(0, 5), (3, 5), (5, 5), (7, 20), (15, 20), (60, 100)])
def test_the_tail_is_the_exact_binomial_sum(k: int, n: int) -> None:
    exact = sum(comb(n, i) for i in range(k, n + 1)) / 2 ** n
    assert binomial_tail(k, n) == pytest.approx(exact, rel=1e-12)


def test_a_thousand_pairs_do_not_overflow() -> None:
    assert 0.0 < binomial_tail(1_100, 2_000) < 1e-4 and binomial_tail(900, 2_000) > 0.99


def test_discordant_pairs_effect_and_interval() -> None:
    candidate = [True] * 30 + [False] * 10 + [True] * 5 + [False] * 55
    parent = [True] * 30 + [True] * 10 + [False] * 5 + [False] * 55
    c = compare(candidate, parent)
    assert (c.n, c.wins, c.losses) == (100, 5, 10)
    assert c.effect == pytest.approx(-0.05)
    assert c.parent_score == 0.4 and c.candidate_score == 0.35
    low, high = c.interval()
    assert low < c.effect < high and high - low < 0.2
    assert c.p_better > 0.9 and c.p_worse == pytest.approx(binomial_tail(10, 15))


def test_no_better_candidate_passes_at_most_alpha_of_the_time() -> None:
    # Equal accuracies (0.8), independent errors: the false-promotion rate stays under 5%.
    rng = random.Random(7)
    passed = 0
    for _ in range(2_000):
        parent = [rng.random() < 0.8 for _ in range(120)]
        candidate = [rng.random() < 0.8 for _ in range(120)]
        passed += compare(candidate, parent).p_better < 0.05
    assert passed / 2_000 <= 0.05


def test_outcomes_of_another_length_are_refused() -> None:
    with pytest.raises(ValueError, match="3 candidate outcomes for 2"):
        compare([True, True, False], [True, False])


def test_post_stratification_weighs_a_slice_as_the_traffic_is_mixed() -> None:
    # A slice of 10 positives and 30 negatives from traffic that is half and half: the
    # candidate gets every positive right and 20 negatives, the parent the other way round.
    targets = ["pos"] * 10 + ["neg"] * 30
    candidate = [True] * 10 + [True] * 20 + [False] * 10
    parent = [False] * 10 + [True] * 30
    plain = compare(candidate, parent)
    assert plain.effect == pytest.approx(-0.0) and plain.p_better > 0.5
    weights = stratify_weights(targets, ["pos"] * 500 + ["neg"] * 500)
    weighted = compare(candidate, parent, weights=weights)
    # As the traffic: positives 1.0 against 0.0, negatives 0.667 against 1.0.
    assert weighted.candidate_score == pytest.approx((1.0 + 20 / 30) / 2, abs=1e-3)
    assert weighted.parent_score == pytest.approx(0.5, abs=1e-3)
    assert weighted.effect == pytest.approx(weighted.candidate_score - weighted.parent_score)
    assert weighted.p_better < 0.05 < weighted.p_worse
    assert (weighted.wins, weighted.losses) == (plain.wins, plain.losses)
    assert "post-stratified by label" in weighted.describe()
    low, high = weighted.interval()
    assert low < weighted.effect < high
    # Pooled with an unweighted slice, every example keeps its weight (1 for the other).
    both = pool(weighted, compare([True, False], [False, False]))
    assert both.n == 42 and both.wins == plain.wins + 1 and len(both.weights) == 42
    assert sum(both.weights) == pytest.approx(sum(weights) + 2)


def test_equal_mixes_weigh_one_and_bad_weights_are_refused() -> None:
    weights = stratify_weights(["a", "b"] * 10, ["a", "b"] * 50)
    assert weights == pytest.approx([1.0] * 20)
    with pytest.raises(ValueError, match="non-negative weights"):
        compare([True, False], [False, False], weights=[1.0])
    with pytest.raises(ValueError, match="non-negative weights"):
        compare([True, False], [False, False], weights=[-1.0, 2.0])
