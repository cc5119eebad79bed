"""``driftloop bench freshness``: from a training trigger to the first answer of its version.

On the configured broker, under a topic prefix of its own, the real worker, learner and
service run as child processes (``driftloop worker``, ``learner`` and ``serve``), with the
learner's default settings and the worker's automatic triggers off, so that every update is
one the benchmark asked for. The task gets a bad first version (tweets with their labels
swapped, :data:`BOOTSTRAP_EXAMPLES`), then, each round:

1. labelled tweets go through ``/predict`` and ``/feedback``, as a service's users
   would send them, until the worker has joined enough for one request (``--examples``, the
   worker's ``buffer.batch_size``; the replayed share comes from the buffer);
2. a manual trigger goes to the worker (``driftloop worker trigger``): the clock starts
   when the worker fires it (the request's ``ts``);
3. the learner trains, gates, stores and publishes; once the version is on
   ``model-versions``, a client asks ``/predict`` back to back (monitoring traffic, never
   learnt from) until an answer names the version: the clock stops;
4. a promoted version is rolled back (``driftloop versions rollback``), so that the next
   round's candidate again starts from the bad first version and has something to beat.

Each promoted update's path is split into phases from the stamps its events carry
(:mod:`.freshness_path`); the table shows the median of each phase, p50 and p95 of the
whole, and the ratio of the whole to the update alone (the learner's own ``update_seconds``,
the work no plumbing can remove): the baseline of this benchmark.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from ..cli import settings_from
from ..options import bootstrap_servers_option, json_option, print_json, text_to_stderr
from .freshness_path import PHASES, UpdatePath, spread, update_path

__all__ = ["freshness"]

TASK = "fresh"
LABELS = ("negative", "positive")
BOOTSTRAP_EXAMPLES = 32
"""Tweets the first version learns from, their labels swapped: it answers tweets mostly
wrong, so each round's candidate (trained from it on correctly labelled tweets) is clearly
better and the gate promotes it on its own tests. From a merely weak start (true labels, a
request of movie reviews) candidates moved by 2-5 points, too few for the gate."""
_WAIT_S = 300.0
_POLL_S = 0.002


@click.command()
@click.option("--updates", type=click.IntRange(min=1), default=20, show_default=True,
              help="Promoted updates to time.")
@click.option("--examples", type=click.IntRange(min=16), default=128, show_default=True,
              help="Examples per training request (new and replayed).")
@click.option("--threads", type=click.IntRange(min=1), default=2, show_default=True,
              help="torch threads of the learner (the service gets one).")
@click.option("--max-rounds", type=click.IntRange(min=1), default=None,
              help="Rounds before giving up on --updates promotions [default: 2 x updates "
                   "+ 3]; a rejected candidate is counted, not timed.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Order of the texts the users send.")
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Keep the children's logs, store and state here [default: a temporary "
                   "folder, removed].")
@json_option
@bootstrap_servers_option()
@click.pass_context
def freshness(ctx: click.Context, updates: int, examples: int, threads: int,
              max_rounds: int | None, seed: int, workdir: Path | None, as_json: bool) -> None:
    """Trigger -> first /predict answer by the promoted version, in phases (real broker,
    worker, learner and service)."""
    settings = settings_from(ctx)
    with text_to_stderr(as_json):
        run = FreshnessRun(settings, updates=updates, examples=examples, threads=threads,
                           max_rounds=max_rounds or 2 * updates + 3, seed=seed, say=click.echo)
        if workdir is None:
            with tempfile.TemporaryDirectory(prefix="driftloop-freshness-") as tmp:
                run.run(Path(tmp))
        else:
            workdir.mkdir(parents=True, exist_ok=True)
            run.run(workdir)
        click.echo(render(run))
    if as_json:
        print_json(document(run))


@dataclass(slots=True)
class Round:
    """One trigger and what came of it."""

    number: int
    version_id: str | None = None
    status: str | None = None
    trigger_to_request: float | None = None
    """Command sent -> the worker fired (its handling of the manual trigger)."""
    path: UpdatePath | None = None
    reason: str = ""
    """The gate's reason (why a candidate was rejected)."""


@dataclass(slots=True)
class _Seen:
    """The records of the run's topics, with their Kafka timestamps (seconds)."""

    requests: list[tuple[Any, float]] = field(default_factory=list)
    versions: list[tuple[Any, float]] = field(default_factory=list)
    acks: list[Any] = field(default_factory=list)
    promoted_commands: set[str] = field(default_factory=set)


class FreshnessRun:
    """The deployment of one run and its rounds (see the module docstring)."""

    def __init__(self, settings: Any, *, updates: int, examples: int, threads: int,
                 max_rounds: int, seed: int, say: Callable[[str], None]) -> None:
        self.base = settings
        self.updates, self.examples, self.threads = updates, examples, threads
        self.max_rounds, self.seed, self.say = max_rounds, seed, say
        self.rounds: list[Round] = []
        self.seen = _Seen()
        self.first_version: str | None = None
        self.settings = settings  # the run's own (topic prefix, store) once it starts
        self.serve_port = self.worker_port = 0
        self.children: Any = None
        self.endpoints: Any = None
        self.texts: list[tuple[str, str]] = []
        self._following: asyncio.Task[None] | None = None

    # -- the deployment ----------------------------------------------------------------------
    def run(self, folder: Path) -> None:
        """Deploy in ``folder`` (the children's logs, store and state), run every round,
        take the deployment and its topics down."""
        from ..demo.processes import ChildProcesses, sigterm_as_interrupt
        from ..kafka.topic_admin import create_topics, delete_topics

        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        run_id = f"fresh{uuid.uuid4().hex[:8]}"
        folder = folder / run_id
        self.settings = self.base.model_copy(update={
            "kafka": self.base.kafka.model_copy(update={
                "topic_prefix": f"{self.base.kafka.topic_prefix}{run_id}."}),
            "artifacts": self.base.artifacts.model_copy(
                update={"store_url": str(folder / "artifacts")})})
        create_topics(self.settings)
        try:
            env = self._env(folder, run_id)
            with sigterm_as_interrupt(), ChildProcesses(folder / "logs",
                                                       env={**os.environ, **env}) as kids:
                kids.driftloop("worker", "worker", "--loglevel", "WARNING")
                kids.driftloop("learner", "-v", "learner")
                kids.driftloop("serve", "serve")
                self.children = kids
                asyncio.run(self._main())
        finally:
            delete_topics(self.settings)

    def _env(self, folder: Path, run_id: str) -> dict[str, str]:
        from ..demo.processes import driftloop_env
        from .faults.rig import free_ports

        self.serve_port, self.worker_port = free_ports(2)
        d = "DRIFTLOOP_"
        return {
            **driftloop_env(self.settings, {TASK: {"kind": "classification",
                                                   "labels": list(LABELS)}}),
            f"{d}WORKER__APP_ID": f"driftloop-{run_id}",
            f"{d}WORKER__WEB_PORT": str(self.worker_port),
            f"{d}WORKER__DATA_DIR": str(folder / "worker"),
            f"{d}WORKER__BUFFER__BATCH_SIZE": str(self.examples),
            # Only the benchmark's triggers: no drift, metric or schedule request in between.
            f"{d}WORKER__TRIGGERS__ON_DRIFT": "false",
            f"{d}WORKER__TRIGGERS__REGIME_GROWTH": "null",
            f"{d}WORKER__TRIGGERS__METRIC_MAX_DROP": "null",
            f"{d}WORKER__TRIGGERS__MAX_INTERVAL": str(10 ** 9),
            f"{d}LEARNER__GROUP_ID": f"driftloop-learner-{run_id}",
            f"{d}LEARNER__TORCH_THREADS": str(self.threads),
            f"{d}LEARNER__CACHE_DIR": str(folder / "learner"),
            f"{d}SERVING__PORT": str(self.serve_port),
            f"{d}SERVING__REPLICA_ID": "freshness",
            f"{d}SERVING__CACHE_DIR": str(folder / "serving"),
            f"{d}SERVING__TORCH_THREADS": "1",
        }

    async def _main(self) -> None:
        from ..demo.endpoints import DemoEndpoints
        from ..demo.processes import wait_until

        follow = self._following = asyncio.create_task(self._follow())
        try:
            async with DemoEndpoints(self.serve_port, self.worker_port) as endpoints:
                self.endpoints = endpoints
                await wait_until(self._ready, timeout=180, what="the worker and the service",
                                 check=self._check)
                self.texts = self._texts()
                await self._first_version()
                for number in range(1, self.max_rounds + 1):
                    if self.promoted() >= self.updates:
                        break
                    self.rounds.append(await self._round(number))
                    self._said(self.rounds[-1])
        finally:
            follow.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await follow
        if self.promoted() < self.updates:
            raise click.ClickException(
                f"only {self.promoted()} of {len(self.rounds)} candidates were promoted "
                f"(wanted {self.updates}); the learner's log says why")

    def _check(self) -> None:
        """Raise when a child died or the topic reader stopped (every wait calls it)."""
        self.children.check()
        if self._following is not None and self._following.done():
            self._following.result()  # its exception, if any
            raise click.ClickException("the benchmark stopped reading its topics")

    async def _ready(self) -> bool:
        return await self.endpoints.worker_ok() and await self.endpoints.serve_ok()

    # -- what the topics say -----------------------------------------------------------------
    async def _follow(self) -> None:
        """Read the run's requests, versions, acks and the worker's promoted commands."""
        from ...client.kafka import new_consumer
        from ...schemas import (
            ModelVersion,
            ServingAck,
            Topic,
            TrainingRequest,
            decode,
        )
        from ...schemas.commands import COMMAND_HEADER, CommandKind, decode_command
        from ...schemas.topics import TRAINING_REQUEST_MAX_BYTES

        topic = self.settings.kafka.topic
        kinds = {topic(Topic.TRAINING_REQUESTS): TrainingRequest,
                 topic(Topic.MODEL_VERSIONS): ModelVersion, topic(Topic.SERVING_ACKS): ServingAck}
        feedback = topic(Topic.FEEDBACK)
        async with new_consumer(self.settings, *kinds, feedback,
                                auto_offset_reset="earliest",
                                fetch_max_bytes=2 * TRAINING_REQUEST_MAX_BYTES,
                                max_partition_fetch_bytes=TRAINING_REQUEST_MAX_BYTES) as consumer:
            while True:
                batches = await consumer.getmany(timeout_ms=100)
                for records in batches.values():
                    for record in records:
                        stamp = record.timestamp / 1000.0
                        if record.topic == feedback:
                            if COMMAND_HEADER in dict(record.headers or ()):
                                command = decode_command(record.value)
                                if command.kind is CommandKind.PROMOTED:
                                    self.seen.promoted_commands.add(command.id)
                            continue
                        event = decode(record.value, kinds[record.topic],
                                       max_bytes=TRAINING_REQUEST_MAX_BYTES)
                        if record.topic == topic(Topic.TRAINING_REQUESTS):
                            self.seen.requests.append((event, stamp))
                        elif record.topic == topic(Topic.MODEL_VERSIONS):
                            self.seen.versions.append((event, stamp))
                        else:
                            self.seen.acks.append(event)

    def _version_for(self, request_id: str) -> tuple[Any, float] | None:
        for event, stamp in self.seen.versions:
            if event.training_request_id == request_id and event.status.value in (
                    "promoted", "rejected"):
                return event, stamp
        return None

    def _ack_of(self, version_id: str) -> Any | None:
        return next((a for a in self.seen.acks if a.version_id == version_id
                     and a.status.value == "serving"), None)

    def promoted(self) -> int:
        return sum(1 for r in self.rounds if r.path is not None)

    # -- the task's first version ------------------------------------------------------------
    def _texts(self) -> list[tuple[str, str]]:
        """The users' tweets, in the seed's order, without those of the first version."""
        from ..demo.vader import read_domain

        first = {text for text, _ in self._first_examples()}
        tweets = [(e.text, e.label) for e in read_domain("tweets") if e.text not in first]
        random.Random(self.seed).shuffle(tweets)
        return tweets

    def _first_examples(self) -> list[tuple[str, str]]:
        """The first version's tweets, each with the other label."""
        from ..demo.vader import balanced_sample, read_domain

        return [(e.text, _swapped(e.label))
                for e in balanced_sample(read_domain("tweets"), BOOTSTRAP_EXAMPLES,
                                         seed=self.seed)]

    async def _first_version(self) -> None:
        """Train the bad first version from mislabelled tweets (another order when the gate
        refuses one) and wait until the service answers with it."""
        from ...schemas import TrainingRequest, TriggerKind
        from ..demo.processes import wait_until
        from .faults.rig import send_requests

        for attempt in range(3):
            order = self._first_examples()
            random.Random(attempt).shuffle(order)
            request = TrainingRequest(
                id=f"freshness-first-{attempt}", ts=time.time(), task=TASK,
                trigger=TriggerKind.MANUAL, reason="bench freshness: the first version",
                labels=list(LABELS), examples=[{"input": text, "target": label,
                                                "domain": "tweets"} for text, label in order])
            await send_requests(self.settings, [request])
            await wait_until(lambda rid=request.id: self._version_for(rid) is not None,
                             timeout=_WAIT_S, what="the first version", check=self._check)
            event, _ = self._version_for(request.id)  # type: ignore[misc]
            if event.status.value == "promoted":
                self.first_version = event.version_id
                await self._answered_by(event.version_id, _WAIT_S)
                self.say(f"first version {event.version_id} served")
                return
        raise click.ClickException("the learner refused three first versions; see its log")

    # -- one round ---------------------------------------------------------------------------
    async def _round(self, number: int) -> Round:
        from ...schemas.commands import manual_trigger
        from ...streams.control import send_commands
        from ..demo.processes import wait_until

        await self._label(self._new_examples())
        already = len(self.seen.requests)
        command = manual_trigger(TASK, reason=f"bench freshness round {number}")
        sent = time.time()
        await send_commands(self.settings, [command])
        await wait_until(lambda: len(self.seen.requests) > already, timeout=_WAIT_S,
                         what=f"round {number}'s training request", check=self._check,
                         interval=0.01)
        request, request_sent = self.seen.requests[already]
        await wait_until(lambda: self._version_for(request.id) is not None, timeout=_WAIT_S,
                         what=f"the learner's answer to {request.id}", check=self._check,
                         interval=0.005)
        version, version_sent = self._version_for(request.id)  # type: ignore[misc]
        result = Round(number, version.version_id, version.status.value,
                       trigger_to_request=request.ts - sent, reason=version.reason)
        if version.status.value != "promoted":
            return result
        first_answer = await self._answered_by(version.version_id, 60.0)
        await wait_until(lambda: self._ack_of(version.version_id) is not None, timeout=60,
                         what=f"the replica's ack of {version.version_id}", check=self._check)
        result.path = update_path(request=request, request_sent=request_sent, version=version,
                                  version_sent=version_sent,
                                  ack=self._ack_of(version.version_id),
                                  first_answer=first_answer)
        await self._roll_back()
        return result

    def _new_examples(self) -> int:
        """New labelled texts one request needs beside the replayed share of the buffer (at
        least what any trigger needs, the worker's ``triggers.min_examples``)."""
        worker = self.settings.worker
        return max(worker.triggers.min_examples,
                   round(self.examples * (1 - worker.buffer.replay_ratio)) + 4)

    async def _label(self, count: int) -> None:
        """Send ``count`` tweets through /predict, label each through /feedback, and wait
        until the worker has joined them all."""
        from ..demo.processes import wait_until

        joined = await self._joined()
        batch = [self.texts.pop() for _ in range(count)]
        ids = [f"i-{uuid.uuid4().hex}" for _ in batch]
        size = self.settings.serving.max_inputs
        for start in range(0, count, size):
            status, body = await self.endpoints.post("/predict", {
                "task": TASK, "inputs": [text for text, _ in batch[start:start + size]],
                "ids": ids[start:start + size]})
            if status != 200:
                raise click.ClickException(f"/predict answered {status}: {body}")
        for interaction_id, (_, label) in zip(ids, batch, strict=True):
            status, body = await self.endpoints.post("/feedback", {
                "interaction_id": interaction_id, "task": TASK, "kind": "label",
                "value": label})
            if status != 202:
                raise click.ClickException(f"/feedback answered {status}: {body}")

        async def all_joined() -> bool:
            return await self._joined() >= joined + count

        await wait_until(all_joined, timeout=_WAIT_S, what=f"the worker to join {count} labels",
                         check=self._check, interval=0.05)

    async def _joined(self) -> float:
        from ..ops.accounting import metric

        text = await self.endpoints.get_text(self.endpoints.worker + "/metrics")
        return -1.0 if text is None else metric(text, "driftloop_worker_events_total",
                                                task=TASK, kind="joined")

    async def _answered_by(self, version_id: str, timeout: float) -> float:
        """Ask /predict back to back (monitoring traffic) until an answer names the
        version; when that answer came back (wall clock)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check()
            status, body = await self.endpoints.post(
                "/predict", {"task": TASK, "input": "a film worth seeing", "probe": True})
            if status == 200 and body.get("model_version") == version_id:
                return time.time()
            await asyncio.sleep(_POLL_S)  # a client's pace between two requests
        raise click.ClickException(f"no /predict answer by {version_id} within {timeout:.0f} s")

    async def _roll_back(self) -> None:
        """Roll the task back to its first version; wait until the service answers with it
        and the worker has the promotion that names it the parent again."""
        from ...learner.registry.version_log import VersionLog
        from ...learner.topics.versions import publish_with_new_producer
        from ..demo.processes import wait_until

        log = VersionLog().extend(event for event, _ in self.seen.versions)
        events = log.rollback_events(TASK, ts=time.time())
        await publish_with_new_producer(self.settings, events)
        restored = events[1]
        relayed = f"promoted-{restored.version_id}@{restored.ts!r}"
        await wait_until(lambda: relayed in self.seen.promoted_commands, timeout=60,
                         what="the worker's relay of the rollback", check=self._check,
                         interval=0.01)
        assert self.first_version is not None
        await self._answered_by(self.first_version, 60.0)

    def _said(self, result: Round) -> None:
        if result.path is None:
            self.say(f"round {result.number}: {result.version_id} {result.status} (not timed): "
                     f"{result.reason[:300]}")
        else:
            self.say(f"round {result.number}: {result.version_id} promoted, trigger -> first "
                     f"answer {result.path.total:.2f} s (update {result.path.update:.2f} s, "
                     f"{result.path.examples} examples)")


def _swapped(label: str) -> str:
    """The other label.

    >>> _swapped("negative"), _swapped("positive")
    ('positive', 'negative')
    """
    return LABELS[1 - LABELS.index(label)]


def _paths(run: FreshnessRun) -> list[UpdatePath]:
    return [r.path for r in run.rounds if r.path is not None]


def document(run: FreshnessRun) -> dict[str, Any]:
    """The run as JSON: every round, and the spread of the whole and of each phase."""
    paths = _paths(run)
    totals = [p.total for p in paths]
    return {
        "updates": len(paths), "rounds": len(run.rounds), "examples": run.examples,
        "threads": run.threads,
        "total_s": spread(totals),
        "update_s": spread([p.update for p in paths]),
        "ratio_total_to_update": statistics.median(p.total / p.update for p in paths),
        "trigger_command_s": spread([r.trigger_to_request for r in run.rounds
                                     if r.trigger_to_request is not None]),
        "phases_median_s": {name: statistics.median(p.phases[name] for p in paths)
                            for name, _ in PHASES},
        "rounds_detail": [{"round": r.number, "version": r.version_id, "status": r.status,
                           "trigger_to_request_s": r.trigger_to_request,
                           "total_s": r.path.total if r.path else None,
                           "phases_s": r.path.phases if r.path else None}
                          for r in run.rounds],
    }


def render(run: FreshnessRun) -> str:
    """The table people read: each phase's median and share, the whole's p50 and p95."""
    data = document(run)
    total = data["total_s"]
    lines = [f"{data['updates']} promoted updates of {data['examples']} examples in "
             f"{data['rounds']} rounds (learner: {data['threads']} torch threads)",
             f"{'phase':<16} {'median s':>9}  what"]
    for name, what in PHASES:
        lines.append(f"{name:<16} {data['phases_median_s'][name]:9.3f}  {what}")
    update = data["update_s"]
    lines += [f"trigger -> first answer: p50 {total['p50']:.2f} s, p95 {total['p95']:.2f} s, "
              f"max {total['max']:.2f} s",
              f"the update alone (baseline): p50 {update['p50']:.2f} s, p95 {update['p95']:.2f} s",
              f"ratio whole path / update alone (median): {data['ratio_total_to_update']:.2f}x",
              f"before the clock: manual trigger sent -> fired by the worker, p50 "
              f"{data['trigger_command_s']['p50']:.3f} s"]
    return "\n".join(lines)
