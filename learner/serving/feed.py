"""A replica's reader of ``model-versions``: the whole log, folded into a version log.

Every replica needs the whole log, and a fresh replica must converge to the current
promoted version, so the feed reads every partition from offset 0 without a consumer group
(nothing to commit, nothing shared) and folds each event with the learner's own
:class:`~driftloop.learner.registry.version_log.VersionLog`. The end offsets seen at start
are the catch-up mark: until every partition reaches them, :meth:`VersionFeed.behind` says
so, and the subscriber loads only the heads the caught-up log names, not every past
version.

A record that is no readable :class:`~driftloop.schemas.ModelVersion` is logged, counted
and skipped. No dead letters from here: every replica reads the whole log, so each would
write its own copy; the learner's registry is the writer.
"""

from __future__ import annotations

import logging
import time

from aiokafka import AIOKafkaConsumer, TopicPartition

from ...client.kafka import new_consumer, topic_partitions
from ...schemas.codec import decode
from ...schemas.errors import ValidationError
from ...schemas.events import ModelVersion
from ...schemas.settings import Settings
from ...schemas.topics import Topic
from ..errors import ServingError
from ..registry.version_log import VersionLog
from ..trust import Trust

__all__ = ["VersionFeed"]

log = logging.getLogger(__name__)


class VersionFeed:
    """Follows ``model-versions`` from its beginning into :attr:`versions`.

    The version log is kept across a stop and a start (reading the log again re-applies
    the same events).

    Examples
    --------
    >>> feed = VersionFeed(Settings())
    >>> feed.running, feed.bad_records, feed.versions.versions()
    (False, 0, [])
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.versions = VersionLog()
        self.bad_records = 0
        """Records that were not a readable ModelVersion (skipped)."""
        self.trust = Trust(settings)
        self._consumer: AIOKafkaConsumer | None = None
        self._ends: dict[TopicPartition, int] = {}
        self._behind: set[TopicPartition] = set()

    @property
    def running(self) -> bool:
        return self._consumer is not None

    async def start(self) -> None:
        """Assign every partition from offset 0 and note its end offset (the catch-up mark).

        A topic that does not exist is a :class:`ServingError` naming it.
        """
        if self._consumer is not None:
            return
        topic = self.settings.kafka.topic(Topic.MODEL_VERSIONS)
        consumer = new_consumer(self.settings, fetch_max_wait_ms=self.settings.serving.poll_wait_ms)
        await consumer.start()
        try:
            partitions = (await topic_partitions(self.settings, topic, timeout=0)).get(topic)
            if not partitions:
                raise ServingError(f"topic {topic} does not exist "
                                   "(run `driftloop topics create`)")
            assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
            consumer.assign(assigned)
            await consumer.seek_to_beginning(*assigned)
            ends = await consumer.end_offsets(assigned)
        except BaseException:
            await consumer.stop()
            raise
        self._consumer, self._ends = consumer, ends
        self._behind = {tp for tp, end in ends.items() if end > 0}

    async def stop(self) -> None:
        """Stop reading (idempotent); the version log stays."""
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await consumer.stop()

    async def read(self) -> tuple[float, list[ModelVersion]]:
        """One fetch (waiting up to ``serving.poll_wait_ms``): the ``time.monotonic()`` it
        returned at, and its readable events, each folded into :attr:`versions` already."""
        consumer = self._started()
        batches = await consumer.getmany(timeout_ms=self.settings.serving.poll_wait_ms)
        read_at = time.monotonic()
        events = []
        for records in batches.values():
            for record in records:
                try:
                    event = decode(record.value, ModelVersion)
                except ValidationError as exc:
                    self.bad_records += 1
                    log.error("skipping unreadable model-versions record %s[%d]@%d (%s): %s",
                              record.topic, record.partition, record.offset, exc.code, exc)
                    continue
                if not self.trust.signed_by_us(event):
                    self.versions.untrusted += 1  # a forged event never replaces a version
                    continue
                self.versions.apply(event)
                events.append(event)
        return read_at, events

    async def behind(self) -> bool:
        """Whether records that were in the log at start are still unread."""
        consumer = self._started()
        for tp in list(self._behind):
            if await consumer.position(tp) >= self._ends[tp]:
                self._behind.discard(tp)
        return bool(self._behind)

    def _started(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            raise ServingError("the version feed is not started")
        return self._consumer
