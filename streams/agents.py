"""The worker's agents: interactions + feedback in, alerts, label and training requests out.

One agent reads ``interactions`` and ``feedback`` (co-partitioned by task, so a task's state
lives in one partition; an event or command read off its task's partition is dead-lettered as
``wrong_partition``, see :mod:`~driftloop.streams.partitioning`) and handles one Kafka
message (one event or a batch envelope) per step: decode, dead letters, join, drift, active
learning, buffer, triggers. Effects are sent first and the tables written last, with no await
in between: a stop (SIGTERM) can only cut a step before its state is written, and Faust
flushes the producer before it commits an offset, so a message is either applied whole or
processed again (its effects carry the same ids). A second agent turns ``model-versions``
entries into commands for the task's partition (see :mod:`driftloop.streams.commands`).

Each source partition is applied in offset order, every record once: when Faust hands over a
record beyond the next one expected (it can skip records around a recovery), the skipped
records are read back from the broker and applied first (:mod:`~driftloop.streams.source_order`).

Tables (each with a changelog):

* ``task-state``: task -> :class:`~driftloop.streams.pipeline.TaskState`;
* ``replay-buffers``: task -> :class:`~driftloop.streams.buffer.ReplayBuffer`;
* ``join-buckets``: ``task|topic:partition:offset`` -> :class:`~driftloop.streams.join.Bucket`;
* ``ab-tests``: task -> :class:`~driftloop.streams.canary.CanaryComparison` (written when it
  changes; a decision is published on ``model-versions`` like the step's other effects);
* ``dead-letter-counts``: ``topic:partition|reason`` -> count.
"""

from __future__ import annotations

import logging
import os
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NoReturn

import faust

from ..schemas.codec import decode, encode
from ..schemas.errors import ValidationError
from ..schemas.events import Event, Feedback, Interaction, ModelVersion
from ..schemas.settings import Settings
from ..schemas.topics import TOPIC_SPECS, Topic
from .app import STATE_CODEC
from .buffer import ReplayBuffer
from .canary import CANARY_COMMAND_KINDS, CanaryComparison
from .commands import (
    COMMAND_HEADER,
    clock_tick,
    commands_from_version,
    decode_command,
    encode_command,
)
from .errors import TriggerError
from .ingest import dead_letter, decode_message
from .join import JoinWindow
from .metrics import CONTENT_TYPE, canary_families, render, worker_families
from .partitioning import WRONG_PARTITION, TaskPartitions
from .pipeline import Effects, TaskState, new_buffer, new_join_window
from .source_order import SourceOrder

__all__ = ["STALL_EXIT_CODE", "WorkerRuntime", "wire"]

log = logging.getLogger(__name__)

# Exit status of a worker whose liveness watchdog found it stuck (see check_stall).
STALL_EXIT_CODE = 75

# Faust's changelog topics must take the largest table value (a replay buffer).
_CHANGELOG_CONFIGS = {"max.message.bytes": str(20 * 1024 * 1024), "cleanup.policy": "compact"}


@dataclass
class WorkerRuntime:
    """The wired app: topics, tables, in-memory caches rebuilt from tables, liveness."""

    app: faust.App
    settings: Settings
    topics: dict[Topic, faust.TopicT] = field(default_factory=dict)
    states: Any = None
    buffers: Any = None
    buckets: Any = None
    dead_counts: Any = None
    ab_tests: Any = None
    joins: dict[str, JoinWindow] = field(default_factory=dict)
    messages: int = 0
    last_message_at: float = 0.0
    handled: dict[tuple[str, int], int] = field(default_factory=dict)
    watchdog_checks: int = 0
    watchdog_kicks: int = 0
    order: SourceOrder | None = None  # set by wire(): records Faust skipped are read back
    _starts_retry_at: float = 0.0
    _kicked_at: float | None = None
    # model-versions records that were no ModelVersion: logged and skipped, never dead-lettered
    # (the learner owns that log; every worker reading it would write its own copy).
    unreadable_versions: int = 0
    started_at: float = field(default_factory=time.time)
    _embedding_dims: dict[str, int | None] = field(default_factory=dict)
    _per_domain: dict[str, bool] = field(default_factory=dict)
    _owners: dict[int, TaskPartitions] = field(default_factory=dict)  # by partition count

    def __post_init__(self) -> None:
        # Looked up once per event on the hot path: a plain dict, not Settings.task().
        self._embedding_dims = {name: task.embedding_dim
                                for name, task in self.settings.tasks.items()}
        self._per_domain = {name: task.adapter_per_domain
                            for name, task in self.settings.tasks.items()}

    def tables(self) -> list[Any]:
        return [self.states, self.buffers, self.buckets, self.dead_counts, self.ab_tests]

    # -- state access ---------------------------------------------------------------------
    def state(self, task: str) -> TaskState:
        state = self.states.get(task)
        if state is None:
            state = TaskState(task, self.settings.worker, self.settings.task(task))
        # The learner's settings decide whether it takes one request per domain; a state
        # persisted before the setting changed (or before it existed) follows them too.
        state.training.adapter_per_domain = self._per_domain.get(task, False)
        return state

    def buffer(self, task: str) -> ReplayBuffer:
        buffer = self.buffers.get(task)
        return buffer if buffer is not None else new_buffer(self.settings.worker)

    def ab_test(self, task: str) -> CanaryComparison:
        ab = self.ab_tests.get(task)
        if ab is None:
            ab = CanaryComparison.from_settings(task, self.settings.worker.ab_test)
        return ab

    def join(self, task: str) -> JoinWindow:
        join = self.joins.get(task)
        if join is None:
            # First use since start or a rebalance: rebuild from the persisted buckets.
            join = new_join_window(self.settings.worker)
            prefix = f"{task}|"
            join.restore((key[len(prefix):], bucket) for key, bucket in self.buckets.items()
                         if key.startswith(prefix))
            self.joins[task] = join
        return join

    # -- one Kafka message ------------------------------------------------------------------
    async def handle(self, message: Any) -> None:
        """Apply one source record, after any earlier record of its partition Faust skipped."""
        order = self.order
        if order is not None and order.check(message.topic, message.partition,
                                             message.offset):
            await self._catch_up(order, message.topic, message.partition, message.offset)
        await self._handle_one(message)

    async def _catch_up(self, order: SourceOrder, topic: str, partition: int,
                        offset: int) -> None:
        """Learn where the partition starts, then apply the records skipped before ``offset``."""
        if order.expected(topic, partition) is None:
            await self._learn_starts(order, topic, partition)
        gap = order.gap(topic, partition, offset)
        if gap is None:
            return
        first, end = gap
        try:
            missed = await order.missed(topic, partition, first, end)
        except Exception as exc:  # applying the record in hand would lose the skipped ones
            _exit_for_restart("offsets %d..%d of %s[%d] were skipped and could not be read "
                              "back (%s)", first, end - 1, topic, partition, exc)
        log.warning("%s[%d]: offset %d arrived before offsets %d..%d; applying the %d records "
                    "read back from the broker first", topic, partition, offset, first,
                    end - 1, len(missed))
        for record in missed:
            await self._handle_one(record)

    async def _learn_starts(self, order: SourceOrder, topic: str, partition: int) -> None:
        """Ask the broker where every source partition of the assignment starts (one request
        for all of them); on failure go on without a start, and ask again later."""
        now = time.monotonic()
        if now < self._starts_retry_at:
            return
        try:
            assigned = [(tp.topic, tp.partition) for tp in self._assigned_sources()]
        except Exception:  # between generations: this partition at least
            assigned = []
        try:
            await order.learn_starts(sorted({*assigned, (topic, partition)}))
        except Exception as exc:
            self._starts_retry_at = now + 10.0
            log.warning("could not read where the source partitions start (%s): records "
                        "skipped before the first one read are not detected", exc)

    async def _handle_one(self, message: Any) -> None:
        now = time.time()
        topic, partition, offset = message.topic, message.partition, message.offset
        headers = dict(message.headers or ())
        if topic == self.topics[Topic.FEEDBACK].get_topic_name() and COMMAND_HEADER in headers:
            await self._command(message, now)
        else:
            cls: type[Event] = Interaction if topic == self._name(Topic.INTERACTIONS) \
                else Feedback
            decoded = decode_message(
                message.value, cls, topic=topic, partition=partition, offset=offset,
                key=message.key,
                embedding_dims=self._embedding_dims.get,
                consumer=self.app.conf.id,
                max_event_bytes=self.settings.worker.max_event_bytes,
                owners=self._task_partitions(topic))
            await self._dead_letters(decoded.dead_letters, topic, partition)
            by_task: dict[str, list[Any]] = defaultdict(list)
            for event in decoded.events:
                by_task[event.task].append(event)  # type: ignore[attr-defined]
            for task, events in by_task.items():
                await self._apply(task, cls, events, topic, partition, offset, now)
        self.messages += 1
        self.last_message_at = now
        if offset > self.handled.get((topic, partition), -1):
            self.handled[(topic, partition)] = offset
        if self.order is not None:
            self.order.handled(topic, partition, offset)

    def _name(self, topic: Topic) -> str:
        return self.settings.kafka.topic(topic)

    def _assigned_sources(self) -> list[Any]:
        """The ``interactions`` and ``feedback`` partitions the consumer holds now."""
        sources = {self._name(Topic.INTERACTIONS), self._name(Topic.FEEDBACK)}
        return [tp for tp in self.app.consumer.assignment() if tp.topic in sources]

    def _task_partitions(self, topic: str) -> TaskPartitions:
        """Each task's partition, by the count producers' partitioners see for ``topic``."""
        try:  # the consumer's metadata: a dict read, cheap enough for every message
            count = self.app.consumer.topic_partitions(topic)
        except Exception:  # not started yet or between generations
            count = None
        count = count or TOPIC_SPECS[Topic.INTERACTIONS].partitions
        owners = self._owners.get(count)
        if owners is None:
            owners = self._owners[count] = TaskPartitions(count)
        return owners

    async def _apply(self, task: str, cls: type[Event], events: list[Any], topic: str,
                     partition: int, offset: int, now: float) -> None:
        state = self.state(task)
        if state.seen(topic, partition, offset):
            return
        join, buffer = self.join(task), self.buffer(task)
        bucket = f"{topic}:{partition}:{offset}"
        if cls is Interaction:
            effects = state.on_interactions(events, join=join, buffer=buffer, bucket=bucket,
                                            now=now)
        else:
            effects = state.on_feedback(events, join=join, buffer=buffer, bucket=bucket, now=now)
        ab = self.ab_test(task) if effects.outcomes and self.settings.worker.ab_test.enabled \
            else None
        decisions = ab.on_outcomes(effects.outcomes, now=now) if ab is not None else []
        await self._publish(task, effects, decisions)
        self._write(task, state, join, buffer, effects, ab)

    async def _command(self, message: Any, now: float) -> None:
        try:
            command = decode_command(message.value)
        except TriggerError as exc:
            await self._reject_command(message, "invalid_command", str(exc))
            return
        owners = self._task_partitions(message.topic)
        if owners[command.task] != message.partition:  # the task's state lives elsewhere
            await self._reject_command(message, WRONG_PARTITION, owners.misplaced(
                command.task, message.topic, message.partition))
            return
        state = self.state(command.task)
        if state.seen(message.topic, message.partition, message.offset):
            return
        state.on_command(command, now=now)
        # The A/B test keeps its own idempotence (by version): not tied to the state's
        # bounded memory of command ids.
        ab = self.ab_test(command.task) if (command.kind in CANARY_COMMAND_KINDS and
                                            self.settings.worker.ab_test.enabled) else None
        decisions = ab.on_command(command, now=now) if ab is not None else []
        buffer = self.buffer(command.task)
        effects = Effects(training_requests=state.check_triggers(buffer, now=now))
        effects.buffer_changed = bool(effects.training_requests)
        await self._publish(command.task, effects, decisions)
        self._write(command.task, state, self.join(command.task), buffer, effects, ab)

    async def _reject_command(self, message: Any, reason: str, error: str) -> None:
        await self._dead_letters([dead_letter(
            message.value, topic=message.topic, partition=message.partition,
            offset=message.offset, reason=reason, error=error, key=message.key,
            consumer=self.app.conf.id)], message.topic, message.partition)

    async def _dead_letters(self, letters: list[Any], topic: str, partition: int) -> None:
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
        for key, count in counts.items():
            self.dead_counts[key] = self.dead_counts.get(key, 0) + count

    async def _publish(self, task: str, effects: Effects,
                       versions: list[ModelVersion] | None = None) -> None:
        key = task.encode()
        for version in versions or ():  # A/B decisions (streams/canary.py)
            await self.topics[Topic.MODEL_VERSIONS].send(key=key, value=encode(version))
        for alert in effects.drift_alerts:
            await self.topics[Topic.DRIFT_ALERTS].send(key=key, value=encode(alert))
        for request in effects.label_requests:
            await self.topics[Topic.LABEL_REQUESTS].send(key=key, value=encode(request))
        for request in effects.training_requests:
            await self.topics[Topic.TRAINING_REQUESTS].send(key=key, value=encode(request))

    def _write(self, task: str, state: TaskState, join: JoinWindow, buffer: ReplayBuffer,
               effects: Effects, ab: CanaryComparison | None = None) -> None:
        # No await from here on: the step's state is written as one piece.
        if ab is not None and (ab.take_changed() or task not in self.ab_tests):
            self.ab_tests[task] = ab
        changed, deleted = join.take_changes()
        for bucket_key, bucket in changed.items():
            self.buckets[f"{task}|{bucket_key}"] = bucket
        for bucket_key in deleted:
            full = f"{task}|{bucket_key}"
            if full in self.buckets:
                del self.buckets[full]
        if effects.buffer_changed or effects.training_requests or task not in self.buffers:
            self.buffers[task] = buffer
        self.states[task] = state

    async def send_ticks(self) -> int:
        """A :func:`clock_tick` to each task this worker holds state of; returns how many.

        The tick goes through the task's partition, so the owner checks the triggers in
        order with its events. Only tasks whose partition this worker owns: the tables also
        hold standby copies and the state of partitions lost in a rebalance.
        """
        owned = self._owned(self._owned_partitions())
        tasks = [task for task, state in self.states.items()
                 if state is not None and owned(task)]
        for task in tasks:
            key, body, headers = encode_command(clock_tick(task))
            await self.topics[Topic.FEEDBACK].send(key=key, value=body, headers=headers)
        return len(tasks)

    # -- model-versions -> commands -------------------------------------------------------
    async def forward_versions(self, value: bytes) -> None:
        try:
            version = decode(value, ModelVersion)
        except ValidationError as exc:
            self.unreadable_versions += 1
            log.error("unreadable model-versions entry skipped (%s): %s", exc.code, exc)
            return
        min_score = self.settings.worker.triggers.challenge_min_score
        for command in commands_from_version(version, challenge_min_score=min_score,
                                             candidates=self.settings.worker.ab_test.enabled):
            key, body, headers = encode_command(command)
            await self.topics[Topic.FEEDBACK].send(key=key, value=body, headers=headers)

    # -- observability ---------------------------------------------------------------------
    def liveness(self) -> dict[str, float]:
        now = time.time()
        last = self.last_message_at or self.started_at
        try:
            consumer = self.app.consumer
            assigned = float(len(consumer.assignment()))
            # Paused partitions that stay paused are how a Faust consumer "slowly stops"
            # (faust-streaming #175, #640): worth a gauge and an alert.
            paused = float(len(getattr(consumer, "_paused_partitions", ()) or ()))
        except Exception:  # not started or between generations: nothing assigned
            assigned = paused = 0.0
        return {"messages_handled": float(self.messages),
                "assigned_partitions": assigned,
                "paused_partitions": paused,
                "watchdog_checks": float(self.watchdog_checks),
                "watchdog_kicks": float(self.watchdog_kicks),
                # records Faust skipped, read back from the broker and applied in order
                "skip_gaps": float(self.order.gaps_seen if self.order else 0),
                "records_read_back": float(self.order.records_recovered if self.order else 0),
                "unreadable_model_versions": float(self.unreadable_versions),
                "seconds_since_last_message": round(now - last, 3),
                "uptime_seconds": round(now - self.started_at, 3)}

    async def check_stall(self) -> bool:
        """End the process when it has lag but handled nothing for ``worker.stall_timeout_s``.

        faust-streaming can lose track of fetched records around a rebalance (#175, #640):
        the consumer's position is past records the agent never saw, and it waits forever.
        Such a consumer cannot be trusted to stop cleanly, so the watchdog exits at once
        (status :data:`STALL_EXIT_CODE`), like ``kill -9``: the state is safe (offsets were
        never committed past what the tables hold) and the restarted worker resumes from the
        committed offsets. Run the worker under a supervisor that restarts it.

        Before exiting it tries once to un-stick the consumer in place: resume the lagging
        partitions (a partition left paused after recovery is never fetched again), resume the
        flow, and seek each to the offset after the last one handled, which makes Faust read
        them again. Seen here: a worker restarted after kill -9 finished its recovery, then
        stood 10 s at offset 10 of 12 on one partition and the watchdog ended it.
        """
        self.watchdog_checks += 1
        # after a kick the clock restarts: the kick gets one full period to show progress
        idle = time.time() - max(self.last_message_at or self.started_at, self._kicked_at or 0.0)
        limit = self.settings.worker.stall_timeout_s
        if getattr(self.app, "in_recovery", False):
            limit *= 5  # reading a large changelog is slow, not stuck; a stuck one is caught
        if idle < limit:
            return False
        consumer = self.app.consumer
        assigned = self._assigned_sources()
        # Ask the broker, not the fetcher: a partition left paused is never fetched, so the
        # fetcher knows no highwater for it.
        highwaters = await consumer.highwaters(*assigned) if assigned else {}
        starts = await _start_offsets(
            consumer, [tp for tp in assigned if (tp.topic, tp.partition) not in self.handled])
        lagging = []
        for tp in assigned:
            highwater = highwaters.get(tp)
            done = self.handled.get((tp.topic, tp.partition))
            if done is None:
                start = starts.get(tp)
                done = -1 if start is None else start - 1
            if highwater is not None and highwater - 1 > done:
                lagging.append((tp.topic, tp.partition, done, highwater))
        if not lagging:
            log.info("idle %.0f s, no records waiting on %d source partitions", idle,
                     len(assigned))
            return False
        # Never while Faust recovers: its partitions are paused on purpose until the tables
        # are restored, and resuming them would apply events to half-restored state.
        recovering = getattr(self.app, "in_recovery", False)
        if not recovering and (self._kicked_at is None
                               or self._kicked_at < (self.last_message_at or 0.0)):
            await self._kick(consumer, assigned, lagging, idle)
            return False
        _exit_for_restart("no progress for %.0f s with records waiting on %s", idle, lagging)

    async def _kick(self, consumer: Any, assigned: list[Any],
                    lagging: list[tuple[str, int, int, int]], idle: float) -> None:
        """Resume and re-seek the lagging partitions once; the next stall period decides."""
        self.watchdog_kicks += 1
        self._kicked_at = time.time()
        log.warning("no progress for %.0f s with records waiting on %s: resuming and "
                    "re-seeking those partitions", idle, lagging)
        by_key = {(tp.topic, tp.partition): tp for tp in assigned}
        stuck = [by_key[(topic, partition)] for topic, partition, _, _ in lagging]
        try:
            consumer.resume_partitions(stuck)
            if not getattr(consumer, "flow_active", True):
                consumer.resume_flow()
            for (_, _, done, _), tp in zip(lagging, stuck, strict=True):
                await consumer.seek(tp, done + 1)
        except Exception as exc:  # the exit path below stays the safe answer
            log.warning("could not re-seek the stalled partitions: %s", exc)

    def _owned_partitions(self) -> set[int] | None:
        """The source partitions actively assigned to this worker (None: not known, before
        the consumer starts). The tables also hold standby copies of other workers' tasks and
        the last state of partitions this worker lost in a rebalance; reporting those would
        count a task twice across the group, once with stale figures."""
        source = self._name(Topic.INTERACTIONS)
        try:
            return {tp.partition for tp in self.app.consumer.assignment() if tp.topic == source}
        except Exception:  # not started yet
            return None

    def _owned(self, mine: set[int] | None) -> Callable[[str], bool]:
        """Whether a task's partition is among ``mine`` (every task when that is not known)."""
        if mine is None:
            return lambda task: True
        owners = self._task_partitions(self._name(Topic.INTERACTIONS))
        return lambda task: owners[task] in mine

    def metrics_text(self) -> str:
        mine = self._owned_partitions()
        owned = self._owned(mine)
        states = [state for task, state in self.states.items()
                  if state is not None and owned(task)]
        # keys are "topic:partition|reason"
        dead = {key: value for key, value in self.dead_counts.items()
                if mine is None or int(key.partition("|")[0].rpartition(":")[2]) in mine}
        tests = [ab for task, ab in self.ab_tests.items() if ab is not None and owned(task)]
        return render(worker_families(states, dead, self.liveness()) + canary_families(tests))


def _exit_for_restart(why: str, *args: Any) -> NoReturn:
    """End the process at once (status :data:`STALL_EXIT_CODE`) for a supervisor to restart:
    the state is safe, offsets were never committed past what the tables hold."""
    log.critical(why + ": exiting (status %d) so a supervisor restarts the worker",
                 *args, STALL_EXIT_CODE)
    logging.shutdown()
    os._exit(STALL_EXIT_CODE)


async def _start_offsets(consumer: Any, tps: list[Any]) -> dict[Any, int]:
    """Where partitions nothing was handled from start: their committed offsets, else the
    earliest the broker keeps (one request for all of those).

    Not the consumer's position: the fetcher moves that past records it fetched, and a
    restarted worker that stalls after recovery has fetched records its agent never saw
    (seen: ready, 30 of 43 partitions paused, position at the end, 0 messages in 150 s).
    """
    known = getattr(consumer, "_committed_offset", {})  # Faust's own record of its commits
    starts = {tp: int(known[tp]) for tp in tps if known.get(tp) is not None}
    rest = [tp for tp in tps if tp not in starts]
    if rest:
        starts.update(await consumer.earliest_offsets(*rest))
    return starts


def _table(app: faust.App, name: str, partitions: int) -> Any:
    table = app.Table(name, default=None, partitions=partitions,
                      extra_topic_configs=_CHANGELOG_CONFIGS)
    # Faust derives serializers from key/value types (json); the state needs pickle through
    # an allowlist, set before the changelog topic and the store are first built.
    table.value_serializer = STATE_CODEC
    table.key_serializer = "json"
    table.changelog_topic = table._new_changelog_topic()
    return table


def wire(app: faust.App, settings: Settings) -> WorkerRuntime:
    """Add the topics, tables, agents and web pages of the worker to ``app``."""
    runtime = WorkerRuntime(app=app, settings=settings,
                            order=SourceOrder(settings, group_id=app.conf.id))
    kafka = settings.kafka
    for topic in (Topic.INTERACTIONS, Topic.FEEDBACK, Topic.DRIFT_ALERTS, Topic.LABEL_REQUESTS,
                  Topic.TRAINING_REQUESTS, Topic.DEAD_LETTERS, Topic.MODEL_VERSIONS):
        runtime.topics[topic] = app.topic(kafka.topic(topic), key_serializer="raw",
                                          value_serializer="raw",
                                          partitions=TOPIC_SPECS[topic].partitions)
    partitions = TOPIC_SPECS[Topic.INTERACTIONS].partitions
    if TOPIC_SPECS[Topic.FEEDBACK].partitions != partitions:
        raise RuntimeError("interactions and feedback must have the same partition count")
    runtime.states = _table(app, "task-state", partitions)
    runtime.buffers = _table(app, "replay-buffers", partitions)
    runtime.buckets = _table(app, "join-buckets", partitions)
    runtime.dead_counts = _table(app, "dead-letter-counts", partitions)
    runtime.ab_tests = _table(app, "ab-tests", partitions)
    source = app.topic(kafka.topic(Topic.INTERACTIONS), kafka.topic(Topic.FEEDBACK),
                       key_serializer="raw", value_serializer="raw")

    @app.agent(source, name="driftloop.ingest")
    async def ingest(stream: faust.StreamT) -> None:
        async for event in stream.events():
            await runtime.handle(event.message)

    @app.agent(runtime.topics[Topic.MODEL_VERSIONS], name="driftloop.versions")
    async def versions(stream: faust.StreamT) -> None:
        async for value in stream:
            await runtime.forward_versions(value)

    @app.timer(interval=max(1.0, settings.worker.stall_timeout_s / 4))
    async def watch_liveness() -> None:
        await runtime.check_stall()

    every_s = settings.worker.triggers.every_s
    if every_s is not None:
        # A timed schedule must fire on an idle stream too: a tick per task, a few per period.
        @app.timer(interval=min(max(1.0, every_s / 4), 60.0))
        async def clock() -> None:
            await runtime.send_ticks()

    @app.page("/metrics")
    async def metrics(web: Any, request: Any) -> Any:
        return web.text(runtime.metrics_text(), content_type=CONTENT_TYPE)

    @app.page("/health")
    async def health(web: Any, request: Any) -> Any:
        return web.json({"status": "ok", **runtime.liveness()})

    @app.on_partitions_revoked.connect
    async def on_revoked(sender: Any, revoked: Any, **kwargs: Any) -> None:
        # Tables will be rebuilt for the new assignment; the caches follow them.
        runtime.joins.clear()
        # A partition assigned again starts from the group's committed offset, not from
        # where this worker once was.
        gone = [(tp.topic, tp.partition) for tp in revoked]
        if runtime.order is not None:
            runtime.order.forget(gone)
        for key in gone:
            runtime.handled.pop(key, None)

    return runtime
