"""The fault scenarios: inject a fault into a running deployment, recover, then account.

Each scenario runs the real processes on the rig's own broker and ends with the accounting
check of :mod:`driftloop.tools.ops.accounting` over its own topics:

* ``worker-kill``: the worker is killed with SIGKILL at random moments of a stream (several
  times) and restarted each time;
* ``broker-restart``: the broker is stopped and started again while traffic flows;
* ``learner-kill``: the learner is killed with SIGKILL at a random moment of an update (model
  load, training steps, scoring), and again between storing an adapter and publishing its
  version, and restarted each time;
* ``serving-broker-restart``: the service serves a promoted version, the broker restarts,
  and a version promoted afterwards must still reach it.

Recovery time is the time from the fault to the component doing its work again: the worker
handling a message, the learner publishing a version, the service serving the new version.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from ....learner.registry.version_log import version_id_for
from ....learner.service import HOLD_BEFORE_PUBLISH_ENV
from ....learner.topics.versions import publish_with_new_producer, read_version_log
from ....schemas import ModelVersion, ServingAck, decode
from ....schemas.enums import ServingStatus, VersionStatus
from ....schemas.settings import Settings
from ....schemas.topics import Topic
from ...demo.processes import ChildProcess, DemoChildError, wait_until
from ...kafka.topic_reader import read_snapshot
from ...ops.accounting import Ledger, metric, take_ledger
from .rig import (
    FaultRig,
    Traffic,
    free_port,
    metrics_text,
    send_requests,
    training_request,
)

__all__ = ["SCENARIOS", "FaultPlan", "ScenarioResult", "run_scenario"]


@dataclass(frozen=True, slots=True)
class FaultPlan:
    """Sizes of a run (``quick`` for the test suite, the default for the bench).

    >>> plan = FaultPlan.named(quick=True)
    >>> plan.kills, plan.traffic().events, len(plan.traffic().messages())
    (2, 3000, 300)
    """

    events: int = 12_000
    batch: int = 10  # events per message
    rate: float = 20.0  # messages per second: the stream lasts events / batch / rate seconds
    kills: int = 4
    requests: int = 3
    outage_s: float = 5.0
    seed: int = 0

    @classmethod
    def named(cls, quick: bool, seed: int = 0) -> FaultPlan:
        if quick:
            return cls(events=3_000, rate=15.0, kills=2, requests=2, outage_s=3.0, seed=seed)
        return cls(seed=seed)

    def traffic(self, offset: int = 0) -> Traffic:
        return Traffic(events=self.events, batch=self.batch, rate=self.rate,
                       seed=self.seed + offset)


@dataclass(slots=True)
class ScenarioResult:
    """What one scenario did and what the accounting found."""

    name: str
    ledger: Ledger
    faults: int
    recovery_s: list[float] = field(default_factory=list)
    unplanned_restarts: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.ledger.ok

    def row(self) -> dict[str, object]:
        ledger = self.ledger
        return {"scenario": self.name, "faults": self.faults,
                "produced": ledger.produced_total, "processed": ledger.processed_total,
                "dead_lettered": ledger.dead_lettered, "lost": ledger.lost,
                "double_counted": ledger.double_counted,
                "training_requests": ledger.training_requests,
                "unanswered_requests": len(ledger.unanswered_requests),
                "duplicate_versions": len(ledger.duplicate_versions),
                "recovery_s_max": round(max(self.recovery_s), 2) if self.recovery_s else None,
                "unplanned_restarts": self.unplanned_restarts,
                "seconds": round(self.seconds, 1), "ok": self.ok,
                "problems": ledger.problems()}


Say = Callable[[str], None]
_Run = tuple[Settings, "_Worker", Traffic, "asyncio.Task[None]"]


class _Worker:
    """The worker process of a scenario, restartable, with its /metrics port."""

    def __init__(self, rig: FaultRig, scenario: str, settings: Settings) -> None:
        self.rig, self.scenario = rig, scenario
        self.port = free_port()
        self.env = rig.env(settings, scenario, DRIFTLOOP_WORKER__WEB_PORT=str(self.port))
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
        return -1.0 if text is None else metric(text, "driftloop_worker_liveness",
                                                measure="messages_handled")

    async def keep_alive(self) -> None:
        """An orchestrator's restart policy: a worker that exited on its own is restarted."""
        if self.child is not None and not self.child.alive:
            self.unplanned_restarts += 1
            self.rig.say(f"  the worker exited by itself ({self.child.process.returncode}); "
                         "restarting it")
            await self.start()

    def stop(self) -> int | None:
        return self.child.stop(grace=30) if self.child else None


async def _settle(settings: Settings, worker: _Worker, *, timeout: float) -> Ledger:
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
async def _stream(rig: FaultRig, name: str, plan: FaultPlan, offset: int) -> AsyncIterator[_Run]:
    """A fresh deployment with its worker running and the traffic flowing into it."""
    settings = rig.deploy(name)
    worker = _Worker(rig, name, settings)
    await worker.start()
    traffic = plan.traffic(offset)
    sending = asyncio.create_task(traffic.run(settings))
    try:
        yield settings, worker, traffic, sending
    finally:
        if not sending.done():
            sending.cancel()
        worker.stop()


async def _drain(settings: Settings, worker: _Worker, sending: asyncio.Task[None]) -> Ledger:
    await sending
    return await _settle(settings, worker, timeout=180)


async def worker_kill(rig: FaultRig, plan: FaultPlan) -> ScenarioResult:
    async with _stream(rig, "worker-kill", plan, 0) as (settings, worker, traffic, sending):
        expected_s = (len(traffic.messages()) + len(traffic.feedback())) / plan.rate
        began = time.monotonic()
        rng = random.Random(plan.seed)
        # One kill at a random moment of each of ``kills`` equal stretches of the stream.
        moments = [(n + rng.uniform(0.1, 0.9)) * expected_s / plan.kills
                   for n in range(plan.kills)]
        recovery: list[float] = []
        for n, moment in enumerate(moments):
            # the fault schedule, not a synchronisation: sleep until the chosen moment
            await asyncio.sleep(max(0.0, began + moment - time.monotonic()))
            rig.say(f"  kill -9 the worker ({n + 1}/{plan.kills}) after {traffic.sent} "
                    "messages sent")
            killed_at = time.monotonic()
            worker.kill()
            await worker.start()
            await wait_until(lambda: worker.handled_since_start() > 0 or sending.done(),
                             timeout=120, what="the restarted worker handling a message")
            recovery.append(time.monotonic() - killed_at)
        ledger = await _drain(settings, worker, sending)
    return ScenarioResult("worker-kill", ledger, plan.kills, recovery, worker.unplanned_restarts)


async def broker_restart(rig: FaultRig, plan: FaultPlan) -> ScenarioResult:
    async with _stream(rig, "broker-restart", plan, 1) as (settings, worker, traffic, sending):
        total = len(traffic.messages()) + len(traffic.feedback())
        await wait_until(lambda: traffic.sent >= total // 3 or sending.done(), timeout=300,
                         what="a third of the traffic")
        back_at = await asyncio.to_thread(rig.restart_broker, plan.outage_s)
        # counted once the broker is back: messages fetched before it went down do not count
        handled_before = worker.handled_since_start()

        async def handling_again() -> bool:
            await worker.keep_alive()
            return worker.handled_since_start() > handled_before or (
                worker.unplanned_restarts > 0 and worker.handled_since_start() > 0)

        await wait_until(handling_again, timeout=180,
                         what="the worker handling messages after the broker restart")
        recovery = [time.monotonic() - back_at]
        ledger = await _drain(settings, worker, sending)
    return ScenarioResult("broker-restart", ledger, 1, recovery, worker.unplanned_restarts)


def _log_has(child: ChildProcess, text: str, since: int) -> bool:
    try:
        with open(child.log_path, "rb") as log:
            log.seek(since)
            return text.encode() in log.read()
    except OSError:
        return False


def _log_size(rig: FaultRig, scenario: str, name: str) -> int:
    path = rig.workdir / scenario / "logs" / f"{name}.log"
    return path.stat().st_size if path.exists() else 0


async def _decided(settings: Settings) -> set[str]:
    log = await read_version_log(settings)
    return {v.training_request_id for v in log.versions()
            if v.training_request_id
            and v.status in (VersionStatus.PROMOTED, VersionStatus.REJECTED)}


async def learner_kill(rig: FaultRig, plan: FaultPlan) -> ScenarioResult:
    name = "learner-kill"
    settings = rig.deploy(name)
    requests = [training_request(f"{name}-{n}", n=48, seed=plan.seed + n)
                for n in range(max(2, plan.requests))]
    await send_requests(settings, requests)
    env = rig.env(settings, name)
    marker = rig.workdir / name / "held-before-publish"
    recovery: list[float] = []
    wanted = {r.id for r in requests}

    # 1. SIGKILL while the first request trains.
    since = _log_size(rig, name, "learner")
    child = rig.process("learner", name, env, "-v", "learner").start()
    try:
        first = version_id_for(requests[0].task, requests[0].id,
                               deployment=settings.deployment_id)
        training = f"training {first}"
        await wait_until(lambda: _log_has(child, training, since), timeout=300,
                         what="the learner training the first request", check=child.check)
        # a random moment of the update (model load, training steps, scoring): the schedule
        await asyncio.sleep(random.Random(plan.seed).uniform(1.0, 4.0))
        child.check()  # still at work, not finished and gone
        rig.say("  kill -9 the learner while it trains")
        killed_at = time.monotonic()
    finally:
        child.kill()

    # 2. SIGKILL between storing an adapter and publishing its version.
    since = _log_size(rig, name, "learner")
    child = rig.process("learner", name, {**env, HOLD_BEFORE_PUBLISH_ENV: str(marker)},
                        "-v", "learner").start()
    try:
        await wait_until(lambda: _log_has(child, training, since), timeout=300,
                         what="the restarted learner training again", check=child.check)
        recovery.append(time.monotonic() - killed_at)
        await wait_until(marker.exists, timeout=300, what="an adapter stored, not published",
                         check=child.check)
        rig.say(f"  kill -9 the learner holding {marker.read_text()} unpublished")
        held_at = time.monotonic()
    finally:
        child.kill()
    decided_while_held = await _decided(settings)

    # 3. A normal learner finishes the work; nothing may be lost or published twice.
    child = rig.process("learner", name, env, "-v", "learner").start()
    try:
        first = None
        deadline = time.monotonic() + 600
        while not wanted <= (done := await _decided(settings)):
            child.check()
            if first is None and done - decided_while_held:
                first = time.monotonic()
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(1.0)  # poll interval of a wait with a deadline
        recovery.append((first or time.monotonic()) - held_at)
    finally:
        child.stop(grace=60)
    ledger = await take_ledger(settings, None)
    return ScenarioResult(name, ledger, 2, recovery)


async def _acked(settings: Settings, version_id: str) -> bool:
    for record in await read_snapshot(settings, settings.kafka.topic(Topic.SERVING_ACKS)):
        ack = decode(record.value or b"", ServingAck)
        if ack.version_id == version_id and ack.status is ServingStatus.SERVING:
            return True
    return False


async def serving_broker_restart(rig: FaultRig, plan: FaultPlan) -> ScenarioResult:
    name = "serving-broker-restart"
    settings = rig.deploy(name)
    env = rig.env(settings, name, DRIFTLOOP_SERVING__PORT=str(free_port()))
    # A real promoted adapter first: the learner trains one (asked again if the gate says no).
    learner = rig.process("learner", name, env, "-v", "learner").start()
    head: ModelVersion | None = None
    try:
        for attempt in range(3):
            request = training_request(f"{name}-{attempt}", n=96, seed=plan.seed + attempt)
            await send_requests(settings, [request])
            await wait_until(lambda: _answered(settings, request.id), timeout=600,  # noqa: B023
                             what="the learner's first version", check=learner.check)
            head = (await read_version_log(settings)).head(request.task)
            if head is not None:
                break
    finally:
        learner.stop(grace=60)
    if head is None:
        raise DemoChildError("the gate rejected three first versions: nothing to serve")
    serve = rig.process("serve", name, env, "-v", "serve").start()
    recovery: list[float] = []
    try:
        head_id = head.version_id
        await wait_until(lambda: _acked(settings, head_id), timeout=300,
                         what=f"the service serving {head_id}", check=serve.check)
        back_at = await asyncio.to_thread(rig.restart_broker, plan.outage_s)
        # Promoted after the restart: the same verified artifact under a new version.
        after = head.model_copy(update={
            "version_id": f"{head.version_id}-after-restart", "ts": time.time(),
            "parent_version": head.version_id, "training_request_id": None,
            "status": VersionStatus.PROMOTED, "reason": "fault scenario: re-promoted"})
        await publish_with_new_producer(settings, [after])
        await wait_until(lambda: _acked(settings, after.version_id), timeout=180,
                         what="the service serving the version promoted after the restart",
                         check=serve.check)
        recovery.append(time.monotonic() - back_at)
    finally:
        serve.stop(grace=30)
    ledger = await take_ledger(settings, None)
    return ScenarioResult(name, ledger, 1, recovery)


async def _answered(settings: Settings, request_id: str) -> bool:
    return request_id in await _decided(settings)


SCENARIOS = {
    "worker-kill": worker_kill,
    "broker-restart": broker_restart,
    "learner-kill": learner_kill,
    "serving-broker-restart": serving_broker_restart,
}


async def run_scenario(rig: FaultRig, name: str, plan: FaultPlan) -> ScenarioResult:
    """Run one scenario by name; its wall time is recorded in the result."""
    started = time.monotonic()
    rig.say(f"{name}: ...")
    result = await SCENARIOS[name](rig, plan)
    result.seconds = time.monotonic() - started
    verdict = "ok" if result.ok else "; ".join(result.ledger.problems())
    rig.say(f"{name}: {verdict} ({result.seconds:.0f} s)")
    return result
