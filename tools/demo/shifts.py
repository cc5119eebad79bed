"""What each shift of the demo's traffic cost: labels until a better version served.

For every domain after the first: the version serving when the domain began, its held-out
accuracy on the new domain, and the first version served during the domain that scores
higher there, with how many labels (users' and the reviewer's) had been given since the
domain began when it first answered. Beside it, what the loop gained before the first shift
(extra updates on the first domain) apart from what it gained after.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .traffic import ServedPrediction

__all__ = ["ShiftResult", "shift_results", "version_at"]


@dataclass(frozen=True, slots=True)
class ShiftResult:
    """One shift: the version serving at it, and the first better one served after it."""

    domain: str
    serving: str
    before: float
    better: str | None = None
    better_score: float | None = None
    labels: int | None = None
    """Labels given from the start of the domain until ``better`` first answered."""

    def line(self) -> str:
        """One line of the verdict.

        >>> ShiftResult("movies", "v2", 0.66, "v4", 0.71, 140).line()
        'shift to movies: v4 served 140 labels in (0.71 vs 0.66 held-out)'
        >>> ShiftResult("nyt", "v4", 0.7).line()
        'shift to nyt: no better version served (v4 0.70 held-out)'
        """
        if self.better is None:
            return (f"shift to {self.domain}: no better version served ({self.serving} "
                    f"{self.before:.2f} held-out)")
        return (f"shift to {self.domain}: {self.better} served {self.labels} labels in "
                f"({self.better_score:.2f} vs {self.before:.2f} held-out)")


def version_at(served: Sequence[ServedPrediction], ts: float, default: str) -> str:
    """The version that answered last before ``ts`` (``default`` before any answer).

    >>> from driftloop.tools.demo.traffic import StreamItem
    >>> item = StreamItem("i", "d", "t", "positive")
    >>> answers = [ServedPrediction(item, "positive", v, t) for v, t in (("a", 1), ("b", 5))]
    >>> version_at(answers, 3.0, "s"), version_at(answers, 9.0, "s"), version_at([], 1, "s")
    ('a', 'b', 's')
    """
    before = [s for s in served if s.ts < ts]
    return before[-1].version if before else default


def shift_results(served: Sequence[ServedPrediction], domains: Sequence[str],
                  starts: dict[str, float], label_times: Sequence[float], default: str,
                  score: Callable[[str, str], float]) -> list[ShiftResult]:
    """Each shift's result; ``score(version_id, domain)`` is a held-out accuracy."""
    times = sorted(label_times)
    results = []
    for domain, following in zip(domains[1:], [*domains[2:], None], strict=True):
        start = starts.get(domain)
        if start is None:
            continue
        end = starts.get(following, float("inf")) if following else float("inf")
        serving = version_at(served, start, default)
        before = score(serving, domain)
        first_seen: dict[str, float] = {}
        for answer in served:
            if start <= answer.ts < end and answer.version != serving:
                first_seen.setdefault(answer.version, answer.ts)
        result = ShiftResult(domain, serving, before)
        for version, seen in sorted(first_seen.items(), key=lambda kv: kv[1]):
            better = score(version, domain)
            if better > before:
                labels = bisect.bisect_left(times, seen) - bisect.bisect_left(times, start)
                result = ShiftResult(domain, serving, before, version, better, labels)
                break
        results.append(result)
    return results
