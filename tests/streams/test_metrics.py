"""The worker's /metrics page: task states, canary tests and liveness by Prometheus'
conventions, parsed back with prometheus_client's own parser."""

from __future__ import annotations

from canary_helpers import started, traffic
from prometheus_client.parser import text_string_to_metric_families

from driftloop.schemas.settings import TaskSettings, WorkerSettings
from driftloop.streams.metrics import (
    LIVENESS_METRICS,
    canary_families,
    render,
    worker_families,
)
from driftloop.streams.pipeline import TaskState


def test_families_from_state_dead_letters_and_liveness():
    state = TaskState("sent", WorkerSettings(), TaskSettings())
    state.counters.update({"interactions": 7, "drift_alerts_embedding": 1,
                           "training_requests_drift": 1})
    state.quality.record_outcome("news", "v1", True, slices=[("language", "de")])
    state.quality.record_outcome("news", "v1", False)
    text = render(worker_families([state], {"ix:0|invalid_json": 2, "ix:1|invalid_json": 1},
                                  {"last_message_timestamp_seconds": 1.5e9,
                                   "seconds_since_last_message": 1.5}))
    assert 'driftloop_worker_events_total{kind="interactions",task="sent"} 7.0' in text
    assert 'driftloop_drift_alerts_total{signal="embedding",task="sent"} 1.0' in text
    assert 'driftloop_training_requests_total{task="sent",trigger="drift"} 1.0' in text
    assert ('driftloop_quality_accuracy_ratio{domain="news",model_version="v1",task="sent"} 0.5'
            in text)
    assert 'driftloop_quality_slice_accuracy_ratio{slice="language=de",task="sent"} 1.0' in text
    assert 'driftloop_quality_slice_outcomes{slice="language=de",task="sent"} 1.0' in text
    assert 'driftloop_dead_letters_total{reason="invalid_json",topic="ix"} 3.0' in text
    assert "driftloop_worker_last_message_timestamp_seconds 1.5e+09" in text
    assert "seconds_since_last_message" not in text  # a relative time: /health only


def test_names_follow_prometheus_conventions():
    state = TaskState("sent", WorkerSettings(), TaskSettings())
    state.counters.update({"interactions": 7})
    state.quality.record_outcome("news", "v1", True)
    ab = started()
    ab.on_outcomes(traffic(20, 0.9, 0.6), now=3.0)
    figures = {figure: 1.0 for figure in LIVENESS_METRICS}
    text = render(worker_families([state], {"ix:0|invalid_json": 2}, figures)
                  + canary_families([ab]))
    families = list(text_string_to_metric_families(text))
    assert len(families) >= 20
    for family in families:
        assert family.name.startswith("driftloop_")
        assert family.type in ("counter", "gauge"), family.name
        for sample in family.samples:
            if family.type == "counter":
                assert sample.name.endswith(("_total", "_created")), sample.name
            else:
                assert not sample.name.endswith("_total"), sample.name
            assert "measure" not in sample.labels  # one metric per measure, not one gauge


def test_label_values_are_escaped():
    from driftloop.streams.metrics import Family

    family = Family("m", "gauge", "help")
    family.add(1, reason='a "quoted"\nline\\')
    assert 'm{reason="a \\"quoted\\"\\nline\\\\"} 1.0' in render([family])


def test_metrics_show_the_running_test_and_the_decisions():
    ab = started()
    ab.on_outcomes(traffic(20, 0.9, 0.6), now=3.0)
    text = render(canary_families([ab]))
    assert 'driftloop_ab_test_pairs{candidate="v2",head="v1",task="t"}' in text
    assert 'driftloop_ab_test_boundary{task="t",verdict="promote"} 2.99' in text
    assert 'driftloop_ab_test_accuracy_ratio{candidate="v2",head="v1",side="candidate",task="t"}' \
        in text
    ab.on_outcomes(traffic(2000, 0.9, 0.6, start=20), now=4.0)
    text = render(canary_families([ab]))
    assert 'driftloop_ab_test_decisions_total{task="t",verdict="promote"} 1.0' in text
    assert "driftloop_ab_test_pairs{" not in text  # no test running
