"""What one run of the continual-learning experiment did to accuracy, and what it cost.

Prequential accuracy scores every prediction against its true label *before* that label is
learnt; held-out accuracy after each domain's segment gives forgetting (accuracy on a
domain right after its segment minus at the end); the update time is the compute a run
spent on its updates. See :mod:`~driftloop.tools.bench.quality.continual` for the runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["RunResult", "forgetting"]


@dataclass(slots=True)
class RunResult:
    """What one run did to accuracy, and what it cost."""

    name: str
    label: str
    correct: list[bool] = field(default_factory=list)
    domains: list[str] = field(default_factory=list)
    after_domain: dict[str, dict[str, float]] = field(default_factory=dict)
    updates: int = 0
    promoted: int = 0
    examples_trained: int = 0
    update_seconds: float = 0.0
    update_cpu_seconds: float = 0.0
    predict_seconds: float = 0.0

    def spent(self, wall: float, cpu: float) -> None:
        self.update_seconds += wall
        self.update_cpu_seconds += cpu

    def prequential(self, window: int) -> list[dict[str, Any]]:
        """Accuracy over consecutive windows of ``window`` served events."""
        points = []
        for start in range(0, len(self.correct), window):
            part = self.correct[start:start + window]
            points.append({"events": start + len(part), "domain": self.domains[start],
                           "accuracy": round(sum(part) / len(part), 4)})
        return points

    def prequential_by_domain(self) -> dict[str, float]:
        totals: dict[str, list[int]] = {}
        for ok, domain in zip(self.correct, self.domains, strict=True):
            hits = totals.setdefault(domain, [0, 0])
            hits[0] += ok
            hits[1] += 1
        return {d: round(h / n, 4) for d, (h, n) in totals.items()}

    def to_dict(self, window: int) -> dict[str, Any]:
        order = list(self.after_domain)
        final = self.after_domain[order[-1]] if order else {}
        lost = forgetting(self.after_domain)
        return {
            "run": self.name, "label": self.label,
            "prequential_accuracy": round(sum(self.correct) / max(len(self.correct), 1), 4),
            "prequential_by_domain": self.prequential_by_domain(),
            "prequential_curve": self.prequential(window),
            "heldout_after_domain": self.after_domain,
            "final_heldout": final,
            "final_mean_accuracy": round(sum(final.values()) / len(final), 4) if final else None,
            "forgetting": lost,
            "mean_forgetting": round(sum(lost.values()) / len(lost), 4) if lost else None,
            "updates": self.updates, "promoted": self.promoted,
            "examples_trained": self.examples_trained,
            "update_seconds": round(self.update_seconds, 2),
            "update_cpu_seconds": round(self.update_cpu_seconds, 2),
            "predict_seconds": round(self.predict_seconds, 2),
        }


def forgetting(after_domain: dict[str, dict[str, float]]) -> dict[str, float]:
    """Per domain but the last: held-out accuracy right after its own segment minus at the end.

    >>> forgetting({"a": {"a": 0.9, "b": 0.5}, "b": {"a": 0.7, "b": 0.8}})
    {'a': 0.2}
    """
    order = list(after_domain)
    if not order:
        return {}
    final = after_domain[order[-1]]
    return {d: round(after_domain[d][d] - final[d], 4) for d in order[:-1]}
