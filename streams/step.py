"""One step of the worker: apply one source record to its task, send the effects, write state.

A record on ``interactions`` or ``feedback`` holds one event or a batch envelope (or, on
``feedback``, a command, marked by its header). A step decodes it (what cannot be read
becomes a dead letter; an event or command read off its task's partition is dead-lettered as
``wrong_partition``, see :mod:`~driftloop.streams.partitioning`), groups the events by task,
and for each task: join, drift, active learning, buffer, triggers, the canary comparison.

Effects are sent first, and the step waits until the broker has them; the tables are written
last, with no await in between (:meth:`Step._write` is the one place that writes a task's
values). The task state is the first of those writes and carries the rest of the step
(:mod:`~driftloop.streams.redo`), so whatever moment a stop or a kill -9 cuts, a record is
either applied whole (a step cut after its state record is finished on the next read of the
task) or applied again (its effects carry the same ids, and the state skips the offsets it
already applied).

Each source partition is applied in offset order, every record once: when Faust hands over a
record beyond the next one expected (it can skip records around a recovery), the skipped
records are read back from the broker and applied first
(:mod:`~driftloop.streams.source_order`).
"""

from __future__ import annotations

import inspect
import logging
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from ..schemas.codec import encode
from ..schemas.commands import COMMAND_HEADER, decode_command
from ..schemas.enums import DeadLetterReason
from ..schemas.errors import CommandError
from ..schemas.events import DeadLetter, Event, Feedback, Interaction, ModelVersion
from ..schemas.settings import Settings
from ..schemas.signing import deployment_key, sign_version
from ..schemas.topics import Topic
from .buffer import ReplayBuffer
from .canary import CANARY_COMMAND_KINDS, CanaryComparison
from .ingest import dead_letter, decode_message
from .join import JoinWindow
from .liveness import Liveness
from .ownership import Ownership
from .partitioning import WRONG_PARTITION
from .pipeline import Effects, TaskState
from .redo import StepRedo
from .source_order import MissedRecordsError, SourceOrder
from .tables import WorkerTables
from .watchdog import exit_for_restart

__all__ = ["Step"]

log = logging.getLogger(__name__)


@dataclass
class Step:
    """Applies the worker's source records, one per :meth:`handle`.

    ``topics`` are the worker's Faust topics (effects are sent there); ``consumer_id`` names
    the worker in the dead letters it writes.

    Examples
    --------
    Stand-ins for the Faust topics and tables, and one record of ``sentiment`` (whose key
    goes to partition 5 of 6):

    >>> import asyncio
    >>> from types import SimpleNamespace
    >>> from driftloop.schemas import Interaction, encode
    >>> class FakeTopic:
    ...     def __init__(self, name): self.name, self.sent = name, []
    ...     def get_topic_name(self): return self.name
    ...     async def send(self, *, key, value, headers=None): self.sent.append(value)
    >>> settings = Settings()
    >>> topics = {topic: FakeTopic(settings.kafka.topic(topic)) for topic in Topic}
    >>> tables = WorkerTables(settings, states={}, buffers={}, buckets={}, dead_counts={},
    ...                       canaries={})
    >>> order = SourceOrder(settings, group_id="driftloop-worker")
    >>> step = Step(settings, topics, tables, Ownership(None, settings), order, Liveness(),
    ...             consumer_id="worker-1")
    >>> order.start("interactions", 5, 0)  # where the partition starts (its committed offset)
    >>> event = Interaction(id="i1", ts=0, task="sentiment", model_version="v1", input="ok")
    >>> record = SimpleNamespace(topic="interactions", partition=5, offset=0, headers=None,
    ...                          key=b"sentiment", value=encode(event))
    >>> asyncio.run(step.handle(record))
    >>> tables.states["sentiment"].counters["interactions"], order.expected("interactions", 5)
    (1, 1)
    >>> asyncio.run(step.handle(record))  # redelivered: skipped by the state
    >>> tables.states["sentiment"].counters["redelivered_skipped"]
    1
    """

    settings: Settings
    topics: dict[Topic, Any]
    tables: WorkerTables
    ownership: Ownership
    order: SourceOrder
    liveness: Liveness
    consumer_id: str

    def __post_init__(self) -> None:
        # Looked up once per event on the hot path: a plain dict, not Settings.task().
        self._embedding_dims = {name: task.embedding_dim
                                for name, task in self.settings.tasks.items()}

    async def handle(self, message: Any) -> None:
        """Apply one source record, after any earlier record of its partition Faust skipped."""
        topic, partition, offset = message.topic, message.partition, message.offset
        if self.order.check(topic, partition, offset):  # the hot path: one dict read
            try:
                missed = await self.order.skipped_before(topic, partition, offset,
                                                         self.ownership.assigned_pairs)
            except MissedRecordsError as exc:  # applying this record would lose them
                exit_for_restart("%s", exc)
            for record in missed:
                await self._one(record)
        await self._one(message)

    async def _one(self, message: Any) -> None:
        now = time.time()
        topic, partition, offset = message.topic, message.partition, message.offset
        headers = dict(message.headers or ())
        if topic == self.topics[Topic.FEEDBACK].get_topic_name() and COMMAND_HEADER in headers:
            await self._command(message, now)
        else:
            await self._events(message, now)
        self.liveness.handled(now)
        self.order.handled(topic, partition, offset)

    async def _events(self, message: Any, now: float) -> None:
        topic, partition, offset = message.topic, message.partition, message.offset
        cls: type[Event] = Interaction \
            if topic == self.settings.kafka.topic(Topic.INTERACTIONS) else Feedback
        decoded = decode_message(
            message.value, cls, topic=topic, partition=partition, offset=offset,
            key=message.key, embedding_dims=self._embedding_dims.get,
            consumer=self.consumer_id, max_event_bytes=self.settings.worker.max_event_bytes,
            owners=self.ownership.task_partitions(topic))
        await self._dead_letters(decoded.dead_letters, topic, partition)
        by_task: dict[str, list[Any]] = defaultdict(list)
        for event in decoded.events:
            by_task[event.task].append(event)  # type: ignore[attr-defined]
        for task, events in by_task.items():
            await self._apply(task, cls, events, topic, partition, offset, now)

    async def _apply(self, task: str, cls: type[Event], events: list[Any], topic: str,
                     partition: int, offset: int, now: float) -> None:
        state = self.tables.state(task)
        if state.seen(topic, partition, offset):
            return
        join, buffer = self.tables.join(task), self.tables.buffer(task)
        bucket = f"{topic}:{partition}:{offset}"
        if cls is Interaction:
            effects = state.on_interactions(events, join=join, buffer=buffer, bucket=bucket,
                                            now=now)
        else:
            effects = state.on_feedback(events, join=join, buffer=buffer, bucket=bucket, now=now)
        canary = self.tables.canary(task) \
            if effects.outcomes and self.settings.worker.ab_test.enabled else None
        decisions = canary.on_outcomes(effects.outcomes, now=now) if canary is not None else []
        await self._publish(task, effects, decisions)
        self._write(task, state, join, buffer, effects, canary)

    async def _command(self, message: Any, now: float) -> None:
        try:
            command = decode_command(message.value)
        except CommandError as exc:
            await self._reject_command(message, exc.code, str(exc))
            return
        owners = self.ownership.task_partitions(message.topic)
        if owners[command.task] != message.partition:  # the task's state lives elsewhere
            await self._reject_command(message, WRONG_PARTITION, owners.misplaced(
                command.task, message.topic, message.partition))
            return
        state = self.tables.state(command.task)
        if state.seen(message.topic, message.partition, message.offset):
            return
        buffer = self.tables.buffer(command.task)
        state.on_command(command, now=now, buffer=buffer)
        # The canary comparison keeps its own idempotence (by version): not tied to the
        # state's bounded memory of command ids.
        canary = self.tables.canary(command.task) if (
            command.kind in CANARY_COMMAND_KINDS and self.settings.worker.ab_test.enabled) \
            else None
        decisions = canary.on_command(command, now=now) if canary is not None else []
        effects = Effects(training_requests=state.check_triggers(buffer, now=now))
        effects.buffer_changed = bool(effects.training_requests)
        await self._publish(command.task, effects, decisions)
        self._write(command.task, state, self.tables.join(command.task), buffer, effects,
                    canary)

    async def _reject_command(self, message: Any, reason: DeadLetterReason,
                              error: str) -> None:
        await self._dead_letters([dead_letter(
            message.value, topic=message.topic, partition=message.partition,
            offset=message.offset, reason=reason, error=error, key=message.key,
            consumer=self.consumer_id)], message.topic, message.partition)

    async def _dead_letters(self, letters: list[DeadLetter], topic: str,
                            partition: int) -> None:
        if not letters:
            return
        sink = self.topics[Topic.DEAD_LETTERS]
        for letter in letters:
            await sink.send(key=topic.encode(), value=encode(letter))
            log.warning("dead letter from %s[%d]@%d: %s (%s)", topic, partition, letter.offset,
                        letter.reason, letter.error[:200])
        counts: dict[str, int] = defaultdict(int)
        for letter in letters:
            counts[f"{topic}:{partition}|{letter.reason}"] += 1
        dead_counts = self.tables.dead_counts
        for key, count in counts.items():
            dead_counts[key] = dead_counts.get(key, 0) + count

    async def _publish(self, task: str, effects: Effects,
                       versions: list[ModelVersion] | None = None) -> None:
        """Send the step's effects and wait until the broker has them all: the state record
        written next says the step happened, and Kafka keeps no order across topics."""
        key = task.encode()
        signing_key = deployment_key(self.settings)
        sent: list[Any] = []
        for version in versions or ():  # canary decisions (streams/canary.py), signed
            if signing_key is not None:  # like the learner's, so replicas believe them
                version = sign_version(version, signing_key)
            sent.append(await self.topics[Topic.MODEL_VERSIONS].send(key=key,
                                                                     value=encode(version)))
        for topic, events in ((Topic.DRIFT_ALERTS, effects.drift_alerts),
                              (Topic.LABEL_REQUESTS, effects.label_requests),
                              (Topic.TRAINING_REQUESTS, effects.training_requests)):
            for event in events:
                sent.append(await self.topics[topic].send(key=key, value=encode(event)))
        for delivery in sent:
            if inspect.isawaitable(delivery):  # Faust hands back the producer's future
                await delivery

    def _write(self, task: str, state: TaskState, join: JoinWindow, buffer: ReplayBuffer,
               effects: Effects, canary: CanaryComparison | None = None) -> None:
        """Write a task's values back to the tables, the last thing a step does.

        No await from here on. Every table write of a step is here (the dead-letter counts
        aside, written with their letters): the task state first, holding the step's redo,
        then the values the redo describes (:mod:`~driftloop.streams.redo`)."""
        tables = self.tables
        canary_changed = canary is not None and (canary.take_changed()
                                                 or task not in tables.canaries)
        changed, deleted = join.take_changes()
        buffer_ops = buffer.take_journal()
        seq = state.step_seq + 1
        state.step_seq = seq
        state.redo = StepRedo(seq, buffer_ops, changed, tuple(deleted),
                              canary if canary_changed else None)
        tables.states[task] = state  # the record that decides whether the step happened
        if buffer_ops or task not in tables.buffers:
            buffer.step_seq = seq
            tables.buffers[task] = buffer
        for bucket_key, bucket in changed.items():
            tables.buckets[f"{task}|{bucket_key}"] = bucket
        for bucket_key in deleted:
            full = f"{task}|{bucket_key}"
            if full in tables.buckets:
                del tables.buckets[full]
        if canary_changed:
            tables.canaries[task] = canary  # type: ignore[assignment]
