"""Everything the report shows, computed from decoded events by small named steps
(:mod:`.accuracy`, :mod:`.alerts`, :mod:`.lineage`, :mod:`.gate`, :mod:`.serving`)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from ....schemas import (
    DeadLetter,
    DriftAlert,
    Feedback,
    Interaction,
    LabelRequest,
    ModelVersion,
    ServingAck,
    TrainingRequest,
)
from ..reviews import ReviewCounts
from .accuracy import AccuracyPoint, domain_spans, join_labels, rolling_accuracy, split_accuracy
from .alerts import AlertAnswer, answer_alerts
from .bounds import ReportBounds
from .lineage import VersionNode, build_lineage
from .serving import ReplicaAcks, count_label_requests, replica_acks

__all__ = ["AccuracyPoint", "ReadNote", "ReportData", "TaskCurves", "build_report_data"]


@dataclass(frozen=True, slots=True)
class TaskCurves:
    """One task's accuracy: overall, per (true) domain, per serving version."""

    overall: list[AccuracyPoint]
    by_domain: dict[str, list[AccuracyPoint]]
    by_version: dict[str, list[AccuracyPoint]]
    spans: list[tuple[str, float, float]]
    labels: int


@dataclass(frozen=True, slots=True)
class ReadNote:
    """How much of one topic was read: the window's records, and those the cap left out."""

    topic: str
    in_window: int
    skipped: int


@dataclass(slots=True)
class ReportData:
    """Everything the report renders."""

    interactions: int = 0
    feedback: int = 0
    labelled: int = 0
    window: int = 0
    curves: dict[str, TaskCurves] = field(default_factory=dict)
    alerts: list[DriftAlert] = field(default_factory=list)
    answers: list[AlertAnswer] = field(default_factory=list)
    requests: list[TrainingRequest] = field(default_factory=list)
    versions: list[ModelVersion] = field(default_factory=list)
    lineage: dict[str, list[VersionNode]] = field(default_factory=dict)
    label_requests: dict[str, ReviewCounts] = field(default_factory=dict)
    replicas: dict[str, list[ReplicaAcks]] = field(default_factory=dict)
    dead_letters: Counter[tuple[str, str]] = field(default_factory=Counter)
    unreadable: Counter[str] = field(default_factory=Counter)
    bounds: ReportBounds = field(default_factory=ReportBounds)
    reads: list[ReadNote] = field(default_factory=list)

    @property
    def accuracy(self) -> dict[str, list[AccuracyPoint]]:
        """The overall curve of each task."""
        return {task: curves.overall for task, curves in self.curves.items()}

    @property
    def tasks(self) -> list[str]:
        names = set(self.curves) | {a.task for a in self.alerts}
        names |= {r.task for r in self.requests} | {v.task for v in self.versions}
        names |= set(self.label_requests) | set(self.replicas)
        return sorted(names)

    @property
    def time_range(self) -> tuple[float, float] | None:
        stamps = [p.ts for curves in self.curves.values() for p in curves.overall]
        stamps += [e.ts for e in (*self.alerts, *self.requests, *self.versions)]
        return (min(stamps), max(stamps)) if stamps else None

    @property
    def capped(self) -> list[ReadNote]:
        return [note for note in self.reads if note.skipped]


def build_report_data(
    interactions: Iterable[Interaction],
    feedback: Iterable[Feedback],
    alerts: Iterable[DriftAlert] = (),
    requests: Iterable[TrainingRequest] = (),
    versions: Iterable[ModelVersion] = (),
    dead_letters: Iterable[DeadLetter] = (),
    *,
    label_requests: Iterable[LabelRequest] = (),
    acks: Iterable[ServingAck] = (),
    window: int | None = None,
    bounds: ReportBounds | None = None,
) -> ReportData:
    """Join and fold already decoded events into what the report shows; events outside
    ``bounds`` (time window, tasks) are left out before anything is counted.

    ``window`` is the number of labels the rolling accuracy averages over (default: about
    a thirtieth of a task's labels, at least 20).

    >>> from driftloop.schemas import Interaction, Feedback
    >>> seen = [Interaction(id=f"i{n}", ts=n, task="t", model_version="v0", input="x",
    ...                     prediction="pos") for n in range(4)]
    >>> said = [Feedback(id=f"f{n}", interaction_id=f"i{n}", ts=n + 0.5, task="t",
    ...                  kind="label", value="pos" if n % 2 else "neg") for n in range(4)]
    >>> data = build_report_data(seen, said, window=2)
    >>> [p.accuracy for p in data.accuracy["t"]]
    [0.0, 0.5, 0.5, 0.5]
    >>> build_report_data(seen, said, bounds=ReportBounds(since=2.0)).interactions
    2
    """
    bounds = bounds or ReportBounds()

    def inside(events: Iterable) -> list:  # type: ignore[type-arg]
        return sorted((e for e in events if bounds.holds(e.ts, e.task)), key=lambda e: e.ts)

    data = ReportData(bounds=bounds)
    outcomes, data.interactions, data.feedback = join_labels(inside(interactions),
                                                             said := inside(feedback))
    data.labelled = sum(len(o) for o in outcomes.values())
    data.window = window or max(20, data.labelled // max(1, len(outcomes)) // 30)
    for task, task_outcomes in outcomes.items():
        data.curves[task] = TaskCurves(
            overall=rolling_accuracy(task_outcomes, data.window),
            by_domain=split_accuracy(task_outcomes, data.window, key=lambda o: o.domain),
            by_version=split_accuracy(task_outcomes, data.window,
                                      key=lambda o: o.model_version),
            spans=domain_spans(task_outcomes), labels=len(task_outcomes))
    data.alerts = inside(alerts)
    data.requests = inside(requests)
    data.versions = inside(versions)
    data.answers = answer_alerts(data.alerts, data.versions)
    data.lineage = build_lineage(data.versions, data.requests)
    data.label_requests = count_label_requests(inside(label_requests), said)
    data.replicas = replica_acks(inside(acks), data.versions)
    data.dead_letters = Counter((d.source_topic, d.reason) for d in dead_letters
                                if bounds.in_time(d.ts))
    return data
