"""What the fault scenarios run on: a broker of their own, the components as processes, traffic.

The rig owns its Kafka broker (a :class:`LocalKafka` in a temporary folder, on free ports) so
a scenario may stop and restart it. Each scenario gets a fresh topic prefix, so its accounting
covers its own traffic only. The worker, the learner and the service run as real
``driftloop`` processes (:class:`ChildProcess`), killed with SIGKILL or stopped with SIGTERM
as an orchestrator would.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from ....client.kafka import new_producer
from ....schemas import Feedback, Interaction, TrainingRequest, encode, encode_batch
from ....schemas.enums import FeedbackKind, TaskKind, TriggerKind
from ....schemas.settings import Settings
from ....schemas.topics import TRAINING_REQUEST_MAX_BYTES, Topic
from ...demo.processes import ChildProcess, driftloop_env
from ...demo.vader import balanced_sample, read_domain
from ...kafka.local_broker import LocalKafka
from ...kafka.topic_admin import create_topics
from .disk import SmallDisk

__all__ = ["FaultRig", "Traffic", "free_port", "training_request"]

TASK = "faults"
LABELS = ("negative", "positive")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def free_ports(count: int) -> list[int]:
    """``count`` distinct free ports: held open together while the kernel picks them (two
    calls of :func:`free_port` can return the same port, and a broker then refuses its
    listeners: seen in a fault-bench test run).

    >>> a, b = free_ports(2)
    >>> a != b
    True
    """
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


class FaultRig:
    """A broker of its own and the ``driftloop`` processes of one scenario at a time.

    Examples
    --------
    >>> import tempfile
    >>> rig = FaultRig(Settings(), Path(tempfile.mkdtemp()))
    >>> rig.settings_for("worker-kill").kafka.topic_prefix.endswith("worker-kill.")
    True
    """

    def __init__(self, base: Settings, workdir: Path, *,
                 say: Callable[[str], None] = lambda _: None) -> None:
        self.base = base
        self.workdir = workdir
        self.say = say
        self.run_id = f"faults{int(time.time())}"
        self.kafka = self._new_broker("kafka")
        self.disk: SmallDisk | None = None

    def _new_broker(self, folder: str) -> LocalKafka:
        port, controller_port = free_ports(2)
        return LocalKafka(home=self.workdir / folder, port=port,
                          controller_port=controller_port, die_with_parent=True)

    # -- the broker --------------------------------------------------------------------------

    def start_broker(self, scenario: str | None = None, *,
                     disk_bytes: int | None = None) -> None:
        """Start a fresh broker (one per scenario: a restart in one must not reach the next).

        A broker restarted by the broker-restart scenario answered its worker but then
        refused the next scenario's CreateTopics for over a minute on a loaded machine.
        With ``disk_bytes``, its data folder is a disk of that size of its own
        (:attr:`disk`; :class:`~.disk.DiskUnavailable` when this machine cannot mount one).
        """
        if scenario is not None:
            self.kafka = self._new_broker(f"{scenario}/kafka")
        if disk_bytes is not None:
            self.disk = SmallDisk(self.kafka.data_dir, size_bytes=disk_bytes)
            self.disk.mount()
        self.kafka.start(timeout=120)

    def stop_broker(self) -> None:
        self.kafka.stop(timeout=60)
        if self.disk is not None:
            self.disk.unmount()
            self.disk = None

    def start_stopped_broker(self) -> float:
        """Start the broker again on its data after it stopped by itself; when it is back."""
        self.kafka.kill()  # a broker that halted leaves its pid file; nothing else runs
        self.kafka.start(timeout=120)
        self.say("  broker back")
        return time.monotonic()

    def restart_broker(self, outage_s: float, *, crash: bool = False) -> float:
        """Stop the broker (SIGKILL with ``crash``), keep it down ``outage_s`` seconds, start
        it; when it is back."""
        self.say(f"  {'kill -9' if crash else 'stopping'} the broker for {outage_s:.0f} s ...")
        if crash:
            self.kafka.kill()
        else:
            self.kafka.stop(timeout=60)
        time.sleep(outage_s)  # the outage itself: the fault being injected, not a wait
        self.kafka.start(timeout=120)
        self.say("  broker back")
        return time.monotonic()

    # -- one scenario's deployment ---------------------------------------------------------

    def settings_for(self, scenario: str) -> Settings:
        kafka = self.base.kafka.model_copy(update={
            "bootstrap_servers": self.kafka.bootstrap_servers,
            "topic_prefix": f"{self.run_id}-{scenario}."})
        artifacts = self.base.artifacts.model_copy(
            update={"store_url": str(self.workdir / scenario / "artifacts")})
        return self.base.model_copy(update={"kafka": kafka, "artifacts": artifacts})

    def deploy(self, scenario: str) -> Settings:
        settings = self.settings_for(scenario)
        create_topics(settings)
        return settings

    def env(self, settings: Settings, scenario: str, **extra: str) -> dict[str, str]:
        """DRIFTLOOP_* variables of the three components (each reads what it needs)."""
        d, folder = "DRIFTLOOP_", self.workdir / scenario
        return {
            **driftloop_env(settings, {TASK: {"kind": TaskKind.CLASSIFICATION,
                                             "labels": list(LABELS)}}),
            f"{d}WORKER__APP_ID": f"driftloop-{settings.kafka.topic_prefix.rstrip('.')}",
            f"{d}WORKER__DATA_DIR": str(folder / "worker"),
            f"{d}WORKER__COMMIT_INTERVAL_S": "0.5",
            f"{d}WORKER__SESSION_TIMEOUT_S": "6",
            # No learner runs beside the worker scenarios: no training requests to account for.
            f"{d}WORKER__TRIGGERS__MIN_EXAMPLES": str(10**9),
            f"{d}LEARNER__GROUP_ID": f"learner-{settings.kafka.topic_prefix.rstrip('.')}",
            f"{d}LEARNER__CACHE_DIR": str(folder / "learner"),
            f"{d}LEARNER__TORCH_THREADS": "1",
            f"{d}LEARNER__MAX_LENGTH": "64",
            f"{d}SERVING__REPLICA_ID": "faults-replica",
            f"{d}SERVING__CACHE_DIR": str(folder / "serving"),
            f"{d}SERVING__TORCH_THREADS": "1",
            **extra,
        }

    def process(self, name: str, scenario: str, env: Mapping[str, str],
                *args: str) -> ChildProcess:
        """A ``driftloop ARGS`` process of this scenario (not started)."""
        import os
        import sys

        return ChildProcess(name, [sys.executable, "-m", "driftloop.tools", *args],
                            env={**os.environ, **env},
                            log_path=self.workdir / scenario / "logs" / f"{name}.log")


def metrics_text(port: int) -> str | None:
    """A process's ``/metrics`` page, or None while it does not answer."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            return response.read().decode()
    except OSError:
        return None


@dataclass(slots=True)
class Traffic:
    """Interactions in batch envelopes, feedback for some of them, and poison, at a set pace.

    Every ``poison_every``-th message is bad: alternately bytes that are not JSON at all and
    an envelope with one event of a wrong type among good ones. Sends retry until the broker
    takes them (a broker restart must not lose input), so the topics hold at least what was
    meant (at least once); the accounting counts what the topics hold.

    Examples
    --------
    >>> traffic = Traffic(events=100, batch=10, rate=50.0)
    >>> [len(m) > 0 for m in traffic.messages()][:3], len(traffic.messages())
    ([True, True, True], 10)
    """

    events: int
    batch: int = 20
    rate: float = 40.0  # messages per second
    feedback_share: float = 0.2
    poison_every: int = 25
    seed: int = 0
    sent: int = 0

    def messages(self) -> list[bytes]:
        rng = np.random.default_rng(self.seed)
        vectors = (rng.normal(size=(self.events, 8)) * 0.5 + 1.0).round(4)
        confidences = rng.beta(8, 2, self.events)
        items = [Interaction(id=f"x-{i}", ts=1_700_000_000.0 + i, task=TASK, domain="d",
                             model_version="v1", input=f"input {i}", prediction="positive",
                             scores={"confidence": float(confidences[i])},
                             embedding=vectors[i].tolist()) for i in range(self.events)]
        out = []
        for n, start in enumerate(range(0, self.events, self.batch)):
            raw = encode_batch(items[start:start + self.batch])
            if self.poison_every and n % self.poison_every == self.poison_every - 1:
                if (n // self.poison_every) % 2:
                    raw = b"\xff\xfe not json at all"
                else:
                    envelope = orjson.loads(raw)
                    envelope["events"][0]["scores"] = {"confidence": "very"}
                    raw = orjson.dumps(envelope)
            out.append(raw)
        return out

    def feedback(self) -> list[bytes]:
        rng = np.random.default_rng(self.seed + 1)
        chosen = np.flatnonzero(rng.random(self.events) < self.feedback_share)
        events = [Feedback(id=f"fb-{i}", interaction_id=f"x-{i}", ts=1_700_000_001.0 + i,
                           task=TASK, kind=FeedbackKind.LABEL, value=LABELS[i % 2]) for i in chosen]
        return [encode_batch(events[i:i + self.batch])
                for i in range(0, len(events), self.batch)]

    async def run(self, settings: Settings) -> None:
        """Send everything at :attr:`rate` messages per second, interleaving feedback."""
        interactions = self.messages()
        feedback = self.feedback()
        every = max(1, len(interactions) // max(1, len(feedback)))
        queue: list[tuple[Topic, bytes]] = []
        for n, raw in enumerate(interactions):
            queue.append((Topic.INTERACTIONS, raw))
            if n % every == every - 1 and feedback:
                queue.append((Topic.FEEDBACK, feedback.pop(0)))
        queue += [(Topic.FEEDBACK, raw) for raw in feedback]
        sender = _PersistentSender(settings)
        try:
            for topic, raw in queue:
                await sender.send(settings.kafka.topic(topic), raw, TASK.encode())
                self.sent += 1
                await asyncio.sleep(1.0 / self.rate)  # the pace of the traffic
        finally:
            await sender.close()


class _PersistentSender:
    """A producer that keeps trying through a broker outage, as a production service would.

    At-least-once on purpose (no idempotence): an idempotent producer's sequence numbers met
    ``OutOfOrderSequenceNumber`` after a broker restart here, a fatal error for that producer.
    A record sent twice is two records on the topic, and the accounting counts the topic.
    """

    def __init__(self, settings: Settings, *, give_up_s: float = 180.0) -> None:
        self.settings = settings
        self.give_up_s = give_up_s
        self._producer: AIOKafkaProducer | None = None

    async def _ready(self) -> AIOKafkaProducer:
        if self._producer is None:
            producer = new_producer(self.settings, request_timeout_ms=10_000,
                                    retry_backoff_ms=250)
            await producer.start()
            self._producer = producer
        return self._producer

    async def send(self, topic: str, value: bytes, key: bytes | None) -> None:
        deadline = time.monotonic() + self.give_up_s
        while True:
            try:
                producer = await self._ready()
                await producer.send_and_wait(topic, value, key=key)
                return
            except KafkaError as exc:
                if time.monotonic() > deadline:
                    raise
                if not getattr(exc, "retriable", False):
                    await self.close()  # a fatal error of this producer: start a new one
                await asyncio.sleep(0.5)  # back off while the broker is away

    async def close(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(KafkaError):
                await producer.stop()


def training_request(request_id: str, *, n: int, seed: int) -> TrainingRequest:
    """A training request of real VADER tweets for the fault task."""
    examples = [{"input": e.text, "target": e.label}
                for e in balanced_sample(read_domain("tweets"), n, seed=seed)]
    return TrainingRequest(id=request_id, ts=time.time(), task=TASK, trigger=TriggerKind.MANUAL,
                           labels=list(LABELS), examples=examples)


async def send_requests(settings: Settings, requests: list[TrainingRequest]) -> None:
    async with new_producer(settings, max_request_size=TRAINING_REQUEST_MAX_BYTES) as producer:
        for request in requests:
            await producer.send_and_wait(settings.kafka.topic(Topic.TRAINING_REQUESTS),
                                         encode(request), key=TASK.encode())
