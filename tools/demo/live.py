"""The live part of a demo run: the children ready, the static model, the stream, the settling.

:func:`run_loop` reads as its steps: wait until the worker and the service answer, train and
serve the static model, play the stream (pausing at each domain change until the loop has
caught up), then give the last training requests time to be decided. Meanwhile the
simulated reviewer answers label requests and every promoted version is scored on held-out
text. What the run saw comes back as a :class:`LoopOutcome`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ...schemas import LabelRequest, ModelVersion, VersionStatus
from ...schemas.settings import Settings
from ..ops.accounting import metric
from .bootstrap import DECIDED, bootstrap_until_promoted
from .endpoints import DemoEndpoints
from .processes import ChildProcesses, DemoWaitTimeout, wait_until
from .profile import TASK, DemoProfile
from .progress import LoopObserver, ProgressLine, ProgressState
from .traffic import (
    DemoData,
    ServedPrediction,
    SimulatedReviewer,
    SimulatedUsers,
    StreamItem,
    TrafficDriver,
)
from .verdict import VersionScorer

__all__ = ["DomainPause", "LoopOutcome", "ReviewDesk", "VersionWatch", "progress_text",
           "run_loop", "settled"]


@dataclass(slots=True)
class LoopOutcome:
    """What the live loop did: the loop's events, the traffic served, the static version."""

    state: ProgressState
    served: list[ServedPrediction]
    domain_starts: dict[str, float]
    static: ModelVersion
    feedback_sent: int
    noisy_feedback: int
    reviewer_answers: int
    label_times: list[float] = field(default_factory=list)
    """When each label (a user's or the reviewer's) was accepted."""


def progress_text(state: ProgressState, driver: TrafficDriver | None, total: int) -> str:
    """The progress line: where the stream is, how it does, what the loop did so far.

    >>> progress_text(ProgressState(), None, 500)
    'domain -       events 0/500  acc(50) -  alerts 0  requests 0  versions +0/-0  serving -'
    """
    served = driver.served if driver else []
    recent = served[-50:]
    rolling = f"{sum(s.correct for s in recent) / len(recent):.2f}" if recent else "-"
    promoted = len(state.with_status(VersionStatus.PROMOTED))
    rejected = len(state.with_status(VersionStatus.REJECTED))
    domain = driver.current_domain if driver else "-"
    return (f"domain {domain or '-':7} events {len(served)}/{total}  acc(50) {rolling}  "
            f"alerts {len(state.alerts)}  requests {len(state.requests)}  "
            f"versions +{promoted}/-{rejected}  serving {state.serving_version or '-'}")


def settled(state: ProgressState) -> bool:
    """Every training request seen is decided, and the newest promoted version is served.

    Waiting for this lets training already asked for finish, so the next traffic (or the
    final version) includes it.

    >>> settled(ProgressState())
    True
    """
    answered = {v.training_request_id for v in state.versions if v.status in DECIDED}
    head = next((v for v in reversed(state.versions)
                 if v.status is VersionStatus.PROMOTED), None)
    return (all(r.id in answered for r in state.requests)
            and (head is None or state.served(head.version_id)))


class ReviewDesk:
    """The simulated reviewer answering the worker's label requests on the review page
    (``driftloop review serve``) through its HTTP API, as a person at the keyboard would:
    take the next request of the task, answer it with the true label, and when none waits
    look again a little later.

    Without a review page (``endpoints.review`` None) it answers each request it is handed
    through the service's ``/feedback`` instead.
    """

    def __init__(self, reviewer: SimulatedReviewer, endpoints: DemoEndpoints, *,
                 task: str = TASK) -> None:
        self.reviewer = reviewer
        self.endpoints = endpoints
        self.task = task
        self.reviewed = 0  # answers accepted (the page publishes them after its undo window)
        self.times: list[float] = []  # when each was accepted
        self.refused: dict[int, int] = {}  # answers the page refused, by HTTP status

    async def answer(self, request: LabelRequest) -> None:
        """Answer one request through ``/feedback`` (the path without a review page)."""
        if self.endpoints.review is not None:
            return  # the page offers it: :meth:`work` answers it there
        body = self.reviewer.answer(request)
        if body is not None:
            status, _ = await self.endpoints.post("/feedback", body)
            if status == 202:
                self._accepted()

    async def work(self, idle_s: float = 0.5) -> None:
        """Answer the page's requests until cancelled."""
        unknown: list[str] = []  # requests it cannot answer (truly, or at all): passed over
        while True:
            view = await self.endpoints.review_next(self.task, skip=unknown)
            if view is None or view["request_id"] in unknown:  # nothing it can answer
                await asyncio.sleep(idle_s)  # a reviewer's pause, not a synchronisation
                continue
            label = self.reviewer.truth.get(view["interaction_id"])
            if label is None:
                unknown.append(view["request_id"])
                continue
            status, _ = await self.endpoints.review_answer(view["request_id"], label,
                                                           reviewer="demo-reviewer")
            self.reviewer.answered.add(view["interaction_id"])
            if status == 202:
                self._accepted()
            else:  # counted, and not offered to this reviewer again
                self.refused[status] = self.refused.get(status, 0) + 1
                unknown.append(view["request_id"])

    def _accepted(self) -> None:
        self.reviewed += 1
        self.times.append(time.time())


class VersionWatch:
    """Scores each promoted version on ``heldout`` as it appears; notes each gate decision.

    Call it whenever the loop's state may have moved; ``announced`` are the versions whose
    decision is not to be noted (the static model's).
    """

    def __init__(self, state: ProgressState, scorer: VersionScorer,
                 heldout: list[StreamItem], line: ProgressLine, announced: set[str]) -> None:
        self.state = state
        self.scorer = scorer
        self.heldout = heldout
        self.line = line
        self.announced = set(announced)

    def __call__(self) -> None:
        state = self.state
        for version in state.with_status(VersionStatus.PROMOTED):
            self.scorer.submit(version, self.heldout)
        for version in state.versions:  # say why the gate decided as it did
            if version.version_id not in self.announced and version.status in DECIDED:
                self.announced.add(version.version_id)
                why = next((r.trigger.value for r in state.requests
                            if r.id == version.training_request_id), "?")
                self.line.note(f"  {version.status.value} {version.version_id} "
                               f"(trigger {why}): {version.reason}")


@dataclass(slots=True)
class DomainPause:
    """At a domain change, hold the stream until the loop has caught up (up to ``pause_s``).

    Caught up: the worker joined every label sent (users' and reviewer's), every training
    request it fired is seen, and :func:`settled` holds. A pause that times out is noted and
    the stream goes on.
    """

    driver: TrafficDriver
    endpoints: DemoEndpoints
    state: ProgressState
    desk: ReviewDesk
    watch: VersionWatch
    children: ChildProcesses
    line: ProgressLine
    pause_s: float

    async def caught_up(self) -> bool:
        text = await self.endpoints.get_text(self.endpoints.worker + "/metrics")
        if text is None:
            return False
        joined_all = metric(text, "driftloop_worker_events_total", kind="feedback") \
            >= self.driver.feedback_sent + self.desk.reviewed
        # every request the worker fired is seen here (the observer reads the topic)
        seen_all = len(self.state.requests) >= metric(text, "driftloop_training_requests_total")
        self.watch()
        return joined_all and seen_all and settled(self.state)

    async def __call__(self, previous: str, upcoming: str) -> None:
        self.line.note(f"  end of {previous}: the stream waits for the loop (labels in, "
                       f"training answered, new head served) before {upcoming} ...")
        mark = time.monotonic()
        try:
            await wait_until(self.caught_up, timeout=self.pause_s, interval=0.5,
                             what=f"the loop at the end of {previous}",
                             check=self.children.check)
        except DemoWaitTimeout as exc:
            self.line.note(f"  note: {exc}; going on")
        self.line.note(f"  ... {time.monotonic() - mark:.0f} s; {upcoming} begins")


async def run_loop(settings: Settings, children: ChildProcesses, data: DemoData,
                   profile: DemoProfile, *, run_id: str, endpoints: DemoEndpoints,
                   seed: int, line: ProgressLine, say: Callable[[str], None],
                   scorer: VersionScorer) -> LoopOutcome:
    """The live loop against the running children (see the module docstring for the steps)."""
    reviewer = SimulatedReviewer({item.id: item.label for item in data.stream})
    async with endpoints:
        desk = ReviewDesk(reviewer, endpoints)
        observer = LoopObserver(settings, on_label_request=desk.answer)
        await observer.start()
        reviewing: asyncio.Task[None] | None = None
        try:
            state = observer.state
            await _children_ready(endpoints, children, say)
            if endpoints.review is not None:
                reviewing = asyncio.create_task(desk.work())
            static = await bootstrap_until_promoted(settings, data, run_id, state,
                                                    children, say)
            say(f"static model: {static.version_id} (promoted and served)")
            _score_static(scorer, static, data)
            watch = VersionWatch(state, scorer, data.heldout[data.stream[0].domain], line,
                                 announced={static.version_id})
            users = SimulatedUsers(answer_rate=0.8, noise=0.1, delay=(1.0, 4.0), seed=seed)
            driver = TrafficDriver(endpoints.post, task=TASK, users=users, rate=profile.rate)
            if profile.pause_s:
                driver.between_domains = DomainPause(driver, endpoints, state, desk, watch,
                                                     children, line, profile.pause_s)
            served = await _play(driver, data, state, watch, children, line)
            await _settle(state, profile, children, say)
            watch()
            line.show(progress_text(state, driver, len(data.stream)), now=float("inf"))
            line.done()
            return LoopOutcome(state, served, driver.domain_started, static,
                               feedback_sent=driver.feedback_sent,
                               noisy_feedback=driver.noisy_sent,
                               reviewer_answers=len(reviewer.answered),
                               label_times=sorted(driver.label_times + desk.times))
        finally:
            if reviewing is not None:
                reviewing.cancel()
                await asyncio.gather(reviewing, return_exceptions=True)
            await observer.stop()


async def _children_ready(endpoints: DemoEndpoints, children: ChildProcesses,
                          say: Callable[[str], None]) -> None:
    say("waiting for the worker, the service and the review page ...")
    await wait_until(endpoints.worker_ok, timeout=180, what="the worker's /health",
                     check=children.check)
    await wait_until(endpoints.serve_ok, timeout=180, what="the service's /healthz",
                     check=children.check)
    await wait_until(endpoints.review_ok, timeout=120, what="the review page's /healthz",
                     check=children.check)


def _score_static(scorer: VersionScorer, static: ModelVersion, data: DemoData) -> None:
    # The static model's answers do not depend on the run: score them meanwhile.
    scorer.submit(static, data.stream)
    for items in data.heldout.values():
        scorer.submit(static, items)


async def _play(driver: TrafficDriver, data: DemoData, state: ProgressState,
                watch: VersionWatch, children: ChildProcesses,
                line: ProgressLine) -> list[ServedPrediction]:
    """Drive the stream; meanwhile show progress, score new versions, watch the children."""
    traffic = asyncio.create_task(driver.run(data.stream))
    while not traffic.done():
        line.show(progress_text(state, driver, len(data.stream)))
        watch()
        children.check()
        await asyncio.wait({traffic}, timeout=0.5)
    return traffic.result()


async def _settle(state: ProgressState, profile: DemoProfile, children: ChildProcesses,
                  say: Callable[[str], None]) -> None:
    try:
        await wait_until(lambda: settled(state), timeout=profile.settle_s,
                         what="the last training requests", check=children.check)
    except DemoWaitTimeout as exc:  # a slow update is reported, not fatal
        say(f"note: {exc}")
