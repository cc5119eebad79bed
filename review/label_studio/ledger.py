"""What the bridge has published, read back from the feedback topic: the bridge's memory
across restarts, kept in Kafka and nowhere else.

Why the feedback topic, and not a note in the bridge's consumer-group commit (the way
``learner/attempts.py`` keeps attempts): the feedback events *are* the effect, so reading
them back cannot disagree with what was published; there is no window between publishing
and noting it in which a crash would publish an answer twice. And the state is per
annotation (which request, which revision, which value): it does not fit the 4 KB a commit's
metadata may hold. Feedback is keyed by task, so only the partitions holding the bridged
tasks are read, once, at start.

The bridge's feedback is told apart by ``metadata.ls_annotation_id`` (only it sets that);
for each label request the highest revision seen wins. The horizon is the feedback topic's
retention (a week by default): an annotation changed after its feedback has expired is
published again as revision 0, with the same feedback id as the first time.

Examples
--------
>>> from driftloop.schemas import Feedback
>>> ledger = PublishedAnswers()
>>> def answer(revision, value):
...     return Feedback(id=f"lr-1.review.{revision}", interaction_id="i-1", ts=1.0, task="s",
...                     kind="label", value=value, source="reviewer",
...                     metadata={"label_request_id": "lr-1", "revision": revision,
...                               "ls_annotation_id": 7})
>>> ledger.record(answer(1, "neg")), ledger.record(answer(0, "pos"))
(True, True)
>>> ledger.get("lr-1")
Published(revision=1, value='neg')
>>> ledger.record(Feedback(id="f", interaction_id="i", ts=1.0, task="s", kind="label",
...                        value="pos"))  # a user's feedback: not the bridge's
False
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from aiokafka.partitioner import murmur2

from ...client.kafka import records_to_end, topic_partitions
from ...schemas.codec import decode_batch
from ...schemas.enums import FeedbackSource
from ...schemas.errors import ValidationError
from ...schemas.events import Feedback
from ...schemas.settings import Settings
from ...schemas.topics import Topic

__all__ = ["ANNOTATION_KEY", "Published", "PublishedAnswers", "key_partition"]

log = logging.getLogger(__name__)

ANNOTATION_KEY = "ls_annotation_id"
"""The metadata key that marks the bridge's feedback (the Label Studio annotation's id)."""


@dataclass(frozen=True, slots=True)
class Published:
    """The latest answer published for one label request."""

    revision: int
    value: str


def key_partition(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner (murmur2, as aiokafka's and the Java
    client's) sends ``key`` to.

    >>> key_partition(b"sentiment", 6) == key_partition(b"sentiment", 6) < 6
    True
    """
    return (murmur2(key) & 0x7FFFFFFF) % partitions


class PublishedAnswers:
    """The bridge's published answers by label request id."""

    def __init__(self) -> None:
        self._by_request: dict[str, Published] = {}

    def __len__(self) -> int:
        return len(self._by_request)

    def get(self, request_id: str) -> Published | None:
        return self._by_request.get(request_id)

    def record(self, feedback: Feedback) -> bool:
        """Remember ``feedback`` if it is the bridge's; False when it is not."""
        meta = feedback.metadata
        request_id = meta.get("label_request_id")
        if (feedback.source is not FeedbackSource.REVIEWER or ANNOTATION_KEY not in meta
                or not isinstance(request_id, str)):
            return False
        revision = int(meta.get("revision", 0))
        known = self._by_request.get(request_id)
        if known is None or revision >= known.revision:
            self._by_request[request_id] = Published(revision, str(feedback.value))
        return True

    @classmethod
    async def read(cls, settings: Settings, tasks: Iterable[str], *,
                   timeout: float = 300.0) -> PublishedAnswers:
        """The bridge's answers for ``tasks`` found on the feedback topic (only the
        partitions their keys go to are read)."""
        ledger = cls()
        wanted = set(tasks)
        name = settings.kafka.topic(Topic.FEEDBACK)
        partitions = (await topic_partitions(settings, name)).get(name)
        if not partitions:
            return ledger
        count = max(partitions) + 1
        mine = {key_partition(task.encode(), count) for task in wanted} & partitions
        async for batch in records_to_end(settings, name, mine, timeout=timeout):
            for record in batch:
                try:
                    events = decode_batch(record.value, Feedback)
                except ValidationError:
                    continue  # not ours: the worker dead-letters it
                for event in events:
                    if isinstance(event, Feedback) and event.task in wanted:
                        ledger.record(event)
        log.info("read back %d answers of the Label Studio bridge from %s", len(ledger), name)
        return ledger
