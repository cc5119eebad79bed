"""What the loop did during the demo, read from its topics, and the live progress line.

The demo process follows ``drift-alerts``, ``training-requests``, ``model-versions``,
``serving-acks`` and ``label-requests`` of its own run (a fresh topic prefix, so from the
beginning) with one aiokafka consumer, the same way an operator's dashboard would.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

from aiokafka import AIOKafkaConsumer, TopicPartition

from ...client.kafka import new_consumer
from ...schemas import (
    DriftAlert,
    LabelRequest,
    ModelVersion,
    ServingAck,
    ServingStatus,
    Topic,
    TrainingRequest,
    VersionStatus,
    decode,
)
from ...schemas.errors import ValidationError
from ...schemas.settings import Settings

__all__ = ["LoopObserver", "ProgressLine", "ProgressState"]

log = logging.getLogger(__name__)

_EVENT_OF: dict[Topic, type[Any]] = {
    Topic.DRIFT_ALERTS: DriftAlert,
    Topic.TRAINING_REQUESTS: TrainingRequest,
    Topic.MODEL_VERSIONS: ModelVersion,
    Topic.SERVING_ACKS: ServingAck,
    Topic.LABEL_REQUESTS: LabelRequest,
}


@dataclass(slots=True)
class ProgressState:
    """The loop's events seen so far (in arrival order)."""

    alerts: list[DriftAlert] = field(default_factory=list)
    requests: list[TrainingRequest] = field(default_factory=list)
    versions: list[ModelVersion] = field(default_factory=list)
    acks: list[ServingAck] = field(default_factory=list)
    label_requests: int = 0

    def with_status(self, status: VersionStatus) -> list[ModelVersion]:
        return [v for v in self.versions if v.status == status]

    def served(self, version_id: str) -> bool:
        return any(a.version_id == version_id and a.status is ServingStatus.SERVING
                   for a in self.acks)

    @property
    def serving_version(self) -> str | None:
        serving = [a for a in self.acks if a.status is ServingStatus.SERVING]
        return serving[-1].version_id if serving else None


class LoopObserver:
    """Follow the loop's output topics of one run; ``on_label_request`` answers label requests.

    Examples
    --------
    >>> observer = LoopObserver(Settings(kafka={"topic_prefix": "demo-x."}))
    >>> observer.state.serving_version is None
    True
    """

    def __init__(self, settings: Settings, *,
                 on_label_request: Callable[[LabelRequest], Awaitable[None]] | None = None
                 ) -> None:
        self.settings = settings
        self.on_label_request = on_label_request
        self.state = ProgressState()
        self.undecodable = 0
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._topics = {settings.kafka.topic(t): t for t in _EVENT_OF}

    async def start(self) -> None:
        consumer = new_consumer(self.settings, auto_offset_reset="earliest",
                                fetch_max_wait_ms=200)
        await consumer.start()
        self._consumer = consumer
        partitions = []
        for name in self._topics:
            for number in consumer.partitions_for_topic(name) or await _partitions(consumer,
                                                                                     name):
                partitions.append(TopicPartition(name, number))
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        self._task = asyncio.create_task(self._follow())

    async def _follow(self) -> None:
        assert self._consumer is not None
        while True:
            batches = await self._consumer.getmany(timeout_ms=200)
            for tp, records in batches.items():
                for record in records:
                    await self._apply(self._topics[tp.topic], record.value)

    async def _apply(self, topic: Topic, raw: bytes) -> None:
        try:
            event = decode(raw, _EVENT_OF[topic])
        except ValidationError:
            self.undecodable += 1
            return
        state = self.state
        if isinstance(event, DriftAlert):
            state.alerts.append(event)
        elif isinstance(event, TrainingRequest):
            state.requests.append(event)
        elif isinstance(event, ModelVersion):
            state.versions.append(event)
        elif isinstance(event, ServingAck):
            state.acks.append(event)
        elif isinstance(event, LabelRequest):
            state.label_requests += 1
            if self.on_label_request is not None:
                await self.on_label_request(event)

    async def stop(self) -> None:
        """Stop following (idempotent)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await consumer.stop()


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    await consumer._client.force_metadata_update()  # the topics were created a moment ago
    return consumer.partitions_for_topic(topic) or {0}


class ProgressLine:
    """One refreshing status line on a terminal; plain lines every few seconds otherwise.

    >>> import io
    >>> out = io.StringIO()
    >>> ProgressLine(out, interval=0.0).show("domain tweets")
    >>> out.getvalue()
    'domain tweets\\n'
    """

    def __init__(self, out: TextIO | None = None, *, interval: float = 5.0) -> None:
        self.out = out or sys.stdout
        self.tty = bool(getattr(self.out, "isatty", lambda: False)())
        self.interval = interval
        self._last_plain = float("-inf")
        self._last_text = ""

    def show(self, text: str, *, now: float | None = None) -> None:
        import time

        if self.tty:
            self.out.write("\r\x1b[2K" + text[:200])
            self.out.flush()
            return
        now = time.monotonic() if now is None else now
        if text != self._last_text and now - self._last_plain >= self.interval:
            self.out.write(text + "\n")
            self.out.flush()
            self._last_plain, self._last_text = now, text

    def note(self, text: str) -> None:
        """A line that stays (a decision, a warning); the status line is redrawn after it."""
        if self.tty:
            self.out.write("\r\x1b[2K" + text + "\n")
        else:
            self.out.write(text + "\n")
            self._last_text = ""  # show the status again after the note
        self.out.flush()

    def done(self) -> None:
        if self.tty:
            self.out.write("\n")
            self.out.flush()
