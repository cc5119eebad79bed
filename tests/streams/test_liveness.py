"""Liveness: what the consumer holds and has paused, what was read back, and the clocks."""

from __future__ import annotations

from worker_fakes import fake_app

from driftloop.schemas.settings import Settings
from driftloop.streams.liveness import Liveness
from driftloop.streams.source_order import SourceOrder


def test_figures_of_a_running_consumer():
    pulse = Liveness(started_at=100.0, watchdog_checks=4, watchdog_kicks=1)
    assert pulse.last_progress == 100.0
    pulse.handled(now=150.0)
    order = SourceOrder(Settings(), group_id="g", gaps_seen=2, records_recovered=5)
    app = fake_app(("interactions", 0), ("feedback", 0), ("interactions", 1), paused=1)
    assert pulse.figures(app, order, now=160.0) == {
        "messages_handled": 1.0, "assigned_partitions": 3.0, "paused_partitions": 1.0,
        "watchdog_checks": 4.0, "watchdog_kicks": 1.0, "skip_gaps": 2.0,
        "records_read_back": 5.0, "unreadable_model_versions": 0.0,
        "untrusted_model_versions": 0.0,
        "last_message_timestamp_seconds": 150.0, "start_time_seconds": 100.0,
        "seconds_since_last_message": 10.0, "uptime_seconds": 60.0}
