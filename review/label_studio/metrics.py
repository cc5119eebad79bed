"""The Label Studio bridge's Prometheus ``/metrics``: what it imported, published and left.

The bridge counts each outcome once (:attr:`LabelStudioBridge.counts`); a collector reads
those counts at each scrape, one counter with a bounded ``kind`` label.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from prometheus_client import generate_latest
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import CollectorRegistry

__all__ = ["BridgeMetrics"]


class BridgeMetrics:
    """``driftloop_review_bridge_events_total{kind}`` from a bridge's counts.

    Examples
    --------
    >>> from collections import Counter
    >>> counts = Counter(imported=3, published=2, skipped=1)
    >>> page = BridgeMetrics(counts).render().decode()
    >>> 'driftloop_review_bridge_events_total{kind="imported"} 3.0' in page
    True
    """

    def __init__(self, counts: Mapping[str, int]) -> None:
        self.counts = counts
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)  # type: ignore[arg-type]

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(
            "driftloop_review_bridge_events",
            "Label Studio bridge outcomes by kind: imported, published, revisions, skipped, "
            "conflicts, invalid, already_imported, unreadable_requests, foreign_tasks.",
            labels=["kind"])
        for kind, value in sorted(self.counts.items()):
            family.add_metric([kind], value)
        yield family

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def serve(self, host: str, port: int) -> Any:
        """Serve ``/metrics`` from a thread (the server, to shut down)."""
        from prometheus_client import start_http_server

        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        return server
