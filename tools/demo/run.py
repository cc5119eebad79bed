"""One run of the demo: broker, topics, children, bootstrap, stream, verdict, report.

:func:`run_demo` is what ``driftloop demo`` calls and what the end-to-end test asserts on.
Order of the end matters: the children stop first (their CPU is needed for the evaluation),
then the report is read from the topics, then the versions are scored in this process, and
only then is a broker the demo started itself stopped.
"""

from __future__ import annotations

import asyncio
import os
import random
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import aiohttp
import pydantic

from ...client.kafka import new_producer
from ...schemas import (
    LabelRequest,
    ModelVersion,
    TaskKind,
    Topic,
    TrainingExample,
    TrainingRequest,
    TriggerKind,
    VersionStatus,
    encode,
)
from ...schemas.errors import SettingsError
from ...schemas.settings import KafkaSettings, Settings
from ...schemas.topics import TRAINING_REQUEST_MAX_BYTES
from ..ops.accounting import metric
from .processes import (
    ChildProcesses,
    DemoChildError,
    DemoWaitTimeout,
    driftloop_env,
    sigterm_as_interrupt,
    wait_until,
)
from .progress import LoopObserver, ProgressLine, ProgressState
from .traffic import (
    DemoData,
    ServedPrediction,
    SimulatedReviewer,
    SimulatedUsers,
    TrafficDriver,
    build_demo_data,
)
from .verdict import DomainResult, Verdict, VersionScorer, live_results, render_table

__all__ = ["DemoProfile", "DemoResult", "run_demo"]

TASK = "sentiment"
LABELS = ("negative", "positive")
TASK_KINDS = {"classify": TaskKind.CLASSIFICATION, "generate": TaskKind.GENERATION}


@dataclass(frozen=True, slots=True)
class DemoProfile:
    """Sizes and pace of one demo (``quick`` or ``default``)."""

    per_domain: int
    heldout: int
    bootstrap: int
    rate: float  # predictions per second: the stream must be slow enough for the loop to react
    block_size: int
    warmup_blocks: int
    # Page-Hinkley on z-scores of blocks of 8: on the static model's embeddings of the VADER
    # stream these alerted 16-68 events after each domain change, with no alarm inside tweets
    # (the worker's defaults, tuned for long production streams, need ~1,000 events to warm up).
    threshold: float
    delta: float
    settle_s: float
    label_budget: int
    epochs: int
    min_examples: int  # new labelled examples per training request
    cooldown_s: float
    # A schedule beside drift and metric triggers: every N new labels. Without it a quick run
    # under load sometimes asked for only two updates, and two coin-toss gates decide nothing.
    every_examples: int
    # At each domain change the stream waits (up to this long) until the worker has every
    # label of the last domain and the learner has answered every training request: on a
    # slow or busy machine the updates otherwise arrive after the stream has moved on, and
    # live traffic never meets them (seen: a loaded quick run decided 2 of 6 requests).
    pause_s: float = 60.0  # 0: never wait
    # ``generate``: the same stream through SmolLM2-135M-Instruct under the ``sentiment``
    # prompt template, the class read from the generated answer.
    task: str = "classify"

    @classmethod
    def named(cls, quick: bool, task: str = "classify") -> DemoProfile:
        """The profile of a run.

        >>> DemoProfile.named(quick=True).per_domain, DemoProfile.named(False, "generate").task
        (125, 'generate')
        """
        if task not in TASK_KINDS:
            raise SettingsError(f"--task must be one of {sorted(TASK_KINDS)}, got {task!r}")
        if task == "generate":
            # A causal LM answers ~10x slower than the encoder classifies and an update costs
            # a minute on CPU: a slower, shorter stream; no embeddings or confidence reach
            # the worker, so drift comes from the error rate of the feedback.
            if quick:
                return cls(per_domain=30, heldout=24, bootstrap=48, rate=1.5, block_size=4,
                           warmup_blocks=3, threshold=6.0, delta=0.5, settle_s=150.0,
                           label_budget=8, epochs=2, min_examples=24, cooldown_s=20.0,
                           every_examples=32, task=task)
            return cls(per_domain=80, heldout=40, bootstrap=64, rate=1.5, block_size=4,
                       warmup_blocks=4, threshold=6.0, delta=0.5, settle_s=240.0,
                       label_budget=16, epochs=2, min_examples=32, cooldown_s=30.0,
                       every_examples=48, task=task)
        if quick:
            return cls(per_domain=125, heldout=50, bootstrap=128, rate=8.0, block_size=8,
                       warmup_blocks=4, threshold=8.0, delta=1.0, settle_s=20.0, label_budget=20,
                       epochs=2, min_examples=64, cooldown_s=12.0, every_examples=80)
        return cls(per_domain=400, heldout=150, bootstrap=256, rate=6.0, block_size=8,
                   warmup_blocks=4, threshold=8.0, delta=1.0, settle_s=45.0, label_budget=60,
                   epochs=3, min_examples=128, cooldown_s=20.0, every_examples=160)

    def task_settings(self) -> dict[str, object]:
        """The demo task's ``[tasks.sentiment]`` table for the children."""
        if self.task == "generate":
            return {"kind": TaskKind.GENERATION, "prompt_template_id": "sentiment"}
        return {"kind": TaskKind.CLASSIFICATION, "labels": list(LABELS)}


@dataclass(slots=True)
class DemoResult:
    """What a run did: the loop's events, the live traffic, the verdict and where things are."""

    run_id: str
    run_dir: Path
    settings: Settings
    state: ProgressState
    served: list[ServedPrediction]
    domain_starts: dict[str, float]
    bootstrap_version: str
    verdict: Verdict
    report_path: Path
    child_pids: dict[str, int] = field(default_factory=dict)
    exit_codes: dict[str, int | None] = field(default_factory=dict)
    feedback_sent: int = 0
    noisy_feedback: int = 0
    reviewer_answers: int = 0
    wall_s: float = 0.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _data_home() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "driftloop"


def child_env(settings: Settings, run_dir: Path, profile: DemoProfile, *, run_id: str,
              serve_port: int, worker_port: int) -> dict[str, str]:
    """DRIFTLOOP_* variables shared by the three children (each reads what it needs)."""
    d = "DRIFTLOOP_"
    return {
        **driftloop_env(settings, {TASK: profile.task_settings()}),
        # worker: its own consumer group and state per run; a short stream needs small blocks
        f"{d}WORKER__APP_ID": f"driftloop-{run_id}",
        f"{d}WORKER__WEB_PORT": str(worker_port),
        f"{d}WORKER__DATA_DIR": str(run_dir / "worker"),
        f"{d}WORKER__COMMIT_INTERVAL_S": "0.5",
        f"{d}WORKER__SESSION_TIMEOUT_S": "6",
        f"{d}WORKER__DRIFT__BLOCK_SIZE": str(profile.block_size),
        f"{d}WORKER__DRIFT__WARMUP_BLOCKS": str(profile.warmup_blocks),
        f"{d}WORKER__DRIFT__THRESHOLD": str(profile.threshold),
        f"{d}WORKER__DRIFT__DELTA": str(profile.delta),
        f"{d}WORKER__DRIFT__COOLDOWN_BLOCKS": "2",
        f"{d}WORKER__DRIFT__CENTROID_EVENTS": str(profile.block_size * profile.warmup_blocks),
        # fewer, larger updates: a gate judging 10 held-out examples is a coin toss
        f"{d}WORKER__TRIGGERS__MIN_EXAMPLES": str(profile.min_examples),
        f"{d}WORKER__TRIGGERS__COOLDOWN_S": str(profile.cooldown_s),
        f"{d}WORKER__TRIGGERS__EVERY_EXAMPLES": str(profile.every_examples),
        f"{d}WORKER__TRIGGERS__METRIC_MIN_OUTCOMES": "40",
        f"{d}WORKER__TRIGGERS__QUALITY_WINDOW": "60",
        f"{d}WORKER__ACTIVE__BUDGET": str(profile.label_budget),
        f"{d}WORKER__BUFFER__BATCH_SIZE": "128",
        # learner and service: one torch thread each on a small machine
        f"{d}LEARNER__GROUP_ID": f"driftloop-learner-{run_id}",
        f"{d}LEARNER__TORCH_THREADS": "1",
        f"{d}LEARNER__CACHE_DIR": str(run_dir / "learner"),
        f"{d}LEARNER__HOLDOUT_FRACTION": "0.3",
        # a request of ~100 examples is ~9 steps per epoch: one epoch barely moves the adapter
        f"{d}LEARNER__EPOCHS": str(profile.epochs),
        # The replay slice of a request's holdout is 8-16 examples: one miss costs 0.06-0.12,
        # so the default 0.02 rejected nearly every update of the default demo as forgetting
        # (11 of 13). The verdict measures forgetting on 150 held-out tweets instead.
        f"{d}LEARNER__REPLAY_TOLERANCE": "0.1",
        # generation: short prompts and one-word answers keep a CPU update near a minute
        **({f"{d}LEARNER__MAX_LENGTH": "64", f"{d}LEARNER__MAX_NEW_TOKENS": "3"}
           if profile.task == "generate" else {}),
        f"{d}SERVING__PORT": str(serve_port),
        f"{d}SERVING__REPLICA_ID": "demo-replica",
        f"{d}SERVING__CACHE_DIR": str(run_dir / "serving"),
        f"{d}SERVING__TORCH_THREADS": "1",
    }


class _Service:
    """The demo's HTTP client of ``driftloop serve`` and of the worker's /health."""

    def __init__(self, serve_port: int, worker_port: int) -> None:
        self.serve = f"http://127.0.0.1:{serve_port}"
        self.worker = f"http://127.0.0.1:{worker_port}"
        self.session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> _Service:
        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.session is not None
        await self.session.close()

    async def post(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        assert self.session is not None
        async with self.session.post(self.serve + path, json=body) as response:
            return response.status, await response.json()

    async def get_text(self, url: str) -> str | None:
        assert self.session is not None
        try:
            async with self.session.get(url) as response:
                return await response.text() if response.status == 200 else None
        except (aiohttp.ClientError, OSError):
            return None  # not listening (yet, or any more)

    async def get_json(self, url: str) -> dict[str, Any] | None:
        assert self.session is not None
        try:
            async with self.session.get(url) as response:
                return await response.json() if response.status == 200 else None
        except (aiohttp.ClientError, OSError, ValueError):
            return None  # not listening yet


def _progress_text(state: ProgressState, driver: TrafficDriver | None, total: int) -> str:
    served = driver.served if driver else []
    recent = served[-50:]
    rolling = f"{sum(s.correct for s in recent) / len(recent):.2f}" if recent else "-"
    promoted = len(state.with_status(VersionStatus.PROMOTED))
    rejected = len(state.with_status(VersionStatus.REJECTED))
    domain = driver.current_domain if driver else "-"
    return (f"domain {domain or '-':7} events {len(served)}/{total}  acc(50) {rolling}  "
            f"alerts {len(state.alerts)}  requests {len(state.requests)}  "
            f"versions +{promoted}/-{rejected}  serving {state.serving_version or '-'}")


async def _bootstrap(settings: Settings, data: DemoData, request_id: str,
                     seed: int) -> TrainingRequest:
    examples = list(data.bootstrap)
    # another order, another start (the gate's holdout is chosen by content: the same texts)
    random.Random(seed).shuffle(examples)
    request = TrainingRequest(
        id=request_id, ts=time.time(), task=TASK, trigger=TriggerKind.MANUAL,
        reason="demo bootstrap: the static model", labels=list(LABELS),
        examples=[TrainingExample(input=i.text, target=i.label, domain=i.domain,
                                  interaction_id=i.id) for i in examples])
    async with new_producer(settings, max_request_size=TRAINING_REQUEST_MAX_BYTES) as producer:
        await producer.send_and_wait(settings.kafka.topic(Topic.TRAINING_REQUESTS),
                                     encode(request), key=TASK.encode())
    return request


# The learner's two verdicts on a request.
_DECIDED = (VersionStatus.PROMOTED, VersionStatus.REJECTED)


def _decided(state: ProgressState, request_id: str) -> ModelVersion | None:
    """The learner's verdict (promoted or rejected version) on one request, if any yet."""
    for version in state.versions:
        if version.training_request_id == request_id and version.status in _DECIDED:
            return version
    return None


BOOTSTRAP_ATTEMPTS = 3


async def _bootstrap_until_promoted(settings: Settings, data: DemoData, run_id: str,
                                   state: ProgressState, children: ChildProcesses,
                                   say: Callable[[str], None]) -> ModelVersion:
    """Train the static model; ask again (another shuffle) when the gate rejects it.

    The first version's gate compares it with an untrained head on a holdout of ~40 texts,
    and a tie is a rejection: seen once in six quick runs.
    """
    for attempt in range(1, BOOTSTRAP_ATTEMPTS + 1):
        request = await _bootstrap(settings, data, f"{run_id}-bootstrap-{attempt}", attempt)
        say(f"bootstrap: {len(request.examples)} {data.bootstrap[0].domain} examples sent "
            "to the learner ...")
        request_id = request.id
        await wait_until(lambda: _decided(state, request_id) is not None, timeout=300,  # noqa: B023
                         what="the learner's answer to the bootstrap", check=children.check)
        version = _decided(state, request_id)
        assert version is not None
        if version.status is VersionStatus.PROMOTED:
            version_id = version.version_id
            await wait_until(lambda: state.served(version_id), timeout=120,  # noqa: B023
                             what="the service serving the bootstrap version",
                             check=children.check)
            return version
        say(f"bootstrap {version.version_id} rejected by the gate ({version.reason}); again")
    raise DemoChildError(f"the learner rejected {BOOTSTRAP_ATTEMPTS} bootstrap versions")


async def _run_loop(settings: Settings, children: ChildProcesses, data: DemoData,
                    profile: DemoProfile, *, run_id: str, serve_port: int, worker_port: int,
                    seed: int, line: ProgressLine, say: Callable[[str], None],
                    scorer: VersionScorer) -> dict[str, Any]:
    truth = {item.id: item.label for item in data.stream}
    reviewer = SimulatedReviewer(truth)
    async with _Service(serve_port, worker_port) as service:
        reviewed = 0

        async def answer(request: LabelRequest) -> None:
            nonlocal reviewed
            body = reviewer.answer(request)
            if body is not None:
                status, _ = await service.post("/feedback", body)
                reviewed += status == 202

        observer = LoopObserver(settings, on_label_request=answer)
        await observer.start()
        try:
            state = observer.state
            say("waiting for the worker and the service ...")
            await wait_until(lambda: _ok(service.get_json(service.worker + "/health")),
                             timeout=180, what="the worker's /health", check=children.check)
            await wait_until(lambda: _ok(service.get_json(service.serve + "/healthz")),
                             timeout=180, what="the service's /healthz", check=children.check)
            static = await _bootstrap_until_promoted(settings, data, run_id, state,
                                                     children, say)
            say(f"static model: {static.version_id} (promoted and served)")
            # The static model's answers do not depend on the run: score them meanwhile.
            scorer.submit(static, data.stream)
            for items in data.heldout.values():
                scorer.submit(static, items)
            first_heldout = data.heldout[data.stream[0].domain]

            announced = {static.version_id}

            def score_new_versions() -> None:
                for version in state.with_status(VersionStatus.PROMOTED):
                    scorer.submit(version, first_heldout)
                for version in state.versions:  # say why the gate decided as it did
                    if version.version_id not in announced and version.status in _DECIDED:
                        announced.add(version.version_id)
                        why = next((r.trigger.value for r in state.requests
                                    if r.id == version.training_request_id), "?")
                        line.note(f"  {version.status.value} {version.version_id} "
                                  f"(trigger {why}): {version.reason}")

            # Let training already asked for finish, so the next traffic (or the final
            # version) includes it.
            def settled() -> bool:
                answered = {v.training_request_id for v in state.versions
                            if v.status in _DECIDED}
                head = next((v for v in reversed(state.versions)
                             if v.status is VersionStatus.PROMOTED), None)
                return (all(r.id in answered for r in state.requests)
                        and (head is None or state.served(head.version_id)))

            async def caught_up() -> bool:
                text = await service.get_text(service.worker + "/metrics")
                if text is None:
                    return False
                joined_all = metric(text, "driftloop_worker_events_total", kind="feedback") \
                    >= driver.feedback_sent + reviewed
                # every request the worker fired is seen here (the observer reads the topic)
                seen_all = len(state.requests) >= metric(text, "driftloop_training_requests_total")
                score_new_versions()
                return joined_all and seen_all and settled()

            async def between_domains(previous: str, upcoming: str) -> None:
                line.note(f"  end of {previous}: the stream waits for the loop (labels in, "
                          f"training answered, new head served) before {upcoming} ...")
                mark = time.monotonic()
                try:
                    await wait_until(caught_up, timeout=profile.pause_s, interval=0.5,
                                     what=f"the loop at the end of {previous}",
                                     check=children.check)
                except DemoWaitTimeout as exc:
                    line.note(f"  note: {exc}; going on")
                line.note(f"  ... {time.monotonic() - mark:.0f} s; {upcoming} begins")

            users = SimulatedUsers(answer_rate=0.8, noise=0.1, delay=(1.0, 4.0), seed=seed)
            driver = TrafficDriver(service.post, task=TASK, users=users, rate=profile.rate,
                                   between_domains=between_domains if profile.pause_s else None)
            traffic = asyncio.create_task(driver.run(data.stream))
            while not traffic.done():
                line.show(_progress_text(state, driver, len(data.stream)))
                score_new_versions()
                children.check()
                await asyncio.wait({traffic}, timeout=0.5)
            served = traffic.result()
            try:
                await wait_until(settled, timeout=profile.settle_s,
                                 what="the last training requests", check=children.check)
            except DemoWaitTimeout as exc:  # a slow update is reported, not fatal
                say(f"note: {exc}")
            score_new_versions()
            line.show(_progress_text(state, driver, len(data.stream)), now=float("inf"))
            line.done()
            return {"state": state, "served": served, "starts": driver.domain_started,
                    "static": static, "driver": driver, "reviewer": reviewer}
        finally:
            await observer.stop()


async def _ok(answer: Any) -> bool:
    body = await answer
    return body is not None and body.get("status") == "ok"


def _ensure_broker(broker: str | None, say: Callable[[str], None]) -> tuple[str, Any]:
    """The bootstrap servers, and the LocalKafka when this demo started it (else None)."""
    if broker:
        return broker, None
    from ..kafka.local_broker import LocalKafka, default_home

    kafka = LocalKafka(home=default_home(), progress=say)
    status = kafka.status()
    if status.running and status.answering:
        return kafka.bootstrap_servers, None
    say("starting the local Kafka broker ...")
    kafka.start(timeout=120)
    return kafka.bootstrap_servers, kafka


def _check_broker(base: Settings, broker: str) -> None:
    try:
        KafkaSettings.model_validate({**base.kafka.model_dump(), "bootstrap_servers": broker})
    except pydantic.ValidationError as exc:
        problem = exc.errors(include_url=False)[0]["msg"].removeprefix("Value error, ")
        raise SettingsError(f"--broker {broker!r}: {problem}") from None


def run_demo(base: Settings, *, quick: bool = False, broker: str | None = None,
             workdir: Path | None = None, seed: int = 0, out: TextIO | None = None,
             profile: DemoProfile | None = None, task: str = "classify") -> DemoResult:
    """Run the whole demo and return what it did (see the module docstring for the order)."""
    out = out or sys.stdout
    began = time.monotonic()

    def say(text: str) -> None:
        out.write(f"[{time.monotonic() - began:5.0f} s] {text}\n")
        out.flush()

    profile = profile or DemoProfile.named(quick, task)
    if broker is not None:
        _check_broker(base, broker)
    run_id = "demo-" + datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")[:-3]
    run_dir = (workdir or _data_home() / "demo" / run_id).expanduser().absolute()
    run_dir.mkdir(parents=True, exist_ok=True)
    data = build_demo_data(per_domain=profile.per_domain, heldout=profile.heldout,
                           bootstrap=profile.bootstrap, seed=seed)
    servers, started_broker = _ensure_broker(broker, say)
    scorer: VersionScorer | None = None
    try:
        kafka = base.kafka.model_copy(update={"bootstrap_servers": servers,
                                              "topic_prefix": f"{run_id}."})
        artifacts = base.artifacts.model_copy(update={"store_url": str(run_dir / "artifacts")})
        settings = base.model_copy(update={"kafka": kafka, "artifacts": artifacts})
        from ..kafka.topic_admin import create_topics

        create_topics(settings)
        say(f"run {run_id}: broker {servers}, topics {settings.kafka.topic_prefix}*, "
            f"files in {run_dir}")
        serve_port, worker_port = _free_port(), _free_port()
        env = {**os.environ, **child_env(settings, run_dir, profile, run_id=run_id,
                                         serve_port=serve_port, worker_port=worker_port)}
        line = ProgressLine(out)
        scorer = VersionScorer(settings, TASK)
        with sigterm_as_interrupt(), ChildProcesses(run_dir / "logs", env=env) as children:
            children.driftloop("worker", "worker", "--loglevel", "INFO")
            children.driftloop("learner", "-v", "learner")
            children.driftloop("serve", "-v", "serve")
            pids = {c.name: c.pid or 0 for c in children.children}
            loop = asyncio.run(_run_loop(settings, children, data, profile, run_id=run_id,
                                         serve_port=serve_port, worker_port=worker_port,
                                         seed=seed, line=line, say=say, scorer=scorer))
            say("stopping the worker, the learner and the service ...")
            exit_codes = children.stop_all()
        from ..ops.report.data import collect_report_data
        from ..ops.report.page import render_report

        report = render_report(asyncio.run(collect_report_data(settings)),
                               title=f"driftloop demo {run_id}",
                               source=f"{servers} · {settings.kafka.topic_prefix}*")
        report_path = run_dir / "report.html"
        report_path.write_text(report, encoding="utf-8")
        say("scoring the versions on held-out text ...")
        scorer.use_threads(2)  # the children are gone: their cores are free
        verdict = _verdict(scorer, data, loop)
    finally:
        if scorer is not None:
            scorer.close()
        if started_broker is not None:
            say("stopping the local Kafka broker the demo started ...")
            started_broker.stop(timeout=30)
    result = DemoResult(
        run_id=run_id, run_dir=run_dir, settings=settings, state=loop["state"],
        served=loop["served"], domain_starts=loop["starts"],
        bootstrap_version=loop["static"].version_id, verdict=verdict, report_path=report_path,
        child_pids=pids, exit_codes=exit_codes, feedback_sent=loop["driver"].feedback_sent,
        noisy_feedback=loop["driver"].noisy_sent,
        reviewer_answers=len(loop["reviewer"].answered), wall_s=time.monotonic() - began)
    say(render_table(verdict))
    say(f"report: {report_path}")
    say(f"{result.wall_s:.0f} s; {verdict.line()}")
    return result


def _verdict(scorer: VersionScorer, data: DemoData, loop: dict[str, Any]) -> Verdict:
    state: ProgressState = loop["state"]
    static: ModelVersion = loop["static"]
    served: list[ServedPrediction] = loop["served"]
    promoted = state.with_status(VersionStatus.PROMOTED)
    final = promoted[-1] if promoted else static
    domains = [d for d, _, _ in data.boundaries()]
    for domain in domains:  # queue every job first: the scoring thread never waits on us
        scorer.submit(final, data.heldout[domain])
    by_id = dict(zip([i.id for i in data.stream], scorer.predict(static, data.stream),
                     strict=True))
    static_live = [by_id[s.item.id] for s in served]
    first = domains[0]
    best, best_version = -1.0, static.version_id
    for version in promoted:
        score = scorer.score(version, data.heldout[first])
        if score > best:
            best, best_version = score, version.version_id
    rows = []
    for domain in domains:
        live_served, live_static, events = live_results(served, static_live, domain)
        rows.append(DomainResult(domain, scorer.score(static, data.heldout[domain]),
                                 scorer.score(final, data.heldout[domain]),
                                 live_served, live_static, events))
    return Verdict(rows, best, best_version, static.version_id, final.version_id,
                   promoted=len(promoted) - 1,
                   rejected=len(state.with_status(VersionStatus.REJECTED)),
                   alerts=len(state.alerts), shifted=domains[1:])
