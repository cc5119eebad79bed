"""What the report shows, computed from the topics: quality over time and the loop's events.

Accuracy comes from the events themselves, not from a worker's metrics: a label feedback
joined to its interaction by id is correct when it equals the interaction's prediction; a
correction counts as an error. Every record that does not decode is counted by topic, so the
report says what it could not read.
"""

from __future__ import annotations

from collections import Counter, defaultdict, deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from ....schemas import (
    DeadLetter,
    DriftAlert,
    Feedback,
    FeedbackKind,
    Interaction,
    ModelVersion,
    Topic,
    TrainingRequest,
    decode,
    decode_batch,
)
from ....schemas.commands import COMMAND_HEADER
from ....schemas.errors import ValidationError
from ....schemas.settings import Settings
from ...kafka.topic_reader import RawRecord, decode_all, read_snapshot

__all__ = ["AccuracyPoint", "ReportData", "build_report_data", "collect_report_data"]


@dataclass(frozen=True, slots=True)
class AccuracyPoint:
    """Rolling accuracy at one labelled event: over the last ``window`` labels of the task.

    Points start once half a window of labels has been seen.
    """

    ts: float
    accuracy: float
    domain: str
    model_version: str


@dataclass(slots=True)
class ReportData:
    """Everything the report renders."""

    interactions: int = 0
    feedback: int = 0
    labelled: int = 0
    accuracy: dict[str, list[AccuracyPoint]] = field(default_factory=dict)
    domain_spans: dict[str, list[tuple[str, float, float]]] = field(default_factory=dict)
    alerts: list[DriftAlert] = field(default_factory=list)
    requests: list[TrainingRequest] = field(default_factory=list)
    versions: list[ModelVersion] = field(default_factory=list)
    dead_letters: Counter[tuple[str, str]] = field(default_factory=Counter)
    unreadable: Counter[str] = field(default_factory=Counter)
    window: int = 0

    @property
    def tasks(self) -> list[str]:
        names = set(self.accuracy) | {a.task for a in self.alerts}
        names |= {r.task for r in self.requests} | {v.task for v in self.versions}
        return sorted(names)

    @property
    def time_range(self) -> tuple[float, float] | None:
        stamps = [p.ts for points in self.accuracy.values() for p in points]
        stamps += [e.ts for e in (*self.alerts, *self.requests, *self.versions)]
        return (min(stamps), max(stamps)) if stamps else None


def _rolling_accuracy(pairs: list[tuple[Interaction, bool]], window: int) -> list[AccuracyPoint]:
    points: list[AccuracyPoint] = []
    recent: deque[bool] = deque()
    hits = 0
    for interaction, correct in pairs:
        recent.append(correct)
        hits += correct
        if len(recent) > window:
            hits -= recent.popleft()
        if len(recent) < max(1, window // 2):
            continue  # a rate over a handful of labels is noise, not a trend
        points.append(AccuracyPoint(interaction.ts, hits / len(recent), interaction.domain,
                                    interaction.model_version))
    return points


def _spans(pairs: list[tuple[Interaction, bool]]) -> list[tuple[str, float, float]]:
    """Consecutive stretches of one domain: (domain, first ts, last ts)."""
    spans: list[tuple[str, float, float]] = []
    for interaction, _ in pairs:
        if spans and spans[-1][0] == interaction.domain:
            spans[-1] = (interaction.domain, spans[-1][1], interaction.ts)
        else:
            spans.append((interaction.domain, interaction.ts, interaction.ts))
    return spans


def build_report_data(
    interactions: Iterable[Interaction],
    feedback: Iterable[Feedback],
    alerts: Iterable[DriftAlert] = (),
    requests: Iterable[TrainingRequest] = (),
    versions: Iterable[ModelVersion] = (),
    dead_letters: Iterable[DeadLetter] = (),
    *,
    window: int | None = None,
) -> ReportData:
    """Join and fold already decoded events into what the report shows.

    ``window`` is the number of labels the rolling accuracy averages over (default: about
    a thirtieth of the labels, at least 20).

    >>> from driftloop.schemas import Interaction, Feedback
    >>> seen = [Interaction(id=f"i{n}", ts=n, task="t", model_version="v0", input="x",
    ...                     prediction="pos") for n in range(4)]
    >>> said = [Feedback(id=f"f{n}", interaction_id=f"i{n}", ts=n + 0.5, task="t",
    ...                  kind="label", value="pos" if n % 2 else "neg") for n in range(4)]
    >>> data = build_report_data(seen, said, window=2)
    >>> [p.accuracy for p in data.accuracy["t"]]
    [0.0, 0.5, 0.5, 0.5]
    """
    by_id: dict[str, Interaction] = {}
    data = ReportData()
    for interaction in interactions:
        by_id[interaction.id] = interaction
        data.interactions += 1
    joined: dict[str, list[tuple[Interaction, bool]]] = defaultdict(list)
    seen_feedback: set[str] = set()
    for item in feedback:
        data.feedback += 1
        interaction = by_id.get(item.interaction_id)
        if interaction is None or item.id in seen_feedback:  # unjoined, or a duplicate
            continue
        seen_feedback.add(item.id)
        if item.kind is FeedbackKind.LABEL:
            joined[interaction.task].append((interaction, item.value == interaction.prediction))
        elif item.kind is FeedbackKind.CORRECTION:
            joined[interaction.task].append((interaction, False))
    data.labelled = sum(len(pairs) for pairs in joined.values())
    data.window = window or max(20, data.labelled // max(1, len(joined)) // 30)
    for task, pairs in joined.items():
        pairs.sort(key=lambda pair: pair[0].ts)
        data.accuracy[task] = _rolling_accuracy(pairs, data.window)
        data.domain_spans[task] = _spans(pairs)
    data.alerts = sorted(alerts, key=lambda e: e.ts)
    data.requests = sorted(requests, key=lambda e: e.ts)
    data.versions = sorted(versions, key=lambda e: e.ts)
    data.dead_letters = Counter((d.source_topic, d.reason) for d in dead_letters)
    return data


async def collect_report_data(settings: Settings, *, window: int | None = None) -> ReportData:
    """Read the driftloop topics of ``settings`` (a snapshot) and build the report data."""
    unreadable: Counter[str] = Counter()

    def note(record: RawRecord, _exc: Exception) -> None:
        unreadable[record.topic] += 1

    async def events(topic: Topic, cls: type, batches: bool = False) -> list:
        name = settings.kafka.topic(topic)
        records = await read_snapshot(settings, name)
        # Worker commands share the feedback topic (marked by a header); they are not events.
        records = [r for r in records if not any(k == COMMAND_HEADER for k, _ in r.headers)]
        if batches:
            def split(raw: bytes) -> list:
                decoded = decode_batch(raw, cls)
                good = [e for e in decoded if not isinstance(e, ValidationError)]
                if len(good) < len(decoded):  # bad events inside a batch envelope
                    unreadable[name] += len(decoded) - len(good)
                return good
            return decode_all(records, split, note)
        return decode_all(records, lambda raw: [decode(raw, cls)], note)

    data = build_report_data(
        await events(Topic.INTERACTIONS, Interaction, batches=True),
        await events(Topic.FEEDBACK, Feedback, batches=True),
        await events(Topic.DRIFT_ALERTS, DriftAlert),
        await events(Topic.TRAINING_REQUESTS, TrainingRequest),
        await events(Topic.MODEL_VERSIONS, ModelVersion),
        await events(Topic.DEAD_LETTERS, DeadLetter),
        window=window,
    )
    data.unreadable = unreadable
    return data
