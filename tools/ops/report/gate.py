"""A version's gate evidence as rows: metric, parent, candidate, delta, and whether the
delta is better, which depends on the metric (a lower loss is better, a lower accuracy is
not)."""

from __future__ import annotations

from dataclasses import dataclass

from ....schemas import ModelVersion

__all__ = ["GateRow", "format_value", "gate_rows", "higher_is_better", "test_figures"]

_LOWER = ("loss", "error", "latency", "seconds", "perplexity", "brier", "ece")
_HIGHER = ("score", "accuracy", "f1", "exact", "precision", "recall", "auc", "challenge",
           "stability", "effect")
_COUNTS = ("_count", "count", "examples", "steps", "size")
# after-only figures of the paired tests (learner/training/update.py writes them)
_TEST_SUFFIXES = ("_effect", "_p_better", "_p_worse", "_score_effect", "_p_better_scores")


def higher_is_better(metric: str) -> bool | None:
    """True when a rise is an improvement, False when a fall is, None when neither (counts).

    >>> higher_is_better("holdout_loss"), higher_is_better("replay_score")
    (False, True)
    >>> higher_is_better("holdout_count") is None, higher_is_better("macro_f1")
    (True, True)
    """
    name = metric.lower()
    if any(name.endswith(suffix) for suffix in _COUNTS):
        return None
    if any(word in name for word in _LOWER):
        return False
    if any(word in name for word in _HIGHER):
        return True
    return None


def format_value(metric: str, value: float) -> str:
    """Counts as integers, p-values in two significant figures, the rest with three decimals.

    >>> format_value("holdout_count", 120.0), format_value("holdout_p_better", 0.000412)
    ('120', '0.00041')
    >>> format_value("holdout_score", 0.8)
    '0.800'
    """
    if higher_is_better(metric) is None and float(value).is_integer():
        return f"{int(value):,}"
    if "_p_" in metric or metric.startswith("p_"):
        return f"{value:.2g}"
    return f"{value:.3f}"


@dataclass(frozen=True, slots=True)
class GateRow:
    """One metric of the gate: parent's and candidate's value, and which way is better."""

    metric: str
    parent: float | None
    candidate: float | None

    @property
    def delta(self) -> float | None:
        if self.parent is None or self.candidate is None:
            return None
        return self.candidate - self.parent

    @property
    def better(self) -> bool | None:
        """True: the candidate is better on this metric; False: worse; None: equal, or a
        metric with no better side (a count), or only one side measured."""
        delta, rises = self.delta, higher_is_better(self.metric)
        if delta is None or rises is None or abs(delta) < 1e-12:
            return None
        return (delta > 0) == rises


def gate_rows(version: ModelVersion) -> list[GateRow]:
    """The metrics measured on parent and candidate (the tests' figures are apart:
    :func:`test_figures`).

    >>> v = ModelVersion(version_id="v", ts=0.0, task="t", base_model="m",
    ...                  adapter_uri="file:///a", sha256="0" * 64, size_bytes=1,
    ...                  status="rejected", metrics_before={"holdout_loss": 0.7},
    ...                  metrics_after={"holdout_loss": 0.5, "holdout_p_better": 0.2})
    >>> [(r.metric, round(r.delta, 3), r.better) for r in gate_rows(v)]
    [('holdout_loss', -0.2, True)]
    """
    names = sorted(set(version.metrics_before) | set(version.metrics_after))
    return [GateRow(name, version.metrics_before.get(name), version.metrics_after.get(name))
            for name in names if not _is_test_figure(name, version)]


def test_figures(version: ModelVersion) -> dict[str, dict[str, float]]:
    """The paired tests' figures by part: ``{"holdout": {"effect": .., "p_better": ..}}``.

    >>> v = ModelVersion(version_id="v", ts=0.0, task="t", base_model="m",
    ...                  adapter_uri="file:///a", sha256="0" * 64, size_bytes=1,
    ...                  status="rejected", metrics_after={"holdout_effect": 0.05,
    ...                                                   "holdout_p_better": 0.2})
    >>> test_figures(v)
    {'holdout': {'effect': 0.05, 'p_better': 0.2}}
    """
    figures: dict[str, dict[str, float]] = {}
    for name, value in sorted(version.metrics_after.items()):
        if _is_test_figure(name, version):
            for suffix in sorted(_TEST_SUFFIXES, key=len, reverse=True):
                if name.endswith(suffix):
                    figures.setdefault(name[:-len(suffix)], {})[suffix[1:]] = value
                    break
    return figures


def _is_test_figure(name: str, version: ModelVersion) -> bool:
    return (name not in version.metrics_before
            and any(name.endswith(suffix) for suffix in _TEST_SUFFIXES))
