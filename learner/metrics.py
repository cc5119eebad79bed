"""The learner's Prometheus metrics, served at ``/metrics`` (``learner.metrics_port``).

Names follow Prometheus conventions: counters end in ``_total``, durations are ``_seconds``
histograms, and labels are bounded (task, outcome, phase; never a version or request id).

* ``driftloop_learner_updates_total{task, outcome}``: requests handled, by how they ended
  (``promoted``, ``rejected``, ``candidate``, ``skipped`` (already published),
  ``dead_letter``, ``moved`` (trained, but a rebalance gave the request to another learner));
* ``driftloop_learner_second_looks_total{task, outcome}``: earlier candidates judged again
  by a later update (``learner.gate_second_look``), ``promoted`` or ``rejected``;
* ``driftloop_learner_failed_attempts_total``: training attempts that raised and were retried;
* ``driftloop_learner_update_seconds{phase}``: where an update's time goes (fetching the
  parent, scoring it, training, scoring the candidate, storing; ``update`` is the whole);
* ``driftloop_learner_publish_seconds``: request consumed to version published;
* ``driftloop_learner_queue_lag``: training requests behind the end of their partitions;
* ``driftloop_learner_resident_models``: base models held in memory.
"""

from __future__ import annotations

import logging
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["LearnerMetrics", "serve_registry"]

log = logging.getLogger(__name__)

_SECONDS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0)


class LearnerMetrics:
    """One learner's figures, in a registry of its own.

    Examples
    --------
    >>> metrics = LearnerMetrics()
    >>> metrics.update_ended("sentiment", "promoted", {"train_seconds": 1.5}, published_in=2.0)
    >>> text = metrics.render().decode()
    >>> 'driftloop_learner_updates_total{outcome="promoted",task="sentiment"} 1.0' in text
    True
    >>> 'driftloop_learner_update_seconds_count{phase="train"} 1.0' in text
    True
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.updates = Counter("driftloop_learner_updates", "Training requests handled, by "
                               "how they ended.", ["task", "outcome"], registry=r)
        self.superseded = Counter("driftloop_learner_requests_superseded", "Queued training "
                                  "requests merged into a newer one of the same task and "
                                  "domain (coalesced backlog).", ["task"], registry=r)
        self.second_looks = Counter("driftloop_learner_second_looks", "Earlier candidates "
                                    "judged again by a later update, by how it ended.",
                                    ["task", "outcome"], registry=r)
        self.failed_attempts = Counter("driftloop_learner_failed_attempts", "Training "
                                       "attempts that raised and were retried.", registry=r)
        self.phase_seconds = Histogram("driftloop_learner_update_seconds", "Time of an "
                                       "update, by phase ('update' is the whole).", ["phase"],
                                       buckets=_SECONDS, registry=r)
        self.publish_seconds = Histogram("driftloop_learner_publish_seconds", "From consuming "
                                         "a request to its version acknowledged by the broker.",
                                         buckets=_SECONDS, registry=r)
        self.queue_lag = Gauge("driftloop_learner_queue_lag", "Training requests behind the "
                               "end of the partitions this learner reads.", registry=r)
        self.resident_models = Gauge("driftloop_learner_resident_models", "Base models held "
                                     "in memory.", registry=r)

    def update_ended(self, task: str, outcome: str, timings: dict[str, float], *,
                     published_in: float | None = None) -> None:
        """Count a handled request; record its phases (``<phase>_seconds`` keys)."""
        self.updates.labels(task=task, outcome=outcome).inc()
        for key, seconds in timings.items():
            if key.endswith("_seconds"):
                self.phase_seconds.labels(phase=key.removesuffix("_seconds")).observe(seconds)
        if published_in is not None:
            self.publish_seconds.observe(published_in)

    def second_look_ended(self, task: str, looked: Any) -> None:
        """Count the second look an update's ``metadata.second_look`` records (None: none).

        >>> metrics = LearnerMetrics()
        >>> metrics.second_look_ended("sentiment", {"of": "v3", "promoted": True})
        >>> metrics.second_look_ended("sentiment", None)
        >>> sample = 'second_looks_total{outcome="promoted",task="sentiment"} 1.0'
        >>> sample in metrics.render().decode()
        True
        """
        if isinstance(looked, dict):
            outcome = "promoted" if looked.get("promoted") else "rejected"
            self.second_looks.labels(task=task, outcome=outcome).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def serve(self, host: str, port: int) -> Any:
        """Serve ``/metrics`` from a thread; None (with a warning) when the port is taken:
        the learner trains without its metrics rather than not at all."""
        return serve_registry(self.registry, host, port, "learner")


def serve_registry(registry: CollectorRegistry, host: str, port: int, what: str) -> Any:
    """Serve ``registry`` at ``http://host:port/metrics`` from a thread; None (with a
    warning) when the port is taken: a process works on without its metrics rather than
    not at all."""
    from prometheus_client import start_http_server

    try:
        server, _thread = start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        log.warning("%s metrics not served on %s:%d: %s", what, host, port, exc)
        return None
    log.info("%s metrics on http://%s:%d/metrics", what, host, port)
    return server
