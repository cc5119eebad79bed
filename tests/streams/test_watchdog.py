"""The stall watchdog's decisions: kick a stuck consumer once, then exit; idle is not stuck.

The consumer here is a stand-in for Faust's (assignment, highwaters, pause state, seek), and
the broker that SourceOrder asks where a partition starts answers from that stand-in's commits
and earliest offsets: the watchdog's choice is pure logic over those answers. What a real stall
does on a real broker is covered by the kill -9 and rebalance tests of test_agents.py and
`driftloop bench faults`.
"""

from __future__ import annotations

import asyncio
from typing import NamedTuple

import pytest

from driftloop.schemas.settings import Settings
from driftloop.streams import watchdog
from driftloop.streams.liveness import Liveness
from driftloop.streams.ownership import Ownership
from driftloop.streams.source_order import SourceOrder
from driftloop.streams.watchdog import STALL_EXIT_CODE, StallWatchdog


class TP(NamedTuple):
    topic: str
    partition: int


class StuckConsumer:
    def __init__(self, highwater: int) -> None:
        self.tp = TP("p.interactions", 5)
        self.highwater = highwater
        self.paused = {self.tp}
        self.flow_active = False
        self.seeks: list[tuple[TP, int]] = []

    def assignment(self) -> set[TP]:
        return {self.tp}

    async def highwaters(self, *tps: TP) -> dict[TP, int]:
        return {tp: self.highwater for tp in tps}

    async def position(self, tp: TP) -> int:
        return 10

    def resume_partitions(self, tps: list[TP]) -> None:
        self.paused.difference_update(tps)

    def resume_flow(self) -> None:
        self.flow_active = True

    async def seek(self, tp: TP, offset: int) -> None:
        self.seeks.append((tp, offset))


class App(NamedTuple):
    consumer: StuckConsumer
    in_recovery: bool = False


class BrokerlessOrder(SourceOrder):
    """Where a partition starts, as the stand-in consumer's commits and earliest offsets say."""

    consumer: StuckConsumer | None = None

    async def committed_offsets(self, tps):  # type: ignore[no-untyped-def]
        known = getattr(self.consumer, "_committed_offset", {})
        return {tp: known[tp] for tp in tps if known.get(tp) is not None}

    async def earliest_offsets(self, tps):  # type: ignore[no-untyped-def]
        return await self.consumer.earliest_offsets(*tps)  # type: ignore[union-attr]


class Runtime(NamedTuple):
    """The watchdog and what it reads, as wire() puts them together."""

    watchdog: StallWatchdog
    liveness: Liveness
    order: BrokerlessOrder

    async def check_stall(self) -> bool:
        return await self.watchdog.check()


def runtime(consumer: StuckConsumer) -> Runtime:
    settings = Settings(kafka={"topic_prefix": "p."}, worker={"stall_timeout_s": 10})
    app = App(consumer)
    order = BrokerlessOrder(settings, group_id="g")
    order.consumer = consumer
    liveness = Liveness()
    rt = Runtime(StallWatchdog(app, settings, order, Ownership(app, settings), liveness),
                 liveness, order)
    rt.order.handled("p.interactions", 5, 9)
    rt.liveness.last_message_at = rt.liveness.started_at - 60  # a minute without a message
    return rt


def test_a_stuck_partition_is_kicked_once_then_the_worker_exits(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    consumer = StuckConsumer(highwater=12)  # records 10 and 11 wait, 9 was the last handled
    rt = runtime(consumer)
    assert asyncio.run(rt.check_stall()) is False
    assert consumer.seeks == [(consumer.tp, 10)] and not consumer.paused and consumer.flow_active
    assert rt.liveness.figures(rt.watchdog.app, rt.order)["watchdog_kicks"] == 1

    # Still no message one period after the kick: exit for the supervisor to restart.
    rt.watchdog._kicked_at = rt.liveness.started_at - 30

    def exit_now(code: int) -> None:
        raise SystemExit(code)

    monkeypatch.setattr(watchdog.os, "_exit", exit_now)
    with pytest.raises(SystemExit) as ended:
        asyncio.run(rt.check_stall())
    assert ended.value.code == STALL_EXIT_CODE


def test_progress_after_a_kick_earns_another_kick_later() -> None:
    consumer = StuckConsumer(highwater=12)
    rt = runtime(consumer)
    asyncio.run(rt.check_stall())
    rt.watchdog._kicked_at = rt.liveness.started_at - 50
    # a message came after the kick, then silence
    rt.liveness.last_message_at = rt.liveness.started_at - 40
    assert asyncio.run(rt.check_stall()) is False
    assert len(consumer.seeks) == 2


def test_idle_without_waiting_records_is_not_a_stall() -> None:
    consumer = StuckConsumer(highwater=10)  # everything up to offset 9 handled
    rt = runtime(consumer)
    assert asyncio.run(rt.check_stall()) is False
    assert consumer.seeks == [] and \
        rt.liveness.figures(rt.watchdog.app, rt.order)["watchdog_kicks"] == 0


def test_a_worker_stuck_in_recovery_is_not_kicked_but_ended(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    consumer = StuckConsumer(highwater=12)
    rt = runtime(consumer)
    rt.watchdog.app = App(consumer, in_recovery=True)
    rt.liveness.last_message_at = rt.liveness.started_at - 600  # beyond a recovery's limit

    def exit_now(code: int) -> None:
        raise SystemExit(code)

    monkeypatch.setattr(watchdog.os, "_exit", exit_now)
    with pytest.raises(SystemExit):
        asyncio.run(rt.check_stall())
    assert consumer.seeks == [] and consumer.paused  # paused partitions left alone


class RestartedConsumer(StuckConsumer):
    """Fresh after a restart: nothing handled, the fetcher's position already at the end."""

    def __init__(self, highwater: int, committed: int | None, earliest: int = 0) -> None:
        super().__init__(highwater)
        self._committed_offset = {} if committed is None else {self.tp: committed}
        self.earliest = earliest

    async def position(self, tp: TP) -> int:
        return self.highwater  # fetched, never delivered: not a measure of progress

    async def earliest_offsets(self, *tps: TP) -> dict[TP, int]:
        return {tp: self.earliest for tp in tps}


@pytest.mark.parametrize(("committed", "earliest", "resume_at"), [(3, 0, 3), (None, 2, 2)])
def test_a_restarted_worker_that_handled_nothing_counts_lag_from_its_committed_offset(
        committed: int | None, earliest: int, resume_at: int) -> None:
    consumer = RestartedConsumer(highwater=12, committed=committed, earliest=earliest)
    rt = runtime(consumer)
    rt.order.forget([("p.interactions", 5)])  # nothing handled
    assert asyncio.run(rt.check_stall()) is False
    assert consumer.seeks == [(consumer.tp, resume_at)] and rt.liveness.watchdog_kicks == 1


def test_a_restarted_worker_with_nothing_past_its_commit_is_idle_not_stuck() -> None:
    consumer = RestartedConsumer(highwater=12, committed=12)
    rt = runtime(consumer)
    rt.order.forget([("p.interactions", 5)])  # nothing handled
    assert asyncio.run(rt.check_stall()) is False
    assert consumer.seeks == [] and rt.liveness.watchdog_kicks == 0


def test_a_start_the_watchdog_learns_is_the_in_order_guards_too() -> None:
    consumer = RestartedConsumer(highwater=12, committed=3)
    rt = runtime(consumer)
    rt.order.forget([("p.interactions", 5)])
    asyncio.run(rt.check_stall())
    # one bookkeeping: the next record the step expects is where the watchdog re-seeked
    assert rt.order.expected("p.interactions", 5) == 3 == consumer.seeks[0][1]
    assert not rt.order.check("p.interactions", 5, 3) and rt.order.gap("p.interactions", 5, 5)
