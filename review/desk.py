"""The Kafka side of the review page: label requests in, reviewers' answers out as feedback.

:class:`ReviewDesk` keeps a :class:`~.queue.ReviewQueue` fed and its answers published:

1. On start it reads the ``feedback`` topic from its beginning to its end, and learns every
   reviewer's answer on it (``source=reviewer``, ``metadata.label_request_id``): a restarted
   desk never offers a request answered before, and a request is one label however often
   it is answered. It keeps following the topic, so an answer given elsewhere (another
   desk, the Label Studio bridge) takes the request off this page too.
2. Then it consumes ``label-requests`` in a consumer group, so its position is kept in
   Kafka, and a group of desks shares the partitions. The offset of a partition is
   committed only up to its first request not yet *settled* (answered and published,
   superseded, or not this desk's task): a desk stopped or killed at any moment offers the
   still-pending requests again when it comes back, and loses none.
3. Answers come out of the queue's undo window and are published with
   :class:`~driftloop.client.Publisher` (keyed by task, in envelopes); each is settled once
   the broker acknowledged it.

A desk limited to some tasks has a consumer group of its own (the tasks are in its name),
so it never commits past requests that a desk for the other tasks still has to offer.
Stopping publishes the answers still held (the reviewers are gone: their answers stand),
commits, and leaves the group; when the broker refuses the answers, their requests are
offered again after a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import warnings
from collections import deque
from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord

from ..client.kafka import new_consumer, topic_partitions
from ..client.publisher import Publisher
from ..schemas.codec import decode, decode_batch
from ..schemas.errors import ValidationError
from ..schemas.events import Feedback, LabelRequest
from ..schemas.settings import Settings
from ..schemas.topics import Topic
from .answers import ReviewError, answered_request
from .queue import HeldAnswer, ReviewQueue

__all__ = ["DeskNotReady", "ReviewDesk", "review_group"]

log = logging.getLogger(__name__)

_RETRY_S = 1.0  # pause before publishing again after the broker refused


class DeskNotReady(ReviewError):
    """The desk could not read the ``feedback`` topic to its end at start, so it cannot
    tell which requests were answered before; it does not offer any."""

    status = 503
    retriable = True


def review_group(settings: Settings, tasks: Iterable[str] = ()) -> str:
    """The consumer group of a desk on ``label-requests``: prefixed like the topics, and
    one of its own for a desk limited to some tasks.

    >>> review_group(Settings(kafka={"topic_prefix": "prod."}))
    'prod.driftloop-review'
    >>> review_group(Settings(), ["toxicity", "sentiment"])
    'driftloop-review.sentiment+toxicity'
    """
    name = f"{settings.kafka.topic_prefix}{settings.review.group_id}"
    chosen = sorted(set(tasks))
    return f"{name}.{'+'.join(chosen)}" if chosen else name


class ReviewDesk:
    """Label requests from Kafka into a :class:`~.queue.ReviewQueue`, answers back out.

    Parameters
    ----------
    settings
        The broker, the topic prefix and the ``[review]`` section.
    tasks
        Offer only these tasks' requests (default ``review.tasks``; empty = every task).
    queue
        The queue to feed (default: a new one from the settings).
    catch_up_s
        Longest read of the ``feedback`` topic at start (:class:`DeskNotReady` after it).
    poll_ms
        Longest broker wait of one fetch (bounds how soon a new request shows).

    Examples
    --------
    >>> desk = ReviewDesk(Settings(kafka={"topic_prefix": "t."}), tasks=["sentiment"])
    >>> desk.group_id, desk.running, desk.queue.counts()
    ('t.driftloop-review.sentiment', False, {})
    >>> async def main():  # doctest: +SKIP
    ...     async with ReviewDesk(Settings()) as desk:
    ...         request = desk.queue.next()
    ...         desk.answer(request.id, "positive", reviewer="ann")
    """

    def __init__(self, settings: Settings, *, tasks: Iterable[str] | None = None,
                 queue: ReviewQueue | None = None, catch_up_s: float = 60.0,
                 poll_ms: int = 200) -> None:
        if catch_up_s <= 0 or poll_ms <= 0:
            raise ValueError(f"catch_up_s and poll_ms must be > 0, got {catch_up_s}, {poll_ms}")
        self.settings = settings
        self.tasks = tuple(settings.review.tasks if tasks is None else tasks)
        self.queue = queue if queue is not None else ReviewQueue(settings)
        self.catch_up_s = catch_up_s
        self.poll_ms = poll_ms
        self.group_id = review_group(settings, self.tasks)
        self._requests_topic = settings.kafka.topic(Topic.LABEL_REQUESTS)
        self._feedback_topic = settings.kafka.topic(Topic.FEEDBACK)
        self._reset()

    def _reset(self) -> None:
        self._requests: AIOKafkaConsumer | None = None
        self._feedback: AIOKafkaConsumer | None = None
        self._publisher: Publisher | None = None
        self._loops: list[asyncio.Task[None]] = []
        self._outbox: list[HeldAnswer] = []  # taken from the queue, not acknowledged yet
        self._unsettled: dict[TopicPartition, deque[tuple[int, str | None]]] = {}
        self._next_offset: dict[TopicPartition, int] = {}
        self._committed: dict[TopicPartition, int] = {}
        self._wake: asyncio.Event | None = None
        self._commit_lock: asyncio.Lock | None = None
        self._send_lock: asyncio.Lock | None = None
        self._started = False
        self.undecodable = 0  # label requests that are not one (the worker never sends such)
        self.published = 0  # answers the broker acknowledged

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """Started, and every loop still runs."""
        return self._started and all(not loop.done() for loop in self._loops)

    def problems(self) -> list[str]:
        """What is wrong with a started desk (for a health check); [] when it runs."""
        if not self._started:
            return ["not started"]
        return [f"{loop.get_name()} stopped" for loop in self._loops if loop.done()]

    async def start(self) -> None:
        """Read what was answered, then join the group on ``label-requests``; on failure
        release whatever started and raise."""
        if self._started:
            return
        self._started = True
        self._wake, self._commit_lock = asyncio.Event(), asyncio.Lock()
        self._send_lock = asyncio.Lock()
        try:
            self._publisher = Publisher(self.settings)
            await self._publisher.__aenter__()
            await self._catch_up_feedback()
            self._requests = new_consumer(self.settings, group_id=self.group_id,
                                          auto_offset_reset="earliest",
                                          fetch_max_wait_ms=self.poll_ms)
            self._requests.subscribe([self._requests_topic], listener=_Rebalance(self))
            await self._requests.start()
        except BaseException:
            await self.stop()
            raise
        for name, loop in (("label-requests consumer", self._follow_requests()),
                           ("feedback follower", self._follow_feedback()),
                           ("answer publisher", self._publish_due())):
            task = asyncio.create_task(loop, name=name)
            task.add_done_callback(_log_end)
            self._loops.append(task)

    async def stop(self) -> None:
        """Publish the answers still held, commit what is settled, leave the group, close
        (idempotent)."""
        if not self._started:
            return
        loops, self._loops = self._loops, []
        for loop in loops:
            loop.cancel()
        for loop in loops:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await loop
        if self._publisher is not None and self._requests is not None:
            await self._flush()
            await self._commit()
        for consumer in (self._requests, self._feedback):
            if consumer is not None:
                with contextlib.suppress(KafkaError):
                    await consumer.stop()
        if self._publisher is not None:
            with contextlib.suppress(KafkaError):
                await self._publisher.__aexit__(None, None, None)
        undecodable, published, queue = self.undecodable, self.published, self.queue
        self._reset()
        self.undecodable, self.published, self.queue = undecodable, published, queue

    async def __aenter__(self) -> ReviewDesk:
        await self.start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop()

    def __del__(self) -> None:
        if getattr(self, "_started", False):
            warnings.warn(f"unclosed {type(self).__name__}: call stop()", ResourceWarning,
                          stacklevel=1)

    # -- what the page calls ----------------------------------------------------------------

    def answer(self, request_id: str, value: object, reviewer: str) -> Feedback:
        """The queue's :meth:`~.queue.ReviewQueue.answer`; the answer is published when its
        undo window has passed."""
        feedback = self.queue.answer(request_id, value, reviewer)
        self._poke()
        return feedback

    def undo(self, reviewer: str) -> LabelRequest:
        """The queue's :meth:`~.queue.ReviewQueue.undo`."""
        request = self.queue.undo(reviewer)
        self._poke()
        return request

    def _poke(self) -> None:
        if self._wake is not None:
            self._wake.set()

    # -- feedback: what was answered ----------------------------------------------------------

    async def _catch_up_feedback(self) -> None:
        partitions = (await topic_partitions(self.settings, self._feedback_topic)).get(
            self._feedback_topic)
        if not partitions:
            raise DeskNotReady(f"topic {self._feedback_topic} does not exist: create the "
                               "topics first (driftloop topics create)")
        assigned = [TopicPartition(self._feedback_topic, p) for p in sorted(partitions)]
        self._feedback = new_consumer(self.settings, fetch_max_wait_ms=self.poll_ms,
                                      isolation_level="read_committed")
        await self._feedback.start()
        self._feedback.assign(assigned)
        await self._feedback.seek_to_beginning(*assigned)
        ends = await self._feedback.end_offsets(assigned)
        deadline = time.monotonic() + self.catch_up_s
        behind = {tp for tp in assigned if ends[tp] > 0}
        while behind:
            if time.monotonic() > deadline:
                raise DeskNotReady(f"could not read {self._feedback_topic} to its end in "
                                   f"{self.catch_up_s:.0f} s")
            await self._learn(await self._feedback.getmany(*behind, timeout_ms=self.poll_ms))
            for tp in list(behind):
                if await self._feedback.position(tp) >= ends[tp]:
                    behind.discard(tp)

    async def _follow_feedback(self) -> None:
        assert self._feedback is not None
        while True:
            await self._learn(await self._feedback.getmany(timeout_ms=self.poll_ms))

    async def _learn(self, batches: dict[TopicPartition, list[ConsumerRecord]]) -> None:
        learnt = False
        for records in batches.values():
            for record in records:
                try:
                    events = decode_batch(record.value, Feedback)
                except ValidationError:
                    continue  # the worker dead-letters it; it answers no request
                for event in events:
                    if isinstance(event, Feedback) and (rid := answered_request(event)):
                        self.queue.learn_answered(rid, task=event.task,
                                                  interaction_id=event.interaction_id)
                        learnt = True
        if learnt and self._requests is not None:
            await self._commit()

    # -- label requests ---------------------------------------------------------------------

    async def _follow_requests(self) -> None:
        assert self._requests is not None
        while True:
            batches = await self._requests.getmany(timeout_ms=self.poll_ms, max_records=500)
            for tp, records in batches.items():
                for record in records:
                    self._take(tp, record)
            if batches:
                await self._commit()

    def _take(self, tp: TopicPartition, record: ConsumerRecord) -> None:
        request_id: str | None = None
        try:
            request = decode(record.value, LabelRequest)
        except ValidationError as exc:
            self.undecodable += 1
            log.warning("not a label request at %s[%d]@%d, skipped: %s", tp.topic,
                        tp.partition, record.offset, exc)
        else:
            if not self.tasks or request.task in self.tasks:
                self.queue.offer(request)
                request_id = request.id
        self._unsettled.setdefault(tp, deque()).append((record.offset, request_id))
        self._next_offset[tp] = record.offset + 1

    async def _commit(self) -> None:
        """Commit each partition up to its first request not settled yet."""
        assert self._commit_lock is not None
        async with self._commit_lock:
            if self._requests is None:
                return
            offsets = {}
            for tp, waiting in self._unsettled.items():
                while waiting and (waiting[0][1] is None or self.queue.settled(waiting[0][1])):
                    waiting.popleft()
                target = waiting[0][0] if waiting else self._next_offset[tp]
                if target > self._committed.get(tp, -1):
                    offsets[tp] = target
            if not offsets:
                return
            try:
                await self._requests.commit(offsets)
            except KafkaError as exc:  # a rebalance under way: the next commit catches up
                log.info("commit of %s deferred: %r", self._requests_topic, exc)
                return
            self._committed.update(offsets)

    async def _revoked(self, revoked: set[TopicPartition]) -> None:
        """Partitions go to another desk: publish what is held, commit, forget the rest."""
        if not revoked:
            return
        await self._flush()
        await self._commit()
        for tp in revoked:
            waiting = self._unsettled.pop(tp, deque())
            self.queue.forget(rid for _, rid in waiting if rid is not None)
            self._next_offset.pop(tp, None)
            self._committed.pop(tp, None)

    # -- answers out ----------------------------------------------------------------------------

    async def _publish_due(self) -> None:
        assert self._wake is not None
        while True:
            due_at = self.queue.next_due()
            wait = None if due_at is None else max(0.0, due_at - self.queue.clock())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)
            self._wake.clear()
            self._outbox += self.queue.take_due()
            while not await self._send():
                await asyncio.sleep(_RETRY_S)  # the broker refused: try again shortly
            await self._commit()

    async def _flush(self, timeout: float = 10.0) -> None:
        """Publish every answer held or waiting in the outbox, for up to ``timeout``."""
        self._outbox += self.queue.take_due(everything=True)
        deadline = time.monotonic() + timeout
        while self._outbox and not await self._send():
            if time.monotonic() > deadline:
                log.warning("%d answers could not be published; their requests are offered "
                            "again after a restart", len(self._outbox))
                return
            await asyncio.sleep(_RETRY_S)  # the broker refused: try again shortly

    async def _send(self) -> bool:
        """Publish the outbox; True when the broker acknowledged all of it."""
        assert self._send_lock is not None and self._publisher is not None
        async with self._send_lock:
            sending = list(self._outbox)
            if not sending:
                return True
            try:
                await self._publisher.send([held.feedback for held in sending])
            except KafkaError as exc:
                log.warning("publishing %d answers to %s failed, will retry: %r",
                            len(sending), self._feedback_topic, exc)
                return False
            sent = {held.request.id for held in sending}
            self.queue.mark_published(sent)
            self.published += len(sending)
            self._outbox = [held for held in self._outbox if held.request.id not in sent]
            return True


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, desk: ReviewDesk) -> None:
        self.desk = desk

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self.desk._revoked(set(revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        pass  # each resumes from its committed offset


def _log_end(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("review desk: the %s stopped: %r", task.get_name(), task.exception(),
                  exc_info=task.exception())
