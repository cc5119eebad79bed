"""Rolling quality of a task's model per domain and model version, from feedback.

Labels and corrections say whether the model was right (a label equal to the prediction, a
correction equal to the output); ratings give a mean rating. Each (domain, model version)
keeps the last ``window`` outcomes, so the figures follow the model as it changes, and the
first full window of a task is kept as its baseline (a drop from it can trigger training).
Only the newest ``versions_per_domain`` model versions of a domain are kept: a task that
promotes every hour would otherwise grow its state, and the worker's metric labels, forever.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .errors import ConfigurationError

__all__ = ["QualityFigures", "QualityTracker", "SliceFigures"]


@dataclass(frozen=True, slots=True)
class QualityFigures:
    """Quality of one (domain, model version) over the rolling window."""

    domain: str
    model_version: str
    accuracy: float | None
    outcomes: int
    mean_rating: float | None
    ratings: int

    @property
    def error_rate(self) -> float | None:
        return None if self.accuracy is None else 1.0 - self.accuracy


@dataclass(frozen=True, slots=True)
class SliceFigures:
    """Accuracy of one slice the producers named (``language=de``) over its rolling window,
    whatever the domain and model version."""

    name: str
    accuracy: float
    outcomes: int


class QualityTracker:
    """Rolling accuracy and mean rating per (domain, model version) of one task.

    Examples
    --------
    >>> quality = QualityTracker(window=4)
    >>> for correct in (True, True, False, True):
    ...     quality.record_outcome("news", "v1", correct)
    >>> quality.accuracy()
    0.75
    >>> quality.record_rating("news", "v1", 4.0)
    >>> quality.figures()[0].mean_rating
    4.0
    >>> for version in ("v2", "v3", "v4", "v5"):
    ...     quality.record_outcome("news", version, True)
    >>> [fig.model_version for fig in quality.figures()]  # the newest four
    ['v2', 'v3', 'v4', 'v5']
    """

    # A class default, so trackers pickled into changelogs before the bound existed get it.
    versions_per_domain: int = 4
    max_slices: int = 64
    """Most slices tracked; beyond it the one updated longest ago is forgotten."""
    _slice_outcomes: dict[str, deque[bool]] | None = None
    """Outcomes per named slice (a class default for trackers pickled before slices)."""

    def __init__(self, *, window: int = 500, versions_per_domain: int = 4) -> None:
        if not isinstance(window, int) or window < 1:
            raise ConfigurationError(f"window must be a positive integer, got {window!r}")
        if not isinstance(versions_per_domain, int) or versions_per_domain < 1:
            raise ConfigurationError("versions_per_domain must be a positive integer, got "
                                     f"{versions_per_domain!r}")
        self.window = window
        self.versions_per_domain = versions_per_domain
        self._reset()

    def _reset(self) -> None:
        self._outcomes: dict[tuple[str, str], deque[bool]] = {}
        self._ratings: dict[tuple[str, str], deque[float]] = {}
        self._recent: deque[bool] = deque(maxlen=self.window)  # all domains, for triggers
        self.baseline: float | None = None
        self.labels_total = 0
        self.ratings_total = 0
        self._slice_outcomes = None

    def record_outcome(self, domain: str, model_version: str, correct: bool, *,
                       slices: Iterable[tuple[str, str]] = ()) -> None:
        """One label's verdict on ``model_version``'s answer in ``domain``; ``slices``: the
        (key, value) pairs the interaction's producer named, each tracked on its own."""
        for key_value in slices:
            self._record_slice("=".join(key_value), bool(correct))
        key = (domain, model_version)
        if key not in self._outcomes:
            self._outcomes[key] = deque(maxlen=self.window)
            self._forget_old_versions(domain)
        self._outcomes[key].append(bool(correct))
        self._recent.append(bool(correct))
        self.labels_total += 1
        if self.baseline is None and len(self._recent) == self.window:
            self.baseline = sum(self._recent) / self.window

    def _record_slice(self, name: str, correct: bool) -> None:
        if self._slice_outcomes is None:
            self._slice_outcomes = {}
        window = self._slice_outcomes.pop(name, None)  # re-inserted: the newest updated
        if window is None:
            window = deque(maxlen=self.window)
            while len(self._slice_outcomes) >= self.max_slices:
                del self._slice_outcomes[next(iter(self._slice_outcomes))]
        window.append(correct)
        self._slice_outcomes[name] = window

    def slice_figures(self) -> list[SliceFigures]:
        """Accuracy of every named slice over its last ``window`` outcomes, by name.

        >>> quality = QualityTracker(window=10)
        >>> quality.record_outcome("news", "v1", True, slices=[("language", "de")])
        >>> quality.record_outcome("news", "v2", False, slices=[("language", "de")])
        >>> quality.slice_figures()
        [SliceFigures(name='language=de', accuracy=0.5, outcomes=2)]
        """
        return [SliceFigures(name, sum(window) / len(window), len(window))
                for name, window in sorted((self._slice_outcomes or {}).items())]

    def record_rating(self, domain: str, model_version: str, rating: float) -> None:
        key = (domain, model_version)
        if key not in self._ratings:
            self._ratings[key] = deque(maxlen=self.window)
            self._forget_old_versions(domain)
        self._ratings[key].append(float(rating))
        self.ratings_total += 1

    def _forget_old_versions(self, domain: str) -> None:
        """Drop the oldest versions of ``domain`` (first seen first) beyond the bound."""
        versions = list(dict.fromkeys(version for keys in (self._outcomes, self._ratings)
                                      for seen, version in keys if seen == domain))
        for version in versions[:-self.versions_per_domain]:
            self._outcomes.pop((domain, version), None)
            self._ratings.pop((domain, version), None)

    def accuracy(self) -> float | None:
        """Accuracy of the task over its last ``window`` outcomes (all domains)."""
        return sum(self._recent) / len(self._recent) if self._recent else None

    @property
    def recent_outcomes(self) -> int:
        return len(self._recent)

    def reset_baseline(self) -> None:
        """Forget the baseline and the recent outcomes (a new model version was promoted)."""
        self.baseline = None
        self._recent.clear()

    def figures(self) -> list[QualityFigures]:
        """One entry per (domain, model version) seen, sorted."""
        keys = sorted(set(self._outcomes) | set(self._ratings))
        out = []
        for key in keys:
            outcomes = self._outcomes.get(key, ())
            ratings = self._ratings.get(key, ())
            out.append(QualityFigures(
                domain=key[0], model_version=key[1],
                accuracy=sum(outcomes) / len(outcomes) if outcomes else None,
                outcomes=len(outcomes),
                mean_rating=sum(ratings) / len(ratings) if ratings else None,
                ratings=len(ratings)))
        return out

    def clone(self) -> QualityTracker:
        return QualityTracker(**self.get_params())

    def get_params(self) -> dict[str, Any]:
        return {"window": self.window, "versions_per_domain": self.versions_per_domain}
