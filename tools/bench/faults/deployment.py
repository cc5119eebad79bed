"""A scenario's deployment: its worker and learner with an orchestrator's restart policy,
the traffic flowing into it, and what its topics and logs say."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

from ....learner.registry.version_log import trained_requests
from ....learner.topics.versions import read_version_log
from ....schemas.enums import VersionStatus
from ....schemas.settings import Settings
from ....streams.write_gap import ENV as WRITE_GAP_ENV
from ...demo.processes import ChildProcess, DemoChildError, wait_until
from ...ops.accounting import Ledger, metric, take_ledger
from .plan import FaultPlan
from .rig import (
    FaultRig,
    Traffic,
    free_port,
    metrics_text,
)

__all__ = ["Learner", "Run", "Say", "Worker", "decided", "drain", "log_has", "log_size",
           "settle", "stream"]


Say = Callable[[str], None]
Run = tuple[Settings, "Worker", Traffic, "asyncio.Task[None]"]


class Worker:
    """The worker process of a scenario, restartable, with its /metrics port."""

    def __init__(self, rig: FaultRig, scenario: str, settings: Settings, *,
                 write_gap_s: float = 0.0) -> None:
        self.rig, self.scenario = rig, scenario
        self.port = free_port()
        extra = {WRITE_GAP_ENV: str(write_gap_s)} if write_gap_s else {}
        self.env = rig.env(settings, scenario, DRIFTLOOP_WORKER__WEB_PORT=str(self.port),
                           **extra)
        self.child: ChildProcess | None = None
        self.unplanned_restarts = 0

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/metrics"

    async def start(self) -> None:
        self.child = self.rig.process("worker", self.scenario, self.env, "worker").start()
        await wait_until(lambda: metrics_text(self.port) is not None, timeout=120,
                         what="the worker's /metrics", check=self.child.check)

    def kill(self) -> None:
        assert self.child is not None
        self.child.kill()

    def handled_since_start(self) -> float:
        text = metrics_text(self.port)
        return -1.0 if text is None else metric(text,
                                                "driftloop_worker_messages_handled_total")

    async def keep_alive(self) -> None:
        """An orchestrator's restart policy: a worker that exited on its own is restarted."""
        if self.child is not None and not self.child.alive:
            self.unplanned_restarts += 1
            self.rig.say(f"  the worker exited by itself ({self.child.process.returncode}); "
                         "restarting it")
            await self.start()

    async def wait_handling_again(self, what: str, *, timeout: float = 180) -> None:
        """Wait until the worker handles a message again after a broker fault (counted from
        now: messages fetched before it do not count), restarting it if it exits."""
        before = self.handled_since_start()

        async def again() -> bool:
            await self.keep_alive()
            return self.handled_since_start() > before or (
                self.unplanned_restarts > 0 and self.handled_since_start() > 0)

        await wait_until(again, timeout=timeout, what=what)

    def stop(self) -> int | None:
        return self.child.stop(grace=30) if self.child else None


async def settle(settings: Settings, worker: Worker, *, timeout: float) -> Ledger:
    """Wait until every input event is processed or dead-lettered; the final ledger."""
    ledger: Ledger | None = None

    async def balanced() -> bool:
        nonlocal ledger
        await worker.keep_alive()
        try:
            ledger = await take_ledger(settings, worker.metrics_url)
        except OSError:
            return False  # the worker's page is not up yet
        return ledger.lost == 0

    try:
        await wait_until(balanced, timeout=timeout, what="every event accounted for",
                         interval=1.0)
    except DemoChildError:
        pass  # report the ledger as it stands: its ``lost`` says what is missing
    if ledger is None:
        ledger = await take_ledger(settings, None)
    return ledger


@contextlib.asynccontextmanager
async def stream(rig: FaultRig, name: str, plan: FaultPlan, offset: int) -> AsyncIterator[Run]:
    """A fresh deployment with its worker running and the traffic flowing into it."""
    settings = rig.deploy(name)
    worker = Worker(rig, name, settings, write_gap_s=plan.write_gap_s)
    await worker.start()
    traffic = plan.traffic(offset)
    sending = asyncio.create_task(traffic.run(settings))
    try:
        yield settings, worker, traffic, sending
    finally:
        if not sending.done():
            sending.cancel()
        worker.stop()


async def drain(settings: Settings, worker: Worker, sending: asyncio.Task[None]) -> Ledger:
    await sending
    return await settle(settings, worker, timeout=180)


class Learner:
    """The learner of a scenario, with an orchestrator's restart policy."""

    def __init__(self, rig: FaultRig, name: str, settings: Settings) -> None:
        self.rig, self.name = rig, name
        self.env = rig.env(settings, name)
        self.child: ChildProcess | None = None
        self.since = log_size(rig, name, "learner")
        self.unplanned_restarts = 0

    def start(self) -> None:
        self.child = self.rig.process("learner", self.name, self.env, "-v", "learner").start()

    def has_logged(self, text: str) -> bool:
        return self.child is not None and log_has(self.child, text, self.since)

    def check(self) -> None:
        if self.child is not None:
            self.child.check()

    def keep_alive(self) -> None:
        if self.child is not None and not self.child.alive:
            self.unplanned_restarts += 1
            self.rig.say(f"  the learner exited by itself ({self.child.process.returncode}); "
                         "restarting it")
            self.start()

    def stop(self) -> None:
        if self.child is not None:
            self.child.stop(grace=60)


def log_has(child: ChildProcess, text: str, since: int) -> bool:
    try:
        with open(child.log_path, "rb") as log:
            log.seek(since)
            return text.encode() in log.read()
    except OSError:
        return False


def log_size(rig: FaultRig, scenario: str, name: str) -> int:
    path = rig.workdir / scenario / "logs" / f"{name}.log"
    return path.stat().st_size if path.exists() else 0


async def decided(settings: Settings) -> set[str]:
    log = await read_version_log(settings)
    return {request for v in log.versions()
            if v.status in (VersionStatus.PROMOTED, VersionStatus.REJECTED)
            for request in trained_requests(v)}  # a coalesced backlog's requests too
