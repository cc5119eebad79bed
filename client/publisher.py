"""Publishing a production service's interactions and feedback the way driftloop reads them.

:class:`Publisher` sends each event to its topic keyed by its task (so a task's events stay
in order on one partition) and packs the events of one task into batch envelopes (the
worker pays its per-message cost once per envelope), each under the topic's message limit.
It needs only aiokafka, orjson and pydantic: ``pip install driftloop`` without extras.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from aiokafka import AIOKafkaProducer

from ..schemas.codec import encode_batch
from ..schemas.errors import DriftloopError
from ..schemas.events import Event, Feedback, Interaction
from ..schemas.settings import Settings
from ..schemas.topics import EVENT_TOPIC_MAX_BYTES, Topic
from .kafka import new_producer

__all__ = ["PublishError", "Publisher", "envelopes"]

_TOPICS: dict[type[Event], Topic] = {Interaction: Topic.INTERACTIONS, Feedback: Topic.FEEDBACK}


class PublishError(DriftloopError):
    """An event the publisher cannot send: another type than interactions and feedback, or
    larger alone than a message may be."""


def envelopes(events: Sequence[Event], *, max_events: int = 100,
              max_bytes: int = EVENT_TOPIC_MAX_BYTES) -> list[tuple[str, bytes]]:
    """``(task, batch envelope)`` pairs: events grouped by task in their order, at most
    ``max_events`` and ``max_bytes`` per envelope.

    >>> from driftloop.schemas import Feedback, decode_batch
    >>> events = [Feedback(id=f"f{i}", interaction_id=f"i{i}", ts=0, task=t, kind="label",
    ...                    value="pos") for i, t in enumerate(["a", "b", "a", "a"])]
    >>> [(task, len(decode_batch(raw, Feedback))) for task, raw in envelopes(events,
    ...                                                                        max_events=2)]
    [('a', 2), ('a', 1), ('b', 1)]
    """
    by_task: dict[str, list[Event]] = {}
    for event in events:
        by_task.setdefault(event.task, []).append(event)  # type: ignore[attr-defined]
    out: list[tuple[str, bytes]] = []
    for task, group in by_task.items():
        out += [(task, raw) for raw in _split(group, max_events, max_bytes)]
    return out


def _split(group: list[Event], max_events: int, max_bytes: int) -> Iterable[bytes]:
    start = 0
    while start < len(group):
        end = min(start + max_events, len(group))
        raw = encode_batch(group[start:end])
        while len(raw) > max_bytes and end - start > 1:  # halve until it fits
            end = start + (end - start) // 2
            raw = encode_batch(group[start:end])
        if len(raw) > max_bytes:
            raise PublishError(f"event {getattr(group[start], 'id', '?')} alone is "
                               f"{len(raw)} bytes; a message may be {max_bytes}")
        yield raw
        start = end


class Publisher:
    """Sends interactions and feedback to driftloop's topics, keyed by task, in envelopes.

    Parameters
    ----------
    settings
        The broker and topic prefix (``Settings()`` reads ``DRIFTLOOP_*`` variables).
    max_events
        Most events per envelope.
    producer
        An aiokafka producer of your own (started and stopped by you); one is made from the
        settings otherwise.

    Examples
    --------
    >>> import asyncio
    >>> from driftloop.schemas import Interaction
    >>> async def main():  # doctest: +SKIP
    ...     async with Publisher(Settings()) as publisher:
    ...         await publisher.send([Interaction(id="i1", ts=1.7e9, task="sentiment",
    ...                                           model_version="v1", input="great film",
    ...                                           prediction="positive")])
    """

    def __init__(self, settings: Settings, *, max_events: int = 100,
                 producer: AIOKafkaProducer | None = None) -> None:
        if max_events < 1:
            raise ValueError(f"max_events must be >= 1, got {max_events}")
        self.settings, self.max_events = settings, max_events
        self._own = producer is None
        self.producer = producer or new_producer(settings, max_request_size=EVENT_TOPIC_MAX_BYTES)

    async def __aenter__(self) -> Publisher:
        if self._own:
            await self.producer.start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        if self._own:
            await self.producer.stop()

    async def send(self, events: Sequence[Event]) -> int:
        """Send ``events`` (interactions and feedback, any tasks, mixed) and wait until the
        broker acknowledged every message; return how many messages were sent."""
        by_topic: dict[Topic, list[Event]] = {}
        for event in events:
            topic = _TOPICS.get(type(event))
            if topic is None:
                raise PublishError(f"{type(event).__name__} is not published by services: "
                                   "send Interaction and Feedback events")
            by_topic.setdefault(topic, []).append(event)
        pending = []
        for topic, group in by_topic.items():
            name = self.settings.kafka.topic(topic)
            for task, raw in envelopes(group, max_events=self.max_events):
                pending.append(await self.producer.send(name, raw, key=task.encode()))
        for future in pending:
            await future
        return len(pending)
