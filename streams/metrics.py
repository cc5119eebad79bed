"""Prometheus text exposition of the worker's state (served at ``/metrics``).

The figures live in the tables (they survive restarts), so they are rendered from them on
each scrape rather than kept in a separate metrics registry. The format is Prometheus text
0.0.4: ``# TYPE`` lines, then ``name{label="value"} number``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .canary import CanaryComparison
    from .ownership import Ownership
    from .tables import WorkerTables

__all__ = ["CONTENT_TYPE", "MetricFamily", "canary_families", "render", "worker_families",
           "worker_page"]

CONTENT_TYPE = "text/plain; version=0.0.4"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class MetricFamily:
    """Samples of one metric name.

    >>> family = MetricFamily("driftloop_events_total", "counter", "Events processed.")
    >>> family.add(3, task="sentiment", kind="interactions")
    >>> print(render([family]))
    # HELP driftloop_events_total Events processed.
    # TYPE driftloop_events_total counter
    driftloop_events_total{kind="interactions",task="sentiment"} 3
    <BLANKLINE>
    """

    def __init__(self, name: str, kind: str, help_text: str) -> None:
        self.name, self.kind, self.help_text = name, kind, help_text
        self.samples: dict[tuple[tuple[str, str], ...], float] = defaultdict(float)

    def add(self, value: float | None, **labels: str) -> None:
        if value is None:
            return
        self.samples[tuple(sorted(labels.items()))] += float(value)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def render(families: Iterable[MetricFamily]) -> str:
    lines: list[str] = []
    for family in families:
        lines.append(f"# HELP {family.name} {family.help_text}")
        lines.append(f"# TYPE {family.name} {family.kind}")
        for labels, value in sorted(family.samples.items()):
            text = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
            lines.append(f"{family.name}{{{text}}} {_number(value)}" if text
                         else f"{family.name} {_number(value)}")
    return "\n".join(lines) + "\n"


def worker_families(states: Iterable[object], dead_letters: Mapping[str, int],
                    liveness: Mapping[str, float]) -> list[MetricFamily]:
    """The worker's metric families from its task states, dead-letter counts and liveness."""
    events = MetricFamily("driftloop_worker_events_total", "counter",
                          "Events and effects per task, by kind.")
    alerts = MetricFamily("driftloop_drift_alerts_total", "counter",
                          "Drift alerts per task and signal.")
    trainings = MetricFamily("driftloop_training_requests_total", "counter",
                             "Training requests per task and trigger.")
    accuracy = MetricFamily("driftloop_quality_accuracy", "gauge",
                            "Rolling accuracy per task, domain and model version.")
    error_rate = MetricFamily("driftloop_quality_error_rate", "gauge",
                              "Rolling error rate per task, domain and model version.")
    rating = MetricFamily("driftloop_quality_mean_rating", "gauge",
                          "Rolling mean rating per task, domain and model version.")
    outcomes = MetricFamily("driftloop_quality_outcomes", "gauge",
                            "Labels and corrections in the rolling window.")
    dead = MetricFamily("driftloop_dead_letters_total", "counter",
                        "Messages or events sent to dead-letters, by source topic and reason.")
    monitored = MetricFamily("driftloop_drift_monitored_events", "gauge",
                             "Events seen by the drift monitors of a task and domain.")
    live = MetricFamily("driftloop_worker_liveness", "gauge",
                        "Consumer liveness: messages handled and seconds since the last one.")
    for state in states:
        task = state.task  # type: ignore[attr-defined]
        for name, value in state.counters.items():  # type: ignore[attr-defined]
            if name.startswith("drift_alerts_"):
                alerts.add(value, task=task, signal=name.removeprefix("drift_alerts_"))
            elif name.startswith("training_requests_"):
                trainings.add(value, task=task,
                              trigger=name.removeprefix("training_requests_"))
            else:
                events.add(value, task=task, kind=name)
        for domain, drift in state.drift.domains.items():  # type: ignore[attr-defined]
            monitored.add(drift.events, task=task, domain=domain)
        for fig in state.quality.figures():  # type: ignore[attr-defined]
            labels = {"task": task, "domain": fig.domain, "model_version": fig.model_version}
            accuracy.add(fig.accuracy, **labels)
            error_rate.add(fig.error_rate, **labels)
            rating.add(fig.mean_rating, **labels)
            outcomes.add(fig.outcomes, **labels)
    for key, value in dead_letters.items():
        source, _, reason = key.partition("|")
        dead.add(value, topic=source.rsplit(":", 1)[0], reason=reason)
    for name, value in liveness.items():
        live.add(value, measure=name)
    return [events, alerts, trainings, accuracy, error_rate, rating, outcomes, dead, monitored,
            live]


def canary_families(comparisons: Iterable[CanaryComparison]) -> list[MetricFamily]:
    """Prometheus families of the A/B tests: the running test's evidence and the decisions.

    >>> from driftloop.streams.canary import CanaryComparison
    >>> print(render(canary_families([CanaryComparison("t")]))[:52])
    # HELP driftloop_ab_test_log_likelihood_ratio Log of
    """
    ratio = MetricFamily("driftloop_ab_test_log_likelihood_ratio", "gauge",
                         "Log of the running test's likelihood ratio, candidate better vs not.")
    bound = MetricFamily("driftloop_ab_test_boundary", "gauge",
                         "Log likelihood ratio at which the test promotes or rejects.")
    pairs = MetricFamily("driftloop_ab_test_pairs", "gauge",
                         "Paired outcomes of the running test.")
    discordant = MetricFamily("driftloop_ab_test_discordant_pairs", "gauge",
                              "Pairs with one side right, by the side that was right.")
    accuracy = MetricFamily("driftloop_ab_test_accuracy", "gauge",
                            "Share of right answers in the running test's pairs, per side.")
    waiting = MetricFamily("driftloop_ab_test_waiting_outcomes", "gauge",
                           "Outcomes of the running test waiting for a partner.")
    decisions = MetricFamily("driftloop_ab_test_decisions_total", "counter",
                             "Decided candidates per task and verdict.")
    outcomes = MetricFamily("driftloop_ab_test_events_total", "counter",
                            "Outcomes and commands the A/B test read, by kind.")
    for canary in comparisons:
        task = canary.task
        for name, value in canary.counters.items():
            if name.startswith("decisions_"):
                decisions.add(value, task=task, verdict=name.removeprefix("decisions_"))
            else:
                outcomes.add(value, task=task, kind=name)
        test = canary.test
        if test is None or canary.candidate is None:
            continue
        labels = {"task": task, "candidate": canary.candidate, "head": canary.head or ""}
        ratio.add(test.log_ratio, **labels)
        pairs.add(test.pairs, **labels)
        discordant.add(test.wins, **labels, right="candidate")
        discordant.add(test.losses, **labels, right="head")
        if test.pairs:
            accuracy.add(test.candidate_right / test.pairs, **labels, side="candidate")
            accuracy.add(test.head_right / test.pairs, **labels, side="head")
        waiting.add(canary.waiting, **labels)
        bound.add(test.upper, task=task, verdict="promote")
        bound.add(test.lower, task=task, verdict="reject")
    return [ratio, bound, pairs, discordant, accuracy, waiting, decisions, outcomes]


def worker_page(tables: WorkerTables, ownership: Ownership,
                liveness: Mapping[str, float]) -> str:
    """The worker's ``/metrics`` page: the tasks whose partitions it owns (their states,
    dead letters and canary comparisons) and its liveness figures.

    >>> from driftloop.schemas.settings import Settings
    >>> from driftloop.streams.ownership import Ownership
    >>> from driftloop.streams.tables import WorkerTables
    >>> tables = WorkerTables(Settings(), states={}, buffers={}, buckets={},
    ...                       dead_counts={"interactions:0|invalid_json": 2}, canaries={})
    >>> page = worker_page(tables, Ownership(None, Settings()), {"uptime_seconds": 5.0})
    >>> for line in page.splitlines():
    ...     if not line.startswith("#"):
    ...         print(line)
    driftloop_dead_letters_total{reason="invalid_json",topic="interactions"} 2
    driftloop_worker_liveness{measure="uptime_seconds"} 5
    """
    mine = ownership.owned_partitions()
    owned = ownership.owned(mine)
    states = [state for task, state in tables.states.items()
              if state is not None and owned(task)]
    # keys are "topic:partition|reason"
    dead = {key: value for key, value in tables.dead_counts.items()
            if mine is None or int(key.partition("|")[0].rpartition(":")[2]) in mine}
    canaries = [canary for task, canary in tables.canaries.items()
                if canary is not None and owned(task)]
    return render(worker_families(states, dead, liveness) + canary_families(canaries))
