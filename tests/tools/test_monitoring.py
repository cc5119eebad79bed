"""The shipped Grafana dashboard and Prometheus alert rules: well formed, and every metric
they read belongs to a process whose test checks its live page (monitoring_names)."""

from __future__ import annotations

import json

import yaml
from monitoring_names import ALERTS, DASHBOARD, assert_serves, named

from driftloop.streams.metrics import (
    LIVENESS_METRICS,
    canary_families,
    render,
    worker_families,
)


def test_the_dashboard_is_a_grafana_dashboard_over_one_prometheus_source() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert len(panels) >= 15
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])
    for panel in panels:
        assert panel["targets"], panel["title"]
        assert panel["datasource"]["uid"] == "${datasource}"
        assert all(t["expr"] for t in panel["targets"])
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    assert variables == {"datasource", "task"}


def test_every_alert_rule_is_complete() -> None:
    rules = [rule for group in yaml.safe_load(ALERTS.read_text())["groups"]
             for rule in group["rules"]]
    names = {rule["alert"] for rule in rules}
    # the four the operators asked for, at least
    assert {"DriftloopWorkerStalled", "DriftloopLearnerLagging",
            "DriftloopReplicasNotConverged", "DriftloopDriftWithoutUpdate"} <= names
    for rule in rules:
        assert rule["expr"].strip() and rule["labels"]["severity"]
        assert rule["annotations"]["summary"]


def test_each_process_has_metrics_to_show() -> None:
    for component in ("worker", "learner", "serving"):
        assert named(component), component


def test_the_worker_families_cover_its_names_even_before_any_task() -> None:
    # every family is on the page (HELP and TYPE) before its first sample
    page = render(worker_families([], {}, {figure: 0.0 for figure in LIVENESS_METRICS})
                  + canary_families([]))
    assert_serves(page, "worker")
