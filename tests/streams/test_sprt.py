"""PairedSPRT: error rates measured by seeded simulation, truncation, settings refused."""

from __future__ import annotations

import numpy as np
import pytest

from driftloop.streams.errors import ConfigurationError
from driftloop.streams.sprt import PairedSPRT, Verdict
from driftloop.streams.state_codec import dumps, loads


def run(p_candidate, p_head, *, reps: int, seed: int, **params) -> list[PairedSPRT]:
    """``reps`` independent tests on Bernoulli outcomes; the accuracies may be arrays over
    time (drift shared by both arms)."""
    rng = np.random.default_rng(seed)
    limit = params.get("max_samples", 2000)
    pc = np.broadcast_to(np.asarray(p_candidate, dtype=float), (limit,))
    ph = np.broadcast_to(np.asarray(p_head, dtype=float), (limit,))
    tests = []
    for _ in range(reps):
        candidate = (rng.random(limit) < pc).tolist()
        head = (rng.random(limit) < ph).tolist()
        test = PairedSPRT(**params)
        for c, h in zip(candidate, head, strict=True):
            if test.update(c, h).verdict is not None:
                break
        tests.append(test)
    return tests


def share(tests: list[PairedSPRT], verdict: Verdict, *, truncated: bool | None = None) -> float:
    return sum(t.verdict is verdict and (truncated is None or t.truncated is truncated)
               for t in tests) / len(tests)


def test_a_candidate_no_better_than_the_head_is_promoted_at_most_alpha_of_the_time():
    # 2,000 tests watched after every pair: the bound holds under continuous monitoring.
    tests = run(0.8, 0.8, reps=2000, seed=1, alpha=0.05, max_samples=400)
    assert share(tests, Verdict.PROMOTE) <= 0.05
    assert all(t.verdict is not None for t in tests)


def test_the_bound_holds_when_both_arms_drift_together():
    # Accuracy falls from 0.9 to 0.5 during the test for both versions: the paired design
    # compares them at the same time, so the drift does not look like a difference.
    drift = np.linspace(0.9, 0.5, 400)
    tests = run(drift, drift, reps=1000, seed=2, alpha=0.05, min_samples=1, max_samples=400)
    assert share(tests, Verdict.PROMOTE) <= 0.05


def test_a_worse_candidate_is_rejected_and_almost_never_promoted():
    tests = run(0.6, 0.9, reps=1000, seed=3, alpha=0.05, beta=0.2)
    assert share(tests, Verdict.PROMOTE) <= 0.01
    assert share(tests, Verdict.REJECT, truncated=False) == 1.0
    assert np.mean([t.pairs for t in tests]) < 40  # a clear loser goes quickly


def test_a_candidate_at_the_effect_is_rejected_early_at_most_beta_of_the_time():
    # Odds ratio 1.5: head 0.8, candidate 6/7 (odds 6 = 1.5 x 4).
    tests = run(6 / 7, 0.8, reps=600, seed=4, alpha=0.05, beta=0.2, odds_ratio=1.5,
                max_samples=20_000)
    assert share(tests, Verdict.REJECT) <= 0.2
    assert share(tests, Verdict.PROMOTE) >= 0.8


def test_a_clearly_better_candidate_is_promoted_within_a_hundred_pairs():
    tests = run(0.9, 0.6, reps=500, seed=5)
    assert share(tests, Verdict.PROMOTE) >= 0.99
    assert np.mean([t.pairs for t in tests]) < 100


def test_min_samples_defers_and_max_samples_rejects():
    test = PairedSPRT(min_samples=30, max_samples=40)
    for _ in range(29):
        test.update(True, False)  # overwhelming evidence, too early
    assert test.verdict is None and test.likelihood_ratio > 20
    assert test.update(True, False).verdict is Verdict.PROMOTE and test.pairs == 30
    test.update(False, True)
    assert test.pairs == 30 and test.wins == 30  # a decided test ignores more pairs
    tie = PairedSPRT(min_samples=1, max_samples=40)
    for _ in range(40):
        tie.update(True, True)  # concordant: no evidence either way
    assert (tie.verdict, tie.truncated, tie.log_ratio) == (Verdict.REJECT, True, 0.0)
    assert "max_samples" in tie.summary() and "40" in tie.summary()


def test_summary_names_the_evidence_and_the_state_round_trips():
    test = PairedSPRT(min_samples=1)
    for _ in range(17):
        test.update(True, False)
    assert test.verdict is Verdict.PROMOTE
    assert "17 for the candidate" in test.summary() and ">= 1/alpha = 20" in test.summary()
    again = loads(dumps(test))
    assert (again.verdict, again.pairs, again.log_ratio) == (test.verdict, 17, test.log_ratio)
    assert test.clone().get_params() == test.get_params() and test.clone().pairs == 0


@pytest.mark.parametrize("params, match", [
    ({"alpha": 0.0}, "alpha"), ({"alpha": 0.5}, "alpha"), ({"alpha": "0.05"}, "alpha"),
    ({"beta": -0.1}, "beta"), ({"beta": float("nan")}, "beta"),
    ({"odds_ratio": 1.0}, "odds_ratio"), ({"odds_ratio": 0.5}, "odds_ratio"),
    ({"odds_ratio": float("inf")}, "odds_ratio"), ({"min_samples": 0}, "min_samples"),
    ({"min_samples": 2.5}, "min_samples"), ({"max_samples": True}, "max_samples"),
    ({"min_samples": 10, "max_samples": 5}, "max_samples"),
])
def test_bad_settings_are_refused_at_construction(params, match):
    with pytest.raises(ConfigurationError, match=match):
        PairedSPRT(**params)
