"""The stall watchdog: a worker with records waiting that handles nothing is kicked, then ended.

faust-streaming can lose track of fetched records around a rebalance (#175, #640): the
consumer's position is past records the agent never saw, and it waits forever. Such a
consumer cannot be trusted to stop cleanly, so the watchdog exits at once (status
:data:`STALL_EXIT_CODE`), like ``kill -9``: the state is safe (offsets were never committed
past what the tables hold) and the restarted worker resumes from the committed offsets. Run
the worker under a supervisor that restarts it.

How far each partition was handled is the in-order guard's bookkeeping
(:class:`~driftloop.streams.source_order.SourceOrder`): the offset before the next one it
expects, which for a partition nothing was handled from yet is where the partition starts
(the group's committed offset, else the earliest the broker keeps). Not the consumer's
position: the fetcher moves that past records it fetched, and a restarted worker that stalls
after recovery has fetched records its agent never saw (seen: ready, 30 of 43 partitions
paused, position at the end, 0 messages in 150 s).
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from typing import Any, NoReturn

from ..schemas.settings import Settings
from .liveness import Liveness
from .ownership import Ownership
from .source_order import SourceOrder

__all__ = ["STALL_EXIT_CODE", "StallWatchdog", "exit_for_restart"]

log = logging.getLogger(__name__)

STALL_EXIT_CODE = 75
"""Exit status of a worker that ended itself for a supervisor to restart."""

Lag = tuple[str, int, int, int]
"""(topic, partition, last offset handled, highwater) of a partition with records waiting."""


def exit_for_restart(why: str, *args: Any) -> NoReturn:
    """End the process at once (status :data:`STALL_EXIT_CODE`) for a supervisor to restart:
    the state is safe, offsets were never committed past what the tables hold."""
    log.critical(why + ": exiting (status %d) so a supervisor restarts the worker",
                 *args, STALL_EXIT_CODE)
    logging.shutdown()
    os._exit(STALL_EXIT_CODE)


@dataclass
class StallWatchdog:
    """Checks, every few seconds, that a worker with records waiting makes progress.

    ``app`` is the Faust app (its consumer and whether it is recovering its tables); the
    figures go to ``liveness``. Every decision is tested against a stand-in consumer in
    tests/streams/test_watchdog.py.

    Examples
    --------
    Idle for long, but nothing waits on the partitions it holds (here: none), so nothing is
    done:

    >>> import asyncio
    >>> from types import SimpleNamespace
    >>> app = SimpleNamespace(consumer=SimpleNamespace(assignment=lambda: []))
    >>> settings = Settings(worker={"stall_timeout_s": 10})
    >>> watchdog = StallWatchdog(app, settings, SourceOrder(settings, group_id="g"),
    ...                          Ownership(app, settings), Liveness(started_at=0.0))
    >>> asyncio.run(watchdog.check()), watchdog.liveness.watchdog_checks
    (False, 1)
    """

    app: Any
    settings: Settings
    order: SourceOrder
    ownership: Ownership
    liveness: Liveness
    _kicked_at: float | None = None

    async def check(self) -> bool:
        """End the process when it has lag but handled nothing for ``worker.stall_timeout_s``.

        Before exiting it tries once to un-stick the consumer in place: resume the lagging
        partitions (a partition left paused after recovery is never fetched again), resume the
        flow, and seek each to the offset after the last one handled, which makes Faust read
        them again. Seen here: a worker restarted after kill -9 finished its recovery, then
        stood 10 s at offset 10 of 12 on one partition and the watchdog ended it. Returns
        False whenever the worker goes on (idle, or kicked and given a period to show it).
        """
        self.liveness.watchdog_checks += 1
        # after a kick the clock restarts: the kick gets one full period to show progress
        idle = time.time() - max(self.liveness.last_progress, self._kicked_at or 0.0)
        limit = self.settings.worker.stall_timeout_s
        if getattr(self.app, "in_recovery", False):
            limit *= 5  # reading a large changelog is slow, not stuck; a stuck one is caught
        if idle < limit:
            return False
        assigned = self.ownership.assigned_sources()
        lagging = await self._lagging(assigned)
        if not lagging:
            log.info("idle %.0f s, no records waiting on %d source partitions", idle,
                     len(assigned))
            return False
        # Never while Faust recovers: its partitions are paused on purpose until the tables
        # are restored, and resuming them would apply events to half-restored state.
        recovering = getattr(self.app, "in_recovery", False)
        if not recovering and (self._kicked_at is None
                               or self._kicked_at < self.liveness.last_message_at):
            await self._kick(assigned, lagging, idle)
            return False
        exit_for_restart("no progress for %.0f s with records waiting on %s", idle, lagging)

    async def _lagging(self, assigned: list[Any]) -> list[Lag]:
        """The assigned partitions with records past the last one handled."""
        # Ask the broker, not the fetcher: a partition left paused is never fetched, so the
        # fetcher knows no highwater for it.
        highwaters = await self.app.consumer.highwaters(*assigned) if assigned else {}
        await self.order.learn_starts([(tp.topic, tp.partition) for tp in assigned])
        lagging = []
        for tp in assigned:
            highwater = highwaters.get(tp)
            done = self.order.done(tp.topic, tp.partition)
            done = -1 if done is None else done
            if highwater is not None and highwater - 1 > done:
                lagging.append((tp.topic, tp.partition, done, highwater))
        return lagging

    async def _kick(self, assigned: list[Any], lagging: list[Lag], idle: float) -> None:
        """Resume and re-seek the lagging partitions once; the next stall period decides."""
        self.liveness.watchdog_kicks += 1
        self._kicked_at = time.time()
        log.warning("no progress for %.0f s with records waiting on %s: resuming and "
                    "re-seeking those partitions", idle, lagging)
        consumer = self.app.consumer
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
