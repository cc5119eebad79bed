"""Label efficiency: the worker's uncertainty sampler against random picks, same budget."""

from __future__ import annotations

import numpy as np
import pytest

from driftloop.schemas.settings import ActiveSettings
from driftloop.streams.errors import ConfigurationError
from driftloop.tools.bench.quality.label_efficiency import SoftmaxHead, label_curve, label_curves


def _blobs(n: int, seed: int, dim: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Two overlapping classes: the informative labels sit near the boundary."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = rng.normal(0.0, 1.0, (n, dim))
    x[:, 0] += (2 * y - 1) * 0.9
    return x, y


def test_both_samplers_report_a_curve_over_the_same_checkpoints():
    xs, ys = _blobs(2_000, 0)
    xt, yt = _blobs(500, 1)
    curves = label_curves(xs, ys, xt, yt, checkpoints=[10, 40, 160], repeats=2)
    assert [c.sampler for c in curves] == ["uncertainty", "random"]
    for curve in curves:
        assert curve.labels == (10, 40, 160) and curve.repeats == 2
        assert all(0.0 <= a <= 1.0 for a in curve.accuracy)
        assert curve.accuracy[-1] > 0.7  # the head learns from what it was given
    data = curves[0].to_dict()
    assert data["sampler"] == "uncertainty" and len(data["accuracy"]) == 3


def test_uncertainty_sampling_asks_about_examples_near_the_boundary():
    xs, ys = _blobs(3_000, 2)
    xt, yt = _blobs(1_000, 3)
    curves = {c.sampler: c for c in label_curves(xs, ys, xt, yt, checkpoints=[200], repeats=2)}
    assert curves["uncertainty"].accuracy[0] >= curves["random"].accuracy[0] - 0.01


def test_the_uncertainty_threshold_can_leave_checkpoints_unreached():
    xs, ys = _blobs(400, 4)
    strict = ActiveSettings(threshold=1.0)  # only perfect ties qualify once the head is fitted
    curve = label_curve(xs, ys, xs, ys, sampler="uncertainty", checkpoints=[10, 300],
                        active=strict)
    assert 10 in curve and 300 not in curve


def test_random_sampling_spends_the_whole_budget_of_each_batch():
    xs, ys = _blobs(500, 5)
    curve = label_curve(xs, ys, xs, ys, sampler="random", checkpoints=[50],
                        batch_events=100, budget_per_batch=10)
    assert list(curve) == [50]


def test_softmax_head_handles_a_single_class_and_standardises():
    x = np.random.default_rng(0).normal(100.0, 50.0, (20, 3))
    head = SoftmaxHead(3).standardise_with(x).fit(x, np.zeros(20, dtype=int))
    probs = head.predict_proba(x)
    assert probs.shape == (20, 3) and np.allclose(probs.sum(axis=1), 1.0)
    assert (head.predict(x) == 0).all()


@pytest.mark.parametrize("kwargs", [{"sampler": "oracle"}, {"batch_events": 0},
                                    {"budget_per_batch": 0}])
def test_bad_arguments_are_refused(kwargs):
    xs, ys = _blobs(50, 6)
    options = {"sampler": "random", "checkpoints": [5], **kwargs}
    with pytest.raises(ConfigurationError):
        label_curve(xs, ys, xs, ys, **options)
    with pytest.raises(ConfigurationError):
        label_curve(xs, ys[:10], xs, ys, sampler="random", checkpoints=[5])
    with pytest.raises(ConfigurationError):
        label_curves(xs, ys, xs, ys, checkpoints=[5], repeats=0)
    with pytest.raises(ConfigurationError):
        SoftmaxHead(1)
