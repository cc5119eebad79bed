"""The fault scenarios: inject a fault into a running deployment, recover, then account.

Each scenario runs the real processes on the rig's own broker and ends with the accounting
check of :mod:`driftloop.tools.ops.accounting` over its own topics:

* ``worker-kill``: the worker is killed with SIGKILL at random moments of a stream (several
  times) and restarted each time;
* ``broker-restart``: the broker is stopped and started again while traffic flows;
* ``broker-kill``: the broker is killed with SIGKILL while traffic flows and the learner
  trains, then started again on the same data: the worker and the learner must recover
  by themselves (a restart policy brings back a process that exits), and every request be
  answered;
* ``learner-kill``: the learner is killed with SIGKILL at a random moment of an update (model
  load, training steps, scoring), and again between storing an adapter and publishing its
  version, and restarted each time;
* ``serving-broker-restart``: the service serves a promoted version, the broker restarts,
  and a version promoted afterwards must still reach it;
* ``broker-disk-full``: the broker's data disk (a small disk of its own,
  :mod:`~driftloop.tools.bench.faults.disk`) fills up while traffic flows; the broker stops
  (Kafka takes a log folder it cannot write offline, and stops with its only one), an
  operator frees space and starts it again, and the worker and the producers carry on by
  themselves.

Recovery time is the time from the fault to the component doing its work again: the worker
handling a message, the learner publishing a version, the service serving the new version.
"""

from __future__ import annotations

import asyncio
import random
import time

from ....learner.registry.version_log import version_id_for
from ....learner.service import HOLD_BEFORE_PUBLISH_ENV
from ....learner.topics.versions import publish_with_new_producer, read_version_log
from ....schemas import ModelVersion, ServingAck, decode
from ....schemas.enums import ServingStatus, VersionStatus
from ....schemas.settings import Settings
from ....schemas.topics import Topic
from ...demo.processes import ChildProcess, DemoChildError, wait_until
from ...kafka.topic_reader import read_snapshot
from ...ops.accounting import take_ledger
from .deployment import Learner, decided, drain, log_has, log_size, stream
from .plan import FaultPlan, ScenarioResult
from .rig import (
    FaultRig,
    free_port,
    send_requests,
    training_request,
)

__all__ = ["DISK_SCENARIOS", "SCENARIOS", "FaultPlan", "ScenarioResult", "run_scenario"]


async def worker_kill(rig: FaultRig, plan: FaultPlan) -> ScenarioResult:
    async with stream(rig, "worker-kill", plan, 0) as (settings, worker, traffic, sending):
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
        ledger = await drain(settings, worker, sending)
    return ScenarioResult("worker-kill", ledger, plan.kills, recovery, worker.unplanned_restarts)


async def broker_restart(rig: FaultRig, plan: FaultPlan) -> ScenarioResult:
    async with stream(rig, "broker-restart", plan, 1) as (settings, worker, traffic, sending):
        total = len(traffic.messages()) + len(traffic.feedback())
        await wait_until(lambda: traffic.sent >= total // 3 or sending.done(), timeout=300,
                         what="a third of the traffic")
        back_at = await asyncio.to_thread(rig.restart_broker, plan.outage_s)
        # counted once the broker is back: messages fetched before it went down do not count
        await worker.wait_handling_again("the worker handling messages after the broker restart")
        recovery = [time.monotonic() - back_at]
        ledger = await drain(settings, worker, sending)
    return ScenarioResult("broker-restart", ledger, 1, recovery, worker.unplanned_restarts)


async def broker_kill(rig: FaultRig, plan: FaultPlan) -> ScenarioResult:
    name = "broker-kill"
    async with stream(rig, name, plan, 2) as (settings, worker, _traffic, sending):
        requests = [training_request(f"{name}-{n}", n=48, seed=plan.seed + n)
                    for n in range(max(2, plan.requests))]
        await send_requests(settings, requests)
        learner = Learner(rig, name, settings)
        learner.start()
        try:
            await wait_until(lambda: learner.has_logged("training "), timeout=300,
                             what="the learner training", check=learner.check)
            back_at = await asyncio.to_thread(rig.restart_broker, plan.outage_s, crash=True)
            handled_before = worker.handled_since_start()

            async def handling_again() -> bool:
                await worker.keep_alive()
                learner.keep_alive()
                return worker.handled_since_start() > handled_before or (
                    worker.unplanned_restarts > 0 and worker.handled_since_start() > 0)

            await wait_until(handling_again, timeout=180,
                             what="the worker handling messages after the broker's crash")
            recovery = [time.monotonic() - back_at]
            wanted = {r.id for r in requests}

            async def all_answered() -> bool:
                learner.keep_alive()
                await worker.keep_alive()
                return wanted <= await decided(settings)

            await wait_until(all_answered, timeout=600, what="every training request answered",
                             interval=1.0)
            recovery.append(time.monotonic() - back_at)
            await drain(settings, worker, sending)
            ledger = await take_ledger(settings, worker.metrics_url)
        finally:
            learner.stop()
    return ScenarioResult(name, ledger, 1, recovery,
                          worker.unplanned_restarts + learner.unplanned_restarts)


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
    since = log_size(rig, name, "learner")
    child = rig.process("learner", name, env, "-v", "learner").start()
    # The learner may coalesce the queued requests and train the newest: any of them counts.
    trainings = [f"training {version_id_for(r.task, r.id, deployment=settings.deployment_id)}"
                 for r in requests]

    def trains(child: ChildProcess, since: int) -> bool:
        return any(log_has(child, line, since) for line in trainings)

    try:
        await wait_until(lambda: trains(child, since), timeout=300,
                         what="the learner training the first request", check=child.check)
        # a random moment of the update (model load, training steps, scoring): the schedule
        await asyncio.sleep(random.Random(plan.seed).uniform(1.0, 4.0))
        child.check()  # still at work, not finished and gone
        rig.say("  kill -9 the learner while it trains")
        killed_at = time.monotonic()
    finally:
        child.kill()

    # 2. SIGKILL between storing an adapter and publishing its version.
    since = log_size(rig, name, "learner")
    child = rig.process("learner", name, {**env, HOLD_BEFORE_PUBLISH_ENV: str(marker)},
                        "-v", "learner").start()
    try:
        await wait_until(lambda: trains(child, since), timeout=300,
                         what="the restarted learner training again", check=child.check)
        recovery.append(time.monotonic() - killed_at)
        await wait_until(marker.exists, timeout=300, what="an adapter stored, not published",
                         check=child.check)
        rig.say(f"  kill -9 the learner holding {marker.read_text()} unpublished")
        held_at = time.monotonic()
    finally:
        child.kill()
    decided_while_held = await decided(settings)

    # 3. A normal learner finishes the work; nothing may be lost or published twice.
    child = rig.process("learner", name, env, "-v", "learner").start()
    try:
        first = None
        deadline = time.monotonic() + 600
        while not wanted <= (done := await decided(settings)):
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


DISK_BYTES = 1 << 30
"""The disk-full scenario's broker disk: room for the whole run, until the ballast fills it."""


async def broker_disk_full(rig: FaultRig, plan: FaultPlan) -> ScenarioResult:
    name = "broker-disk-full"
    disk = rig.disk
    if disk is None:
        raise RuntimeError("broker-disk-full needs the rig's broker on a disk of its own")
    async with stream(rig, name, plan, 3) as (settings, worker, traffic, sending):
        total = len(traffic.messages()) + len(traffic.feedback())
        await wait_until(lambda: traffic.sent >= total // 3 or sending.done(), timeout=300,
                         what="a third of the traffic")
        filled = await asyncio.to_thread(disk.fill)
        rig.say(f"  the broker's disk is full ({filled / 1e6:.0f} MB of ballast written)")

        def broker_stopped() -> bool:
            return not rig.kafka.status().running

        # Kafka takes a log folder it cannot write offline and halts with its only one.
        await wait_until(broker_stopped, timeout=180, what="the broker stopping on a full disk")
        rig.say("  the broker stopped by itself; an operator frees space and starts it")
        await asyncio.to_thread(disk.free)
        back_at = await asyncio.to_thread(rig.start_stopped_broker)
        await worker.wait_handling_again("the worker handling messages after the disk was freed")
        recovery = [time.monotonic() - back_at]
        ledger = await drain(settings, worker, sending)
    return ScenarioResult(name, ledger, 1, recovery, worker.unplanned_restarts)


async def _answered(settings: Settings, request_id: str) -> bool:
    return request_id in await decided(settings)


SCENARIOS = {
    "worker-kill": worker_kill,
    "broker-restart": broker_restart,
    "broker-kill": broker_kill,
    "learner-kill": learner_kill,
    "serving-broker-restart": serving_broker_restart,
    "broker-disk-full": broker_disk_full,
}
DISK_SCENARIOS = {"broker-disk-full": DISK_BYTES}
"""Scenarios whose broker runs on a disk of its own, and its size."""


async def run_scenario(rig: FaultRig, name: str, plan: FaultPlan) -> ScenarioResult:
    """Run one scenario by name; its wall time is recorded in the result."""
    started = time.monotonic()
    rig.say(f"{name}: ...")
    result = await SCENARIOS[name](rig, plan)
    result.seconds = time.monotonic() - started
    verdict = "ok" if result.ok else "; ".join(result.ledger.problems())
    rig.say(f"{name}: {verdict} ({result.seconds:.0f} s)")
    return result
