"""Helpers of the stream tests: the worker as a real subprocess, and event builders.

The worker is configured only through DRIFTLOOP_* variables, the way an operator would run
it; readiness and progress are read from its own ``/health`` and ``/metrics`` pages, with
deadlines. (Kept out of conftest.py: test modules import these by a unique module name.)
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from pathlib import Path

import numpy as np
from aiokafka import TopicPartition
from kafka_helpers import free_port
from waiting import wait_until, wait_until_async

from driftloop.client.kafka import admin_client
from driftloop.schemas import Feedback, Interaction, Topic, encode_batch
from driftloop.schemas.settings import Settings
from driftloop.streams.partitioning import task_partition
from driftloop.streams.watchdog import STALL_EXIT_CODE

ROOT = Path(__file__).resolve().parents[2]



class WorkerProcess:
    """``driftloop worker`` in a subprocess; start, wait on metrics, stop or kill -9."""

    def __init__(self, settings: Settings, data_dir: Path, extra_env: dict[str, str]) -> None:
        self.port = free_port()
        self.log_path = data_dir / "worker.log"
        self.env = {
            **os.environ,
            "DRIFTLOOP_KAFKA__BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers,
            "DRIFTLOOP_KAFKA__TOPIC_PREFIX": settings.kafka.topic_prefix,
            "DRIFTLOOP_WORKER__WEB_PORT": str(self.port),
            "DRIFTLOOP_WORKER__DATA_DIR": str(data_dir),
            **extra_env,
        }
        self.proc: subprocess.Popen[bytes] | None = None
        # Like a supervisor: restart a worker the stall watchdog ended (exit 75). Off by
        # default, so the tests that count watchdog exits still see them.
        self.restart_on_stall = False
        self.stall_restarts = 0

    def start(self, timeout: float = 60.0) -> WorkerProcess:
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "driftloop"), "worker", "--loglevel", "INFO"],
            env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
        self.wait_for(lambda text: "driftloop_worker_start_time_seconds " in text, timeout,
                      "the worker's /metrics page")
        return self

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5) as resp:
            return resp.read().decode()

    def value(self, name: str, **labels: str) -> float:
        """Sum of the samples of ``name`` whose labels include ``labels`` (0 if none)."""
        total = 0.0
        for line in self.metrics().splitlines():
            if not line.startswith((name + "{", name + " ")):
                continue
            head, _, number = line.rpartition(" ")
            if all(f'{k}="{v}"' in head for k, v in labels.items()):
                total += float(number)
        return total

    def wait_for(self, ready: Callable[[str], bool], timeout: float, what: str) -> str:
        last = ""

        def ready_page() -> str | None:
            nonlocal last
            if self.proc is not None and self.proc.poll() is not None:
                if self.restart_on_stall and self.proc.returncode == STALL_EXIT_CODE:
                    self.stall_restarts += 1
                    self.start()
                    return None
                raise AssertionError(f"worker exited with {self.proc.returncode}:\n{self.tail()}")
            try:
                last = self.metrics()
                return last if ready(last) else None
            except OSError:
                return None

        return wait_until(ready_page, timeout, what,
                          seen=lambda: f"{last[-3000:]}\n{self.tail()}")

    def wait_value(self, name: str, at_least: float, timeout: float = 60.0, **labels: str) -> None:
        try:
            self.wait_for(lambda _: self.value(name, **labels) >= at_least, timeout,
                          f"{name}{labels} >= {at_least}")
        except AssertionError as exc:  # the metric's own lines, which the tail may have cut
            try:
                lines = [line for line in self.metrics().splitlines() if line.startswith(name)]
            except OSError:
                lines = []
            raise AssertionError("\n".join([str(exc), *lines])) from None

    def tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait: the graceful path."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def kill(self) -> None:
        """kill -9: no chance to flush or commit."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()


# Small trigger and detector settings so the tests are short; everything else is default.
FAST_ENV = {
    "DRIFTLOOP_WORKER__TRIGGERS__MIN_EXAMPLES": "16",
    "DRIFTLOOP_WORKER__TRIGGERS__COOLDOWN_S": "0",
    # No learner answers in these tests: each trigger is tested alone, without the regime
    # schedule, and without a request in flight holding the next (test_shifts.py has those).
    "DRIFTLOOP_WORKER__TRIGGERS__REGIME_GROWTH": "none",
    "DRIFTLOOP_WORKER__TRIGGERS__MAX_IN_FLIGHT": "0",
    "DRIFTLOOP_WORKER__COMMIT_INTERVAL_S": "0.5",
    "DRIFTLOOP_WORKER__SESSION_TIMEOUT_S": "6",
    "DRIFTLOOP_WORKER__STALL_TIMEOUT_S": "10",
}


def interactions(n: int, *, start: int = 0, task: str = "sentiment", domain: str = "news",
                 shift: float = 0.0, dim: int = 16, seed: int = 0) -> list[Interaction]:
    """Interactions with an embedding around a fixed centre, moved by ``shift``."""
    rng = np.random.default_rng([seed, start])
    centre = np.ones(dim)
    moved = centre.copy()
    moved[: dim // 2] -= 2 * shift  # rotates the direction: a distribution shift
    vectors = rng.normal(size=(n, dim)) * 0.5 + moved
    confidences = rng.beta(8, 2, n)
    return [Interaction(id=f"i-{start + i}", ts=1_700_000_000.0 + start + i, task=task,
                        domain=domain, model_version="v1", input=text_of(start + i),
                        prediction="pos" if i % 2 else "neg",
                        scores={"confidence": float(confidences[i])},
                        embedding=vectors[i].round(5).tolist())
            for i in range(n)]


def text_of(n: int) -> str:
    """A unique input text for interaction ``n``, alike for every ``n``: the texts of a stream
    do not drift (a counter's digits would, and the worker watches the input's bigrams)."""
    return "text " + hashlib.sha256(str(n).encode()).hexdigest()[:12]


def feedback_for(items: list[Interaction], *, task: str = "sentiment") -> list[Feedback]:
    return [Feedback(id=f"f-{x.id}", interaction_id=x.id, ts=x.ts + 1, task=task, kind="label",
                     value="pos" if int(x.id.split("-")[1]) % 3 else "neg") for x in items]


def batches(events: list, size: int = 500) -> list[bytes]:
    return [encode_batch(events[i:i + size]) for i in range(0, len(events), size)]


def task_on(partition: int, partitions: int = 6, prefix: str = "task") -> str:
    """The first name ``<prefix><n>`` whose key Kafka's default partitioner sends to
    ``partition`` (of ``partitions``): producers key by task, so the task picks the partition."""
    n = 0
    while task_partition(f"{prefix}{n}", partitions) != partition:
        n += 1
    return f"{prefix}{n}"


async def wait_committed(settings: Settings, ends: dict[tuple[Topic, int], int],
                         timeout: float = 30.0) -> None:
    """Wait until the worker group's committed offsets reach ``ends`` (offset per topic and
    partition). Faust flushes its producer before it commits, so every table write of the
    committed messages is then on the broker."""
    group = f"{settings.kafka.topic_prefix}{settings.worker.app_id}"
    wanted = {TopicPartition(settings.kafka.topic(t), p): end for (t, p), end in ends.items()}
    async with admin_client(settings) as admin:
        have: dict[TopicPartition, int] = {}

        async def committed() -> bool:
            found = await admin.list_consumer_group_offsets(group, partitions=list(wanted))
            have.update({tp: (found[tp].offset if tp in found else -1) for tp in wanted})
            return all(have[tp] >= end for tp, end in wanted.items())

        await wait_until_async(committed, timeout, f"group {group} committed {wanted}",
                               seen=lambda: f"committed {have}")
