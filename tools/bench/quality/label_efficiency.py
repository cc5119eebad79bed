"""Label efficiency of active learning: accuracy reached per label asked, uncertainty vs random.

A stream of unlabelled interactions (their pooled sentence embeddings, as the serving layer
reports them) arrives in batches. Before each batch the current classifier scores it; a
sampler asks for labels within a per-batch budget:

* ``uncertainty``: :class:`~driftloop.streams.active.ActiveSampler`, the worker's
  sampler (strategy and threshold from the worker's settings), one budget window per batch;
* ``random``: the same budget per batch, spent on events drawn uniformly.

The classifier is a softmax regression on the frozen embeddings: the classification
adapter's linear head without the LoRA update, cheap enough to refit after every batch, so
the curve measures *which* examples were chosen rather than how a fine-tune reacts to them.
A curve point ``k`` is the held-out accuracy of a head fitted on the first ``k`` labels the
sampler asked for.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ....schemas.settings import ActiveSettings
from ....streams.active import ActiveSampler, probability_matrix
from ....streams.errors import ConfigurationError

__all__ = ["SAMPLERS", "LabelCurve", "SoftmaxHead", "label_curve", "label_curves"]

SAMPLERS = ("uncertainty", "random")


class SoftmaxHead:
    """Multinomial logistic regression with an L2 penalty, fitted by full-batch gradient descent.

    Parameters
    ----------
    n_classes
        Size of the label set (classes absent from the labels so far still get a score).
    l2
        Weight of the penalty (keeps a head fitted on a handful of labels modest).
    steps, learning_rate
        Gradient steps and their size (the inputs are standardised first).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = np.vstack([rng.normal(-1, 1, (50, 4)), rng.normal(1, 1, (50, 4))])
    >>> y = np.repeat([0, 1], 50)
    >>> head = SoftmaxHead(2).fit(x, y)
    >>> float((head.predict(x) == y).mean()) > 0.9
    True
    >>> SoftmaxHead(2).predict_proba(x[:1]).tolist()  # unfitted: no preference
    [[0.5, 0.5]]
    """

    def __init__(self, n_classes: int, *, l2: float = 1e-2, steps: int = 200,
                 learning_rate: float = 0.5) -> None:
        if not isinstance(n_classes, int) or n_classes < 2:
            raise ConfigurationError(f"n_classes must be an integer >= 2, got {n_classes!r}")
        if l2 < 0 or steps < 1 or learning_rate <= 0:
            raise ConfigurationError("l2 must be >= 0, steps >= 1 and learning_rate > 0")
        self.n_classes = n_classes
        self.l2 = l2
        self.steps = steps
        self.learning_rate = learning_rate
        self._weights: np.ndarray | None = None
        self._mean: np.ndarray | float = 0.0
        self._scale: np.ndarray | float = 1.0

    def standardise_with(self, x: np.ndarray) -> SoftmaxHead:
        """Learn the input scaling from unlabelled data (the stream itself)."""
        self._mean = x.mean(axis=0)
        self._scale = np.where(x.std(axis=0) > 0, x.std(axis=0), 1.0)
        return self

    def _design(self, x: np.ndarray) -> np.ndarray:
        z = (np.asarray(x, dtype=np.float64) - self._mean) / self._scale
        return np.hstack([z, np.ones((z.shape[0], 1))])

    def fit(self, x: np.ndarray, y: np.ndarray) -> SoftmaxHead:
        design = self._design(x)
        targets = np.eye(self.n_classes)[np.asarray(y, dtype=int)]
        weights = np.zeros((design.shape[1], self.n_classes))
        penalty = np.ones((design.shape[1], 1))
        penalty[-1] = 0.0  # the bias is not pulled toward zero
        for _ in range(self.steps):
            probs = _softmax(design @ weights)
            grad = design.T @ (probs - targets) / design.shape[0] + self.l2 * penalty * weights
            weights -= self.learning_rate * grad
        self._weights = weights
        return self

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        if self._weights is None:
            return np.full((len(x), self.n_classes), 1.0 / self.n_classes)
        return _softmax(self._design(x) @ self._weights)

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.predict_proba(x).argmax(axis=1)


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


@dataclass(frozen=True, slots=True)
class LabelCurve:
    """Held-out accuracy after ``labels[i]`` labels, for one sampler (mean over repeats)."""

    sampler: str
    labels: tuple[int, ...]
    accuracy: tuple[float, ...]
    repeats: int

    def to_dict(self) -> dict[str, object]:
        return {"sampler": self.sampler, "labels": list(self.labels),
                "accuracy": [round(a, 4) for a in self.accuracy], "repeats": self.repeats}


def label_curve(stream_x: np.ndarray, stream_y: np.ndarray, test_x: np.ndarray,
                test_y: np.ndarray, *, sampler: str, checkpoints: Sequence[int],
                batch_events: int = 100, budget_per_batch: int = 10,
                active: ActiveSettings | None = None, seed: int = 0) -> dict[int, float]:
    """Run one sampler over one ordering of the stream; ``{labels: held-out accuracy}``.

    A checkpoint the stream cannot reach (too few events, or too few uncertain ones) is
    left out of the result.

    >>> rng = np.random.default_rng(1)
    >>> x = np.vstack([rng.normal(-1, 1, (300, 3)), rng.normal(1, 1, (300, 3))])
    >>> y = np.repeat([0, 1], 300)
    >>> curve = label_curve(x, y, x, y, sampler="uncertainty", checkpoints=[10, 40])
    >>> sorted(curve), all(0.8 < a <= 1.0 for a in curve.values())
    ([10, 40], True)
    """
    if sampler not in SAMPLERS:
        raise ConfigurationError(f"unknown sampler {sampler!r}; valid: {', '.join(SAMPLERS)}")
    if batch_events < 1 or budget_per_batch < 1:
        raise ConfigurationError("batch_events and budget_per_batch must be >= 1")
    if len(stream_x) != len(stream_y) or len(test_x) != len(test_y):
        raise ConfigurationError("features and labels differ in length")
    settings = active or ActiveSettings()
    n_classes = int(max(stream_y.max(), test_y.max())) + 1
    n_classes = max(n_classes, 2)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(stream_x))
    asker = ActiveSampler(strategy=settings.strategy, threshold=settings.threshold,
                          budget=budget_per_batch, window_seconds=1.0)
    head = SoftmaxHead(n_classes).standardise_with(stream_x)
    asked: list[int] = []
    goal = max(checkpoints)
    for batch_index, start in enumerate(range(0, len(order), batch_events)):
        if len(asked) >= goal:
            break
        rows = order[start:start + batch_events]
        if sampler == "uncertainty":
            probs = probability_matrix(head.predict_proba(stream_x[rows]).tolist())
            ids = [str(i) for i in rows.tolist()]
            picked = [rows[i] for i, _ in asker.select(ids, ids, probs, now=float(batch_index))]
        else:
            picked = rng.choice(rows, size=min(budget_per_batch, len(rows)),
                                replace=False).tolist()
        asked.extend(int(i) for i in picked)
        if asked:
            head = SoftmaxHead(n_classes).standardise_with(stream_x).fit(
                stream_x[asked], stream_y[asked])
    curve: dict[int, float] = {}
    for k in sorted(set(checkpoints)):
        if k > len(asked):
            break
        fitted = SoftmaxHead(n_classes).standardise_with(stream_x).fit(
            stream_x[asked[:k]], stream_y[asked[:k]])
        curve[k] = float((fitted.predict(test_x) == test_y).mean())
    return curve


def label_curves(stream_x: np.ndarray, stream_y: np.ndarray, test_x: np.ndarray,
                 test_y: np.ndarray, *, checkpoints: Sequence[int], repeats: int = 3,
                 seed: int = 0, progress: Callable[[int], None] | None = None,
                 **options: object) -> list[LabelCurve]:
    """Both samplers over ``repeats`` orderings of the stream (the same orderings for both);
    a checkpoint enters a curve only when every repeat reached it."""
    if not isinstance(repeats, int) or repeats < 1:
        raise ConfigurationError(f"repeats must be a positive integer, got {repeats!r}")
    curves = []
    for sampler in SAMPLERS:
        runs = []
        for repeat in range(repeats):
            runs.append(label_curve(stream_x, stream_y, test_x, test_y, sampler=sampler,
                                    checkpoints=checkpoints, seed=seed * 1000 + repeat,
                                    **options))  # type: ignore[arg-type]
            if progress is not None:
                progress(1)
        reached = sorted(set.intersection(*(set(run) for run in runs)))
        curves.append(LabelCurve(sampler, tuple(reached),
                                 tuple(float(np.mean([run[k] for run in runs]))
                                       for k in reached), repeats))
    return curves
