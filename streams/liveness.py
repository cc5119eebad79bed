"""How alive the worker's consumer is: the figures behind ``/health`` and the liveness gauges.

faust-streaming has open reports of consumers that slowly stop (faust-streaming #175, #640):
a worker that looks up but handles nothing. The worker counts what it handles and when, the
stall watchdog (:mod:`~driftloop.streams.watchdog`) counts its checks and kicks here, and the
figures are served at ``/health`` and as ``driftloop_worker_*`` metrics (see
:data:`~driftloop.streams.metrics.LIVENESS_METRICS`), where an alert can watch them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from .source_order import SourceOrder

__all__ = ["Liveness"]


@dataclass
class Liveness:
    """The worker's pulse since it started.

    Examples
    --------
    >>> pulse = Liveness(started_at=100.0)
    >>> pulse.handled(now=130.0)
    >>> figures = pulse.figures(app=None, order=None, now=160.0)  # no consumer yet
    >>> figures["messages_handled"], figures["seconds_since_last_message"]
    (1.0, 30.0)
    >>> figures["assigned_partitions"], figures["uptime_seconds"]
    (0.0, 60.0)
    >>> figures["last_message_timestamp_seconds"], figures["start_time_seconds"]
    (130.0, 100.0)
    """

    started_at: float = field(default_factory=time.time)
    messages: int = 0
    last_message_at: float = 0.0
    watchdog_checks: int = 0
    watchdog_kicks: int = 0
    # model-versions records that were no ModelVersion: logged and skipped, never dead-lettered
    # (the learner owns that log; every worker reading it would write its own copy).
    unreadable_versions: int = 0
    # model-versions entries without a valid signature when the deployment signs: skipped.
    untrusted_versions: int = 0

    def handled(self, now: float) -> None:
        """One more source record handled, at ``now``."""
        self.messages += 1
        self.last_message_at = now

    @property
    def last_progress(self) -> float:
        """When the last record was handled (the start, before the first one)."""
        return self.last_message_at or self.started_at

    def figures(self, app: Any, order: SourceOrder | None, *,
                now: float | None = None) -> dict[str, float]:
        """The liveness figures, with what the consumer of ``app`` holds and what ``order``
        read back."""
        now = time.time() if now is None else now
        try:
            consumer = app.consumer
            assigned = float(len(consumer.assignment()))
            # Paused partitions that stay paused are how a Faust consumer "slowly stops"
            # (faust-streaming #175, #640): worth a gauge and an alert.
            paused = float(len(getattr(consumer, "_paused_partitions", ()) or ()))
        except Exception:  # not started or between generations: nothing assigned
            assigned = paused = 0.0
        return {"messages_handled": float(self.messages),
                "assigned_partitions": assigned,
                "paused_partitions": paused,
                "watchdog_checks": float(self.watchdog_checks),
                "watchdog_kicks": float(self.watchdog_kicks),
                # records Faust skipped, read back from the broker and applied in order
                "skip_gaps": float(order.gaps_seen if order else 0),
                "records_read_back": float(order.records_recovered if order else 0),
                "unreadable_model_versions": float(self.unreadable_versions),
                "untrusted_model_versions": float(self.untrusted_versions),
                "last_message_timestamp_seconds": self.last_progress,
                "start_time_seconds": self.started_at,
                "seconds_since_last_message": round(now - self.last_progress, 3),
                "uptime_seconds": round(now - self.started_at, 3)}
