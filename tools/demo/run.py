"""One run of the demo: broker, topics, children, bootstrap, stream, verdict, report.

:func:`run_demo` is what ``driftloop demo`` calls and what the end-to-end test asserts on.
It reads as its steps; the parts live beside it: the profile and the children's settings
(:mod:`.profile`), the live loop (:mod:`.live`, with the static model from
:mod:`.bootstrap`), the verdict (:mod:`.judge`). Order of the end matters: the children
stop first (their CPU is needed for the evaluation), then the report is read from the
topics, then the versions are scored in this process, and only then is a broker the demo
started itself stopped.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import pydantic

from ...schemas.errors import SettingsError
from ...schemas.settings import KafkaSettings, Settings
from .endpoints import DemoEndpoints
from .judge import final_verdict
from .live import LoopOutcome, run_loop
from .processes import ChildProcesses, sigterm_as_interrupt
from .profile import TASK, DemoProfile, child_env
from .progress import ProgressLine, ProgressState
from .traffic import DemoData, ServedPrediction, build_demo_data
from .verdict import Verdict, VersionScorer, render_table

__all__ = ["DemoProfile", "DemoResult", "run_demo"]


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


@dataclass(slots=True)
class _ChildrenRun:
    """The live loop's outcome and what became of the children that ran it."""

    loop: LoopOutcome
    pids: dict[str, int]
    exit_codes: dict[str, int | None]


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
        settings = _run_settings(base, servers, run_id, run_dir, say)
        scorer = VersionScorer(settings, TASK)
        ran = _run_children(settings, run_dir, data, profile, run_id=run_id, seed=seed,
                            out=out, say=say, scorer=scorer)
        report_path = _write_report(settings, run_dir, run_id)
        say("scoring the versions on held-out text ...")
        scorer.use_threads(2)  # the children are gone: their cores are free
        verdict = final_verdict(scorer, data, ran.loop)
    finally:
        if scorer is not None:
            scorer.close()
        if started_broker is not None:
            say("stopping the local Kafka broker the demo started ...")
            started_broker.stop(timeout=30)
    loop = ran.loop
    result = DemoResult(
        run_id=run_id, run_dir=run_dir, settings=settings, state=loop.state,
        served=loop.served, domain_starts=loop.domain_starts,
        bootstrap_version=loop.static.version_id, verdict=verdict, report_path=report_path,
        child_pids=ran.pids, exit_codes=ran.exit_codes, feedback_sent=loop.feedback_sent,
        noisy_feedback=loop.noisy_feedback, reviewer_answers=loop.reviewer_answers,
        wall_s=time.monotonic() - began)
    say(render_table(verdict))
    for shift in verdict.shifts:
        say(shift.line())
    say(f"report: {report_path}")
    say(f"{result.wall_s:.0f} s; {verdict.line()}")
    return result


def _check_broker(base: Settings, broker: str) -> None:
    try:
        KafkaSettings.model_validate({**base.kafka.model_dump(), "bootstrap_servers": broker})
    except pydantic.ValidationError as exc:
        problem = exc.errors(include_url=False)[0]["msg"].removeprefix("Value error, ")
        raise SettingsError(f"--bootstrap-servers {broker!r}: {problem}") from None


def _data_home() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "driftloop"


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


def _run_settings(base: Settings, servers: str, run_id: str, run_dir: Path,
                  say: Callable[[str], None]) -> Settings:
    """The run's settings (its broker, a topic prefix and a store of its own), topics made."""
    kafka = base.kafka.model_copy(update={"bootstrap_servers": servers,
                                          "topic_prefix": f"{run_id}."})
    artifacts = base.artifacts.model_copy(update={"store_url": str(run_dir / "artifacts")})
    settings = base.model_copy(update={"kafka": kafka, "artifacts": artifacts})
    from ..kafka.topic_admin import create_topics

    create_topics(settings)
    say(f"run {run_id}: broker {servers}, topics {settings.kafka.topic_prefix}*, "
        f"files in {run_dir}")
    return settings


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run_children(settings: Settings, run_dir: Path, data: DemoData, profile: DemoProfile, *,
                  run_id: str, seed: int, out: TextIO, say: Callable[[str], None],
                  scorer: VersionScorer) -> _ChildrenRun:
    """Start the worker, the learner and the service, run the live loop, stop them all."""
    serve_port, worker_port, review_port = _free_port(), _free_port(), _free_port()
    review_token = secrets.token_urlsafe(24)
    env = {**os.environ, **child_env(settings, run_dir, profile, run_id=run_id,
                                     serve_port=serve_port, worker_port=worker_port,
                                     review_port=review_port, review_token=review_token)}
    line = ProgressLine(out)
    with sigterm_as_interrupt(), ChildProcesses(run_dir / "logs", env=env) as children:
        children.driftloop("worker", "worker", "--loglevel", "INFO")
        children.driftloop("learner", "-v", "learner")
        children.driftloop("serve", "-v", "serve")
        children.driftloop("review", "review", "serve")
        pids = {c.name: c.pid or 0 for c in children.children}
        endpoints = DemoEndpoints(serve_port, worker_port, review_port=review_port,
                                  review_token=review_token)
        loop = asyncio.run(run_loop(settings, children, data, profile, run_id=run_id,
                                    endpoints=endpoints, seed=seed, line=line, say=say,
                                    scorer=scorer))
        say("stopping the worker, the learner, the service and the review page ...")
        exit_codes = children.stop_all()
    return _ChildrenRun(loop, pids, exit_codes)


def _write_report(settings: Settings, run_dir: Path, run_id: str) -> Path:
    """The HTML report of the run, read from its topics, in the run's folder."""
    from ..ops.report import collect_report_data, render_report

    report = render_report(asyncio.run(collect_report_data(settings)),
                           title=f"driftloop demo {run_id}",
                           source=f"{settings.kafka.bootstrap_servers} · "
                                  f"{settings.kafka.topic_prefix}*")
    report_path = run_dir / "report.html"
    report_path.write_text(report, encoding="utf-8")
    return report_path
