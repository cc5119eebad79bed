"""Read the topics the report needs, within its bounds, and build the report data.

Each topic is read as a window (:func:`~driftloop.tools.kafka.topic_reader.read_window`):
from the broker's time index at ``since`` (less the publish slack), to ``until`` (plus the
slack) or the end, at most ``max_records`` records (the latest), records of other tasks
dropped by key before they are decoded. Events are then kept by their own time and task.
Every record that does not decode is counted by topic, so the report says what it could
not read.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from ....schemas import (
    DeadLetter,
    DriftAlert,
    Feedback,
    Interaction,
    LabelRequest,
    ModelVersion,
    ServingAck,
    Topic,
    TrainingRequest,
    decode,
    decode_batch,
)
from ....schemas.commands import COMMAND_HEADER
from ....schemas.errors import ValidationError
from ....schemas.settings import Settings
from ...kafka.topic_reader import RawRecord, decode_all, read_window
from .bounds import PUBLISH_SLACK_S, ReportBounds
from .data import ReadNote, ReportData, build_report_data

__all__ = ["collect_report_data"]

# Topics keyed by something other than the task: never filtered by key.
_NOT_TASK_KEYED = {Topic.DEAD_LETTERS, Topic.SERVING_ACKS}


async def collect_report_data(settings: Settings, *, window: int | None = None,
                              bounds: ReportBounds | None = None,
                              timeout: float = 120.0) -> ReportData:
    """Read the driftloop topics of ``settings`` within ``bounds`` and build the report."""
    bounds = bounds or ReportBounds()
    unreadable: Counter[str] = Counter()
    reads: list[ReadNote] = []

    def note(record: RawRecord, _exc: Exception) -> None:
        unreadable[record.topic] += 1

    async def records(topic: Topic) -> list[RawRecord]:
        name = settings.kafka.topic(topic)
        by_key: Callable[[RawRecord], bool] | None = None
        if topic not in _NOT_TASK_KEYED:
            def by_key(record: RawRecord) -> bool:
                return bounds.wants_key(record.key)
        read = await read_window(
            settings, name, max_records=bounds.max_records, keep=by_key, timeout=timeout,
            since_ms=None if bounds.since is None else max(
                0, int((bounds.since - PUBLISH_SLACK_S) * 1000)),
            until_ms=None if bounds.until is None else int((bounds.until + PUBLISH_SLACK_S)
                                                           * 1000))
        reads.append(ReadNote(name, read.in_window, read.skipped))
        # Worker commands share the feedback topic (marked by a header); they are not events.
        return [r for r in read.records if not any(k == COMMAND_HEADER for k, _ in r.headers)]

    async def events(topic: Topic, cls: type) -> list:  # type: ignore[type-arg]
        return decode_all(await records(topic), lambda raw: [decode(raw, cls)], note)

    async def batched(topic: Topic, cls: type) -> list:  # type: ignore[type-arg]
        name = settings.kafka.topic(topic)

        def split(raw: bytes) -> list:  # type: ignore[type-arg]
            decoded = decode_batch(raw, cls)
            good = [e for e in decoded if not isinstance(e, ValidationError)]
            if len(good) < len(decoded):  # bad events inside a batch envelope
                unreadable[name] += len(decoded) - len(good)
            return good
        return decode_all(await records(topic), split, note)

    data = build_report_data(
        await batched(Topic.INTERACTIONS, Interaction),
        await batched(Topic.FEEDBACK, Feedback),
        await events(Topic.DRIFT_ALERTS, DriftAlert),
        await events(Topic.TRAINING_REQUESTS, TrainingRequest),
        await events(Topic.MODEL_VERSIONS, ModelVersion),
        await events(Topic.DEAD_LETTERS, DeadLetter),
        label_requests=await events(Topic.LABEL_REQUESTS, LabelRequest),
        acks=await events(Topic.SERVING_ACKS, ServingAck),
        window=window, bounds=bounds)
    data.unreadable = unreadable
    data.reads = reads
    return data
