"""Uncertainty strategies, the budget window, deduplication."""

from __future__ import annotations

import numpy as np
import pytest

from driftloop.streams.active import ActiveSampler, probability_matrix, uncertainty


@pytest.mark.parametrize("strategy", ["least_confidence", "margin", "entropy"])
def test_strategies_are_zero_when_sure_and_one_when_uniform(strategy):
    p = probability_matrix([[1.0, 0.0, 0.0], [1 / 3, 1 / 3, 1 / 3]])
    assert uncertainty(p, strategy).round(6).tolist() == [0.0, 1.0]


def test_margin_ranks_by_top_two_gap_where_entropy_sees_the_tail():
    p = probability_matrix([[0.5, 0.5, 0.0], [0.4, 0.3, 0.3]])
    assert uncertainty(p, "margin")[0] > uncertainty(p, "margin")[1]
    assert uncertainty(p, "entropy")[0] < uncertainty(p, "entropy")[1]


def test_budget_per_window_most_uncertain_first():
    s = ActiveSampler(strategy="margin", threshold=0.0, budget=2, window_seconds=60)
    p = probability_matrix([[0.9, 0.1], [0.5, 0.5], [0.6, 0.4]])
    assert [i for i, _ in s.select(["a", "b", "c"], ["a", "b", "c"], p, now=0)] == [1, 2]
    assert s.select(["d"], ["d"], probability_matrix([[0.5, 0.5]]), now=59) == []
    assert len(s.select(["d"], ["d"], probability_matrix([[0.5, 0.5]]), now=60)) == 1


def test_dedup_by_id_and_by_input():
    s = ActiveSampler(threshold=0.0, budget=10)
    p = probability_matrix([[0.5, 0.5]] * 2)
    assert len(s.select(["a", "b"], ["same", "same"], p, now=0)) == 1
    assert s.select(["a"], ["other"], probability_matrix([[0.5, 0.5]]), now=0) == []


def test_threshold_filters():
    s = ActiveSampler(strategy="least_confidence", threshold=0.5, budget=10)
    p = probability_matrix(np.array([[0.95, 0.05], [0.6, 0.4]]).tolist())
    assert [i for i, _ in s.select(["a", "b"], ["a", "b"], p, now=0)] == [1]


def test_label_requests_of_a_batch_and_when_nothing_is_scored():
    from driftloop.schemas import Interaction
    from driftloop.streams.active import label_requests

    def ix(n: int, probabilities: dict | None = None) -> Interaction:
        return Interaction(id=f"i{n}", ts=n, task="t", domain="news", model_version="v1",
                           input=f"text {n}", prediction="pos",
                           scores={"probabilities": probabilities} if probabilities else {})

    events = [ix(0, {"pos": 0.55, "neg": 0.45}), ix(1), ix(2, {"pos": 0.99, "neg": 0.01})]
    confidences = np.asarray([0.55, np.nan, 0.99])
    probabilities = [e.scores.probabilities or None for e in events]
    sampler = ActiveSampler(strategy="margin", threshold=0.5, budget=1)
    [request] = label_requests(sampler, "t", events, confidences, probabilities, now=0.0)
    assert (request.id, request.reason.value, request.domain) == ("lr-i0", "margin", "news")
    assert request.interaction == events[0] and request.priority == request.score == 0.9
    # The window's budget is spent: nothing is scored (None, not an empty choice).
    assert label_requests(sampler, "t", events, confidences, probabilities, now=1.0) is None
    fresh = ActiveSampler(strategy="margin", threshold=0.5, budget=1)
    assert label_requests(fresh, "t", [events[1]], confidences[1:2], [None], now=0.0) is None
    assert label_requests(fresh, "t", [events[2]], confidences[2:], probabilities[2:],
                          now=0.0) == []
