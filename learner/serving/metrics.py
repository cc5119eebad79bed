"""The reference service's Prometheus metrics (served at ``/metrics``).

Each service owns its registry, so two replicas in one process (tests, benchmarks) keep
their figures apart.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from .refusals import VersionRefusal
from .served import ServingChange

__all__ = ["CONTENT_TYPE_LATEST", "ServingMetrics"]

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class ServingMetrics:
    """Requests, latencies, swaps, refusals and publishing of one replica.

    Examples
    --------
    >>> metrics = ServingMetrics()
    >>> metrics.predictions.labels(task="sentiment", version="v1", canary="false").inc(2)
    >>> b'driftloop_serving_predictions_total{canary="false",task="sentiment",version="v1"} 2.0' \\
    ...     in metrics.render()
    True
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("driftloop_serving_requests", "HTTP requests by endpoint and "
                                "status code.", ["endpoint", "code"], registry=r)
        self.latency = Histogram("driftloop_serving_request_seconds", "Time to answer a "
                                 "request.", ["endpoint"], buckets=_LATENCY_BUCKETS, registry=r)
        self.predictions = Counter("driftloop_serving_predictions", "Inputs answered, by the "
                                   "version that answered.", ["task", "version", "canary"],
                                   registry=r)
        self.served = Gauge("driftloop_serving_version_info", "1 for the version each task is "
                            "served with.", ["task", "version"], registry=r)
        self.swaps = Counter("driftloop_serving_swaps", "Served-version changes.", ["task"],
                             registry=r)
        self.swap_seconds = Histogram("driftloop_serving_swap_seconds", "From reading a version "
                                      "event to serving it.", ["task"],
                                      buckets=_LATENCY_BUCKETS, registry=r)
        self.refused = Counter("driftloop_serving_refused_versions", "Versions refused "
                               "(corrupt, missing or unservable adapters).", ["task"], registry=r)
        self.published = Counter("driftloop_serving_published_events", "Events acknowledged "
                                 "by the broker.", ["topic"], registry=r)
        self.messages = Counter("driftloop_serving_published_messages", "Kafka messages sent "
                                "(an envelope carries many events).", ["topic"], registry=r)

    def on_serving(self, change: ServingChange) -> None:
        import time

        self.swaps.labels(task=change.task).inc()
        self.swap_seconds.labels(task=change.task).observe(time.monotonic() - change.event_read_at)
        # version_info: one series per task, the version it is served with now
        if change.previous_version is not None:
            try:
                self.served.remove(change.task, change.previous_version)
            except KeyError:
                pass  # never set here (the service sets the gauge when scraped)
        self.served.labels(task=change.task, version=change.version_id).set(1)

    def on_refused(self, refusal: VersionRefusal) -> None:
        self.refused.labels(task=refusal.task).inc()

    def sent(self, topic: str, events: int, messages: int) -> None:
        self.published.labels(topic=topic).inc(events)
        self.messages.labels(topic=topic).inc(messages)

    def render(self) -> bytes:
        return generate_latest(self.registry)
