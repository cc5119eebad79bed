"""The review page's Prometheus metrics (served at ``/metrics``).

Each page owns its registry, so two pages in one process (tests) keep their figures apart.
"""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from .queue import TaskCounts

__all__ = ["CONTENT_TYPE_LATEST", "ReviewMetrics"]

# From a label request to its answer: seconds when someone watches the page, days when not.
_LATENCY_BUCKETS = (1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 4 * 3600.0, 86400.0,
                    7 * 86400.0)


class ReviewMetrics:
    """Answers, undos, rejected answers, requests waiting and how long they waited.

    Examples
    --------
    >>> metrics = ReviewMetrics()
    >>> metrics.answered("sentiment", waited_s=42.0)
    >>> text = metrics.render({"sentiment": TaskCounts(pending=7)}).decode()
    >>> 'driftloop_review_answers_total{task="sentiment"} 1.0' in text
    True
    >>> 'driftloop_review_pending{task="sentiment"} 7.0' in text
    True
    >>> 'driftloop_review_answer_latency_seconds_bucket{le="60.0",task="sentiment"} 1.0' in text
    True
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.answers = Counter("driftloop_review_answers", "Answers accepted (undone ones "
                               "included: see driftloop_review_undos_total).", ["task"],
                               registry=r)
        self.undos = Counter("driftloop_review_undos", "Answers taken back in their undo "
                             "window.", ["task"], registry=r)
        self.rejected = Counter("driftloop_review_rejected_answers", "Answers refused, by "
                                "HTTP status (400 invalid, 404 unknown, 409 answered).",
                                ["code"], registry=r)
        self.pending = Gauge("driftloop_review_pending", "Label requests waiting for a "
                             "reviewer.", ["task"], registry=r)
        self.latency = Histogram("driftloop_review_answer_latency_seconds", "From a label "
                                 "request (its ts) to a reviewer's answer.", ["task"],
                                 buckets=_LATENCY_BUCKETS, registry=r)

    def answered(self, task: str, *, waited_s: float) -> None:
        self.answers.labels(task=task).inc()
        self.latency.labels(task=task).observe(max(0.0, waited_s))

    def render(self, counts: Mapping[str, TaskCounts]) -> bytes:
        """The text exposition, with the pending gauge set from ``counts``."""
        self.pending.clear()
        for task, count in counts.items():
            self.pending.labels(task=task).set(count.pending)
        return generate_latest(self.registry)
