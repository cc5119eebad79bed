"""Prometheus text exposition of the worker's state (served at ``/metrics``).

The figures live in the tables (they survive restarts), so they are rendered from them on
each scrape rather than kept in a separate metrics registry. The format is Prometheus text
0.0.4: ``# TYPE`` lines, then ``name{label="value"} number``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping

__all__ = ["CONTENT_TYPE", "MetricFamily", "render"]

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
