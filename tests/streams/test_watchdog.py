"""The stall watchdog's decisions: kick a stuck consumer once, then exit; idle is not stuck.

The consumer here is a stand-in for Faust's (assignment, highwaters, pause state, seek): the
watchdog's choice is pure logic over those answers. What a real stall does on a real broker
is covered by the kill -9 and rebalance tests of test_agents.py and `driftloop bench faults`.
"""

from __future__ import annotations

import asyncio
from typing import NamedTuple

import pytest

from driftloop.schemas.settings import Settings
from driftloop.streams import agents
from driftloop.streams.agents import STALL_EXIT_CODE, WorkerRuntime


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


def runtime(consumer: StuckConsumer) -> WorkerRuntime:
    settings = Settings(kafka={"topic_prefix": "p."}, worker={"stall_timeout_s": 10})
    rt = WorkerRuntime(app=App(consumer), settings=settings)  # type: ignore[arg-type]
    rt.handled[("p.interactions", 5)] = 9
    rt.last_message_at = rt.started_at - 60  # a minute without a message
    return rt


def test_a_stuck_partition_is_kicked_once_then_the_worker_exits(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    consumer = StuckConsumer(highwater=12)  # records 10 and 11 wait, 9 was the last handled
    rt = runtime(consumer)
    assert asyncio.run(rt.check_stall()) is False
    assert consumer.seeks == [(consumer.tp, 10)] and not consumer.paused and consumer.flow_active
    assert rt.liveness()["watchdog_kicks"] == 1

    # Still no message one period after the kick: exit for the supervisor to restart.
    rt._kicked_at = rt.started_at - 30

    def exit_now(code: int) -> None:
        raise SystemExit(code)

    monkeypatch.setattr(agents.os, "_exit", exit_now)
    with pytest.raises(SystemExit) as ended:
        asyncio.run(rt.check_stall())
    assert ended.value.code == STALL_EXIT_CODE


def test_progress_after_a_kick_earns_another_kick_later() -> None:
    consumer = StuckConsumer(highwater=12)
    rt = runtime(consumer)
    asyncio.run(rt.check_stall())
    rt._kicked_at = rt.started_at - 50
    rt.last_message_at = rt.started_at - 40  # a message came after the kick, then silence
    assert asyncio.run(rt.check_stall()) is False
    assert len(consumer.seeks) == 2


def test_idle_without_waiting_records_is_not_a_stall() -> None:
    consumer = StuckConsumer(highwater=10)  # everything up to offset 9 handled
    rt = runtime(consumer)
    assert asyncio.run(rt.check_stall()) is False
    assert consumer.seeks == [] and rt.liveness()["watchdog_kicks"] == 0


def test_a_worker_stuck_in_recovery_is_not_kicked_but_ended(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    consumer = StuckConsumer(highwater=12)
    rt = runtime(consumer)
    rt.app = App(consumer, in_recovery=True)  # type: ignore[assignment]
    rt.last_message_at = rt.started_at - 600  # far beyond the longer limit of a recovery

    def exit_now(code: int) -> None:
        raise SystemExit(code)

    monkeypatch.setattr(agents.os, "_exit", exit_now)
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
    rt.handled.clear()
    assert asyncio.run(rt.check_stall()) is False
    assert consumer.seeks == [(consumer.tp, resume_at)] and rt.watchdog_kicks == 1


def test_a_restarted_worker_with_nothing_past_its_commit_is_idle_not_stuck() -> None:
    consumer = RestartedConsumer(highwater=12, committed=12)
    rt = runtime(consumer)
    rt.handled.clear()
    assert asyncio.run(rt.check_stall()) is False
    assert consumer.seeks == [] and rt.watchdog_kicks == 0
