"""Batch envelopes of serving events, the way telemetry exporters send them.

Requests hand their Interaction (or Feedback) to :class:`EventBatcher` and return at once.
One sender task drains the queue: an event alone is sent after ``linger`` (a few ms, so a
single request is published promptly); under load, whatever queued while the previous send
was in flight goes out together as one batch envelope per task (DESIGN.md, Topics), so the
worker pays its per-message cost once per batch.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaProducer

from ...schemas.codec import encode, encode_batch
from ...schemas.events import Event

__all__ = ["EventBatcher"]

log = logging.getLogger(__name__)

_STOP: Any = object()  # queued by stop(): the sender ends once it reaches it


class EventBatcher:
    """Queue events of one topic and send them as single events or batch envelopes.

    Parameters
    ----------
    producer
        A started producer (not owned: the service shares one).
    topic
        The full topic name.
    max_events
        Most events in one envelope.
    linger
        Seconds to wait for company before sending.
    on_sent
        Called with ``(events sent, messages sent)`` after each broker acknowledgement.

    Examples
    --------
    >>> EventBatcher(producer=None, topic="interactions", max_events=0)
    Traceback (most recent call last):
    ...
    ValueError: max_events must be >= 1, got 0
    """

    def __init__(self, *, producer: AIOKafkaProducer | None, topic: str, max_events: int = 256,
                 linger: float = 0.005,
                 on_sent: Callable[[int, int], None] | None = None) -> None:
        if max_events < 1:
            raise ValueError(f"max_events must be >= 1, got {max_events}")
        if linger < 0:
            raise ValueError(f"linger must be >= 0, got {linger}")
        self.producer = producer
        self.topic = topic
        self.max_events = max_events
        self.linger = linger
        self.on_sent = on_sent
        self.failed = 0
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._sender: asyncio.Task[None] | None = None

    @property
    def queued(self) -> int:
        return self._queue.qsize()

    @property
    def running(self) -> bool:
        return self._sender is not None and not self._sender.done()

    def submit(self, event: Event) -> None:
        """Queue one event (never blocks the request)."""
        self._queue.put_nowait(event)

    async def start(self) -> None:
        if self.producer is None:
            raise RuntimeError("EventBatcher has no producer")
        if self._sender is None:
            self._sender = asyncio.create_task(self._send_forever(), name=f"batcher-{self.topic}")

    async def stop(self, timeout: float = 10.0) -> None:
        """Send what is queued (bounded by ``timeout``), then stop (idempotent)."""
        sender, self._sender = self._sender, None
        if sender is None:
            return
        self._queue.put_nowait(_STOP)  # everything queued before it is sent first
        try:
            await asyncio.wait_for(sender, timeout)
        except TimeoutError:
            log.warning("%d events for %s were not sent within %.0f s of stop",
                        self._queue.qsize(), self.topic, timeout)

    async def _send_forever(self) -> None:
        while True:
            first = await self._queue.get()
            if first is _STOP:
                return
            events: list[Event] = [first]
            if self.linger:
                await asyncio.sleep(self.linger)
            stopping = False
            while len(events) < self.max_events and not self._queue.empty():
                event = self._queue.get_nowait()
                if event is _STOP:
                    stopping = True
                    break
                events.append(event)
            try:
                await self._send(events)
            except Exception:
                # Telemetry must not take the service down: count it, log it, go on.
                self.failed += len(events)
                log.exception("could not publish %d events to %s", len(events), self.topic)
            if stopping:
                return

    async def _send(self, events: list[Event]) -> None:
        assert self.producer is not None
        by_task: dict[str, list[Event]] = defaultdict(list)
        for event in events:
            by_task[getattr(event, "task", "")].append(event)
        futures = []
        for task, group in by_task.items():
            value = encode(group[0]) if len(group) == 1 else encode_batch(group)
            futures.append(await self.producer.send(self.topic, value, key=task.encode()))
        await asyncio.gather(*futures)
        if self.on_sent is not None:
            self.on_sent(len(events), len(futures))
