"""Scoring drift detection on streams with known change points."""

from __future__ import annotations

import numpy as np
import pytest

from driftloop.schemas.settings import WorkerSettings
from driftloop.streams.errors import ConfigurationError
from driftloop.tools.bench.quality.drift_eval import (
    CANDIDATES,
    DriftScenario,
    DriftScore,
    driftloop_watch,
    evaluate,
    river_adwin_on_confidence,
    scenarios,
    score_alerts,
)

SUDDEN = {"sudden, score": DriftScenario("sudden", "score", 12_000, (6_000,)),
          "sudden, embedding": DriftScenario("sudden", "embedding", 12_000, (6_000,))}


def test_driftloop_finds_a_sudden_shift_in_either_signal_with_a_finite_delay():
    scores = evaluate(SUDDEN, runs=2, seed=5, candidates=["driftloop (worker set-up)"])
    for score in scores:
        assert score.detected == score.changes == 2, score
        assert score.median_delay is not None and 0 < score.median_delay < 3_000, score
        assert score.false_alarms == 0, score


def test_adwin_on_confidence_cannot_see_a_shift_in_the_embeddings_only():
    by_scenario = {s.scenario: s for s in
                   evaluate(SUDDEN, runs=2, seed=5, candidates=["River ADWIN on confidence"])}
    assert by_scenario["sudden, score"].detected == 2
    assert by_scenario["sudden, embedding"].detected == 0
    assert by_scenario["sudden, embedding"].missed == 2


def test_stable_streams_report_false_alarms_per_100k_events():
    stable = {"stable, bursty scores": DriftScenario("stable", "none", 30_000, ar1=0.9)}
    scores = {s.candidate: s for s in evaluate(stable, runs=2, seed=1)}
    assert set(scores) == set(CANDIDATES)
    for score in scores.values():
        assert score.changes == 0 and score.events == 60_000
        assert score.false_alarms_per_100k == pytest.approx(
            100_000 * score.false_alarms / 60_000)
    # Bursty (autocorrelated) confidences fool River's ADWIN fed one event at a time.
    assert scores["River ADWIN on confidence"].false_alarms > 0
    assert scores["driftloop (worker set-up)"].false_alarms_per_100k < \
        scores["River ADWIN on confidence"].false_alarms_per_100k


def test_every_change_of_a_recurring_stream_is_scored_on_its_own():
    scenario = DriftScenario("recurring", "score", 20_000, (5_000, 10_000, 15_000))
    share = scenario.regime_b_share()
    assert share[4_999] == 0 and share[5_000] == 1 and share[10_000] == 0 and share[15_000] == 1
    [score] = evaluate({"r": scenario}, runs=1, candidates=["driftloop (worker set-up)"])
    assert score.changes == 3 and score.detected == 3 and len(score.delays) == 3


def test_a_gradual_shift_ramps_the_new_regime_in():
    share = DriftScenario("gradual", "embedding", 10_000, (4_000,), ramp=2_000).regime_b_share()
    assert share[3_999] == 0 and 0.4 < share[4_999] < 0.6 and share[6_000] == 1


def test_score_alerts_counts_delays_extras_and_false_alarms():
    score = score_alerts([100, 1_100, 1_150, 2_500], [1_000, 2_000], 3_000, DriftScore("c", "s"))
    assert (score.detected, score.missed, score.delays) == (2, 0, [100, 500])
    assert score.extra_alerts == 1 and score.false_alarms == 1 and score.events == 1_000
    missed = score_alerts([], [1_000], 3_000, DriftScore("c", "s"))
    assert missed.missed == 1 and missed.median_delay is None


def test_candidates_see_the_same_stream():
    stream = SUDDEN["sudden, score"].make(np.random.default_rng(0))
    again = SUDDEN["sudden, score"].make(np.random.default_rng(0))
    assert np.array_equal(stream.confidences, again.confidences)
    assert driftloop_watch(WorkerSettings())(stream) == driftloop_watch()(again)
    assert river_adwin_on_confidence()(stream) == river_adwin_on_confidence()(again)


def test_the_benchmark_covers_every_kind_and_both_signals():
    made = scenarios(6_000)
    assert {(s.kind, s.signal) for s in made.values()} >= {
        ("stable", "none"), ("sudden", "score"), ("sudden", "embedding"),
        ("gradual", "score"), ("gradual", "embedding"), ("recurring", "score"),
        ("recurring", "embedding")}


@pytest.mark.parametrize("kwargs", [
    {"kind": "sideways", "signal": "score", "length": 10, "changes": (5,)},
    {"kind": "sudden", "signal": "colour", "length": 10, "changes": (5,)},
    {"kind": "stable", "signal": "none", "length": 10, "changes": (5,)},
    {"kind": "sudden", "signal": "score", "length": 10},
    {"kind": "sudden", "signal": "score", "length": 10, "changes": (10,)},
    {"kind": "recurring", "signal": "score", "length": 10, "changes": (6, 3)},
    {"kind": "sudden", "signal": "score", "length": 10, "changes": (5,), "strength": 0.0},
])
def test_bad_scenarios_are_refused(kwargs):
    with pytest.raises(ConfigurationError):
        DriftScenario(**kwargs)


def test_bad_evaluation_arguments_are_refused():
    with pytest.raises(ConfigurationError, match="unknown candidates"):
        evaluate(SUDDEN, candidates=["magic"])
    with pytest.raises(ConfigurationError, match="runs"):
        evaluate(SUDDEN, runs=0)
