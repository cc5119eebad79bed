"""Trigger policies and the gate: priority, minimum examples, cooldown, schedule."""

from __future__ import annotations

from driftloop.streams.triggers import (
    ChallengePolicy,
    DriftPolicy,
    ManualPolicy,
    MetricPolicy,
    SchedulePolicy,
    TaskSignals,
    TriggerGate,
)


def gate(**kw) -> TriggerGate:
    return TriggerGate([ManualPolicy(), ChallengePolicy(), DriftPolicy(), MetricPolicy(),
                        SchedulePolicy(every_seconds=100, every_examples=1000)], **kw)


def test_priority_manual_then_challenge_then_drift_then_metric():
    g = gate(min_examples=1)
    s = TaskSignals(now=0, new_examples=5, accuracy=0.1, recent_outcomes=500,
                    drift_alerts=["d"], challenge_failures=["v2"], manual_requests=["op"])
    assert g.decide(s).kind.value == "manual"
    s.manual_requests = ()
    assert g.decide(s).kind.value == "challenge"
    s.challenge_failures = ()
    assert g.decide(s).kind.value == "drift"
    s.drift_alerts = ()
    assert g.decide(s).kind.value == "metric"


def test_metric_drop_from_baseline_and_min_outcomes():
    p = MetricPolicy(threshold=None, max_drop=0.1, min_outcomes=100)
    assert p.check(TaskSignals(now=0, new_examples=0, accuracy=0.7, baseline=0.85,
                               recent_outcomes=99), None, 0) is None
    assert p.check(TaskSignals(now=0, new_examples=0, accuracy=0.7, baseline=0.85,
                               recent_outcomes=100), None, 0).kind.value == "metric"


def test_cooldown_holds_all_but_manual_and_min_examples_holds_all():
    g = gate(min_examples=10, cooldown_seconds=60)
    g.fired(now=0, examples=10)
    assert g.decide(TaskSignals(now=30, new_examples=50, drift_alerts=["d"])) is None
    assert g.decide(TaskSignals(now=30, new_examples=50, manual_requests=["op"])).kind.value \
        == "manual"
    assert g.decide(TaskSignals(now=30, new_examples=5, manual_requests=["op"])) is None
    assert g.decide(TaskSignals(now=61, new_examples=50, drift_alerts=["d"])).kind.value == "drift"


def test_schedule_by_time_counts_from_start_then_from_last_training():
    g = TriggerGate([SchedulePolicy(every_seconds=100)], min_examples=1, cooldown_seconds=0)
    assert g.decide(TaskSignals(now=1000, new_examples=3)) is None
    assert g.decide(TaskSignals(now=1100, new_examples=3)).kind.value == "schedule"
    g.fired(now=1100, examples=3)
    assert g.decide(TaskSignals(now=1150, new_examples=3)) is None
