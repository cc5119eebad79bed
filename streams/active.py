"""Active learning: ask humans to label the interactions the model was least sure about.

Uncertainty is computed for a whole batch at once from the class probabilities (or, when a
service only reports its confidence, from ``[confidence, 1 - confidence]``):

* ``least_confidence``: ``1 - max p``, scaled to [0, 1] by the number of classes;
* ``margin``: ``1 - (p1 - p2)``, the gap between the two most likely classes;
* ``entropy``: ``H(p) / log(k)``.

A budget caps the label requests per task per time window (human time is the scarce
resource), the most uncertain first, and an interaction or an identical input is never
asked twice. :func:`label_requests` applies a task's sampler to a batch of interactions.
"""

from __future__ import annotations

import hashlib
import math
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..schemas.enums import LabelRequestReason
from ..schemas.events import Interaction, LabelRequest
from .errors import ConfigurationError

__all__ = ["STRATEGIES", "ActiveSampler", "label_requests", "probability_matrix", "uncertainty"]

STRATEGIES = ("least_confidence", "margin", "entropy")
_REASONS = {"least_confidence": LabelRequestReason.UNCERTAINTY,
            "margin": LabelRequestReason.MARGIN, "entropy": LabelRequestReason.ENTROPY}


def probability_matrix(rows: Sequence[Sequence[float]]) -> np.ndarray:
    """Rows of class probabilities of varying length -> an (n, k) array padded with zeros,
    each row sorted high to low and renormalised."""
    width = max((len(row) for row in rows), default=0)
    width = max(width, 2)
    matrix = np.zeros((len(rows), width))
    for i, row in enumerate(rows):
        matrix[i, : len(row)] = row
    matrix = -np.sort(-matrix, axis=1)
    totals = matrix.sum(axis=1, keepdims=True)
    np.divide(matrix, totals, out=matrix, where=totals > 0)
    return matrix


def uncertainty(probs: np.ndarray, strategy: str, n_classes: np.ndarray | None = None
                ) -> np.ndarray:
    """Uncertainty in [0, 1] of each row of sorted probabilities (high = unsure).

    >>> p = probability_matrix([[0.9, 0.1], [0.5, 0.5]])
    >>> uncertainty(p, "margin").round(2).tolist()
    [0.2, 1.0]
    """
    if strategy not in STRATEGIES:
        raise ConfigurationError(f"unknown strategy {strategy!r}; valid: {', '.join(STRATEGIES)}")
    k = np.full(probs.shape[0], probs.shape[1], dtype=np.float64) if n_classes is None \
        else np.maximum(n_classes.astype(np.float64), 2.0)
    if strategy == "least_confidence":
        return np.clip((1.0 - probs[:, 0]) * k / (k - 1.0), 0.0, 1.0)
    if strategy == "margin":
        return np.clip(1.0 - (probs[:, 0] - probs[:, 1]), 0.0, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.where(probs > 0, np.log(np.where(probs > 0, probs, 1.0)), 0.0)
    return np.clip(-(probs * logs).sum(axis=1) / np.log(k), 0.0, 1.0)


class ActiveSampler:
    """Choose which interactions of a batch become label requests.

    Parameters
    ----------
    strategy
        One of :data:`STRATEGIES`.
    threshold
        Smallest uncertainty worth a human's time.
    budget
        Most label requests per window.
    window_seconds
        Length of a budget window (windows are aligned on the epoch).
    dedup_size
        How many recent interaction ids and input hashes are remembered.

    Examples
    --------
    >>> sampler = ActiveSampler(strategy="margin", threshold=0.5, budget=1)
    >>> probs = probability_matrix([[0.55, 0.45], [0.6, 0.4], [0.99, 0.01]])
    >>> sampler.select(["a", "b", "c"], ["x", "y", "z"], probs, now=0.0)
    [(0, 0.9)]
    >>> sampler.select(["d"], ["w"], probability_matrix([[0.5, 0.5]]), now=1.0)  # budget spent
    []
    """

    def __init__(self, *, strategy: str = "margin", threshold: float = 0.6, budget: int = 100,
                 window_seconds: float = 3600.0, dedup_size: int = 50_000) -> None:
        if strategy not in STRATEGIES:
            raise ConfigurationError(
                f"unknown strategy {strategy!r}; valid: {', '.join(STRATEGIES)}")
        if not 0.0 <= threshold <= 1.0:
            raise ConfigurationError(f"threshold must be in [0, 1], got {threshold!r}")
        if not isinstance(budget, int) or budget < 0:
            raise ConfigurationError(f"budget must be an integer >= 0, got {budget!r}")
        if not math.isfinite(window_seconds) or window_seconds <= 0:
            raise ConfigurationError(f"window_seconds must be > 0, got {window_seconds!r}")
        if not isinstance(dedup_size, int) or dedup_size < 1:
            raise ConfigurationError(f"dedup_size must be a positive integer, got {dedup_size!r}")
        self.strategy = strategy
        self.threshold = float(threshold)
        self.budget = budget
        self.window_seconds = float(window_seconds)
        self.dedup_size = dedup_size
        self._reset()

    def _reset(self) -> None:
        self._window = -1
        self._spent = 0
        self._asked: OrderedDict[str, None] = OrderedDict()
        self.requested = 0

    @property
    def remaining(self) -> int:
        return self.budget - self._spent

    @property
    def window(self) -> int:
        """Index of the budget window the spent count belongs to."""
        return self._window

    def window_of(self, now: float) -> int:
        return int(now // self.window_seconds)

    def select(self, ids: Sequence[str], inputs: Sequence[str], probs: np.ndarray, *,
               now: float, n_classes: np.ndarray | None = None) -> list[tuple[int, float]]:
        """Indices of the rows to ask about and their priority (the uncertainty), most
        uncertain first, within the budget of the window ``now`` falls in."""
        window = self.window_of(now)
        if window != self._window:
            self._window, self._spent = window, 0
        if self._spent >= self.budget or len(ids) == 0:
            return []
        scores = uncertainty(probs, self.strategy, n_classes)
        candidates = np.flatnonzero(scores >= self.threshold)
        if candidates.size == 0:
            return []
        # Stable order: most uncertain first, ties by position in the batch.
        order = candidates[np.argsort(-scores[candidates], kind="stable")]
        chosen: list[tuple[int, float]] = []
        for index in order.tolist():
            if self._spent >= self.budget:
                break
            keys = (f"id:{ids[index]}",
                    "in:" + hashlib.blake2b(inputs[index].encode("utf-8", "surrogatepass"),
                                            digest_size=12).hexdigest())
            if any(key in self._asked for key in keys):
                continue
            for key in keys:
                self._asked[key] = None
            while len(self._asked) > 2 * self.dedup_size:
                self._asked.popitem(last=False)
            self._spent += 1
            self.requested += 1
            chosen.append((index, round(float(scores[index]), 6)))
        return chosen

    def clone(self) -> ActiveSampler:
        return ActiveSampler(**self.get_params())

    def get_params(self) -> dict[str, Any]:
        return {"strategy": self.strategy, "threshold": self.threshold, "budget": self.budget,
                "window_seconds": self.window_seconds, "dedup_size": self.dedup_size}


class _Lazy:
    """``events[picked[i]].<attr>`` on demand: the sampler reads only the rows it chooses."""

    def __init__(self, events: list[Interaction], picked: list[int], attr: str) -> None:
        self.events, self.picked, self.attr = events, picked, attr

    def __len__(self) -> int:
        return len(self.picked)

    def __getitem__(self, index: int) -> str:
        return getattr(self.events[self.picked[index]], self.attr)


def label_requests(sampler: ActiveSampler, task: str, events: list[Interaction],
                   confidences: np.ndarray, probabilities: list[dict[str, float] | None], *,
                   now: float) -> list[LabelRequest] | None:
    """The label requests ``sampler`` chooses among a batch of one task's interactions.

    ``confidences`` holds each interaction's confidence (NaN: unknown) and ``probabilities``
    its class probabilities, if it reported them. None when nothing was scored: the
    window's budget is spent, or no interaction has a confidence.

    >>> ix = Interaction(id="i1", ts=0, task="t", model_version="v1", input="meh",
    ...                  prediction="pos", scores={"confidence": 0.55})
    >>> [r.id for r in label_requests(ActiveSampler(), "t", [ix], np.asarray([0.55]),
    ...                               [None], now=0.0)]
    ['lr-i1']
    """
    if sampler.remaining <= 0 and sampler.window_of(now) == sampler.window:
        return None  # budget spent for this window: skip the scoring altogether
    known = np.flatnonzero(np.isfinite(confidences))
    if known.size == 0:
        return None
    with_probs = [i for i in known.tolist() if probabilities[i] is not None]
    if not with_probs:
        c = confidences[known]
        # Confidence only: the model's two-way view [c, 1 - c], sorted high to low.
        matrix = np.column_stack([np.maximum(c, 1.0 - c), np.minimum(c, 1.0 - c)])
    else:
        rows = [list(probabilities[i].values()) if probabilities[i] is not None  # type: ignore[union-attr]
                else [confidences[i], 1.0 - confidences[i]] for i in known.tolist()]
        matrix = probability_matrix(rows)
    picked = known.tolist()
    chosen = sampler.select(_Lazy(events, picked, "id"), _Lazy(events, picked, "input"),
                            matrix, now=now)
    reason = _REASONS[sampler.strategy]
    requests = []
    for index, priority in chosen:
        event = events[picked[index]]
        requests.append(LabelRequest(
            id=f"lr-{event.id}", ts=now, task=task, domain=event.domain, interaction=event,
            reason=reason, priority=min(max(priority, 0.0), 1.0), score=priority))
    return requests
