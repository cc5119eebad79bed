"""The worker's ``/metrics`` page, through ``prometheus_client``.

The figures live in the tables (they survive restarts and follow a task's partition to
whichever worker owns it), so a collector reads them at each scrape instead of keeping a
second copy in a metrics registry. Names follow Prometheus' conventions: counters end in
``_total``, durations and times in ``_seconds``, shares in ``_ratio``; labels are bounded
(a task's quality keeps its newest few model versions per domain, see
:class:`~driftloop.streams.quality.QualityTracker`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING

from prometheus_client import generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import CollectorRegistry

if TYPE_CHECKING:
    from .canary import CanaryComparison
    from .ownership import Ownership
    from .tables import WorkerTables

__all__ = ["CONTENT_TYPE", "LIVENESS_METRICS", "Family", "canary_families", "render",
           "worker_families", "worker_page"]

CONTENT_TYPE = "text/plain; version=0.0.4"
"""prometheus_client's ``CONTENT_TYPE_LATEST`` without its charset, which Faust's aiohttp
response refuses in ``content_type`` (UTF-8 is aiohttp's default)."""

LIVENESS_METRICS: dict[str, tuple[str, str, str]] = {
    # liveness figure: (metric name without _total, type, help)
    "messages_handled": ("driftloop_worker_messages_handled", "counter",
                         "Source records handled since this process started."),
    "assigned_partitions": ("driftloop_worker_assigned_partitions", "gauge",
                            "Partitions assigned to this worker's consumer."),
    # Paused partitions that stay paused are how a Faust consumer "slowly stops"
    # (faust-streaming #175, #640).
    "paused_partitions": ("driftloop_worker_paused_partitions", "gauge",
                          "Assigned partitions the consumer holds paused."),
    "watchdog_checks": ("driftloop_worker_watchdog_checks", "counter",
                        "Checks of the stall watchdog."),
    "watchdog_kicks": ("driftloop_worker_watchdog_kicks", "counter",
                       "Stalls the watchdog found (partitions resumed and re-sought)."),
    "skip_gaps": ("driftloop_worker_skip_gaps", "counter",
                  "Records Faust skipped, found by the in-order guard."),
    "records_read_back": ("driftloop_worker_records_read_back", "counter",
                          "Skipped records read back from the broker and applied in order."),
    "unreadable_model_versions": ("driftloop_worker_unreadable_model_versions", "counter",
                                  "model-versions records that were no ModelVersion."),
    "untrusted_model_versions": ("driftloop_worker_untrusted_model_versions", "counter",
                                 "model-versions entries refused for a missing or bad "
                                 "signature."),
    "last_message_timestamp_seconds": ("driftloop_worker_last_message_timestamp_seconds",
                                       "gauge", "Unix time the last source record was handled "
                                                "(the start time before the first)."),
    "start_time_seconds": ("driftloop_worker_start_time_seconds", "gauge",
                           "Unix time this worker process started."),
}
"""How each :class:`~driftloop.streams.liveness.Liveness` figure is exposed; figures not
named here (relative times) are for ``/health`` only."""


class Family:
    """Samples of one metric, summed per label set, turned into a ``prometheus_client`` family.

    ``name`` is without ``_total``: the client adds it to counters.

    >>> family = Family("driftloop_events", "counter", "Events processed.")
    >>> family.add(3, task="sentiment", kind="interactions")
    >>> print(render([family]), end="")
    # HELP driftloop_events_total Events processed.
    # TYPE driftloop_events_total counter
    driftloop_events_total{kind="interactions",task="sentiment"} 3.0
    """

    def __init__(self, name: str, kind: str, help_text: str) -> None:
        if kind not in ("counter", "gauge"):
            raise ValueError(f"kind must be 'counter' or 'gauge', got {kind!r}")
        self.name, self.kind, self.help_text = name, kind, help_text
        self.samples: dict[tuple[tuple[str, str], ...], float] = defaultdict(float)

    def add(self, value: float | None, **labels: str) -> None:
        if value is None:
            return
        self.samples[tuple(sorted(labels.items()))] += float(value)

    def metric(self) -> Metric:
        names = sorted({key for labels in self.samples for key, _ in labels})
        cls = CounterMetricFamily if self.kind == "counter" else GaugeMetricFamily
        family = cls(self.name, self.help_text, labels=names)
        for labels, value in sorted(self.samples.items()):
            given = dict(labels)
            family.add_metric([given.get(key, "") for key in names], value)
        return family


class _Families:
    """A collector over families computed once, for one scrape."""

    def __init__(self, families: Iterable[Family]) -> None:
        self.families = list(families)

    def collect(self) -> Iterator[Metric]:
        for family in self.families:
            yield family.metric()


def render(families: Iterable[Family]) -> str:
    """Prometheus text of ``families`` (the format ``prometheus_client`` serves)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(families))  # type: ignore[arg-type]
    return generate_latest(registry).decode()


def worker_families(states: Iterable[object], dead_letters: Mapping[str, int],
                    liveness: Mapping[str, float]) -> list[Family]:
    """The worker's metric families from its task states, dead-letter counts and liveness."""
    events = Family("driftloop_worker_events", "counter",
                    "Events and effects per task, by kind.")
    alerts = Family("driftloop_drift_alerts", "counter", "Drift alerts per task and signal.")
    trainings = Family("driftloop_training_requests", "counter",
                       "Training requests per task and trigger.")
    accuracy = Family("driftloop_quality_accuracy_ratio", "gauge",
                      "Rolling accuracy per task, domain and model version.")
    error_rate = Family("driftloop_quality_error_ratio", "gauge",
                        "Rolling error rate per task, domain and model version.")
    rating = Family("driftloop_quality_mean_rating", "gauge",
                    "Rolling mean rating per task, domain and model version.")
    outcomes = Family("driftloop_quality_outcomes", "gauge",
                      "Labels and corrections in the rolling window.")
    slice_accuracy = Family("driftloop_quality_slice_accuracy_ratio", "gauge",
                            "Rolling accuracy per task and named slice (metadata key=value).")
    slice_outcomes = Family("driftloop_quality_slice_outcomes", "gauge",
                            "Labels and corrections in a named slice's rolling window.")
    dead = Family("driftloop_dead_letters", "counter",
                  "Messages or events sent to dead-letters, by source topic and reason.")
    monitored = Family("driftloop_drift_monitored_events", "counter",
                       "Events seen by the drift monitors of a task and domain.")
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
        for named in getattr(state.quality, "slice_figures", list)():  # type: ignore[attr-defined]
            slice_accuracy.add(named.accuracy, task=task, slice=named.name)
            slice_outcomes.add(named.outcomes, task=task, slice=named.name)
    for key, value in dead_letters.items():
        source, _, reason = key.partition("|")
        dead.add(value, topic=source.rsplit(":", 1)[0], reason=reason)
    live = []
    for figure, (name, kind, help_text) in LIVENESS_METRICS.items():
        family = Family(name, kind, help_text)
        family.add(liveness.get(figure))
        live.append(family)
    return [events, alerts, trainings, accuracy, error_rate, rating, outcomes, slice_accuracy,
            slice_outcomes, dead, monitored, *live]


def canary_families(comparisons: Iterable[CanaryComparison]) -> list[Family]:
    """Prometheus families of the A/B tests: the running test's evidence and the decisions.

    >>> from driftloop.streams.canary import CanaryComparison
    >>> print(render(canary_families([CanaryComparison("t")]))[:52])
    # HELP driftloop_ab_test_log_likelihood_ratio Log of
    """
    ratio = Family("driftloop_ab_test_log_likelihood_ratio", "gauge",
                   "Log of the running test's likelihood ratio, candidate better vs not.")
    bound = Family("driftloop_ab_test_boundary", "gauge",
                   "Log likelihood ratio at which the test promotes or rejects.")
    pairs = Family("driftloop_ab_test_pairs", "gauge", "Paired outcomes of the running test.")
    discordant = Family("driftloop_ab_test_discordant_pairs", "gauge",
                        "Pairs with one side right, by the side that was right.")
    accuracy = Family("driftloop_ab_test_accuracy_ratio", "gauge",
                      "Share of right answers in the running test's pairs, per side.")
    waiting = Family("driftloop_ab_test_waiting_outcomes", "gauge",
                     "Outcomes of the running test waiting for a partner.")
    decisions = Family("driftloop_ab_test_decisions", "counter",
                       "Decided candidates per task and verdict.")
    outcomes = Family("driftloop_ab_test_events", "counter",
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
    >>> page = worker_page(tables, Ownership(None, Settings()), {"start_time_seconds": 5.0})
    >>> for line in page.splitlines():
    ...     if not line.startswith("#"):
    ...         print(line)
    driftloop_dead_letters_total{reason="invalid_json",topic="interactions"} 2.0
    driftloop_worker_start_time_seconds 5.0
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
