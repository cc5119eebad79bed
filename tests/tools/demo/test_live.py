"""The live loop's parts that need no children: settling, the reviewer, the version watch."""

from __future__ import annotations

import asyncio
import io

from waiting import wait_until_async

from driftloop.schemas import (
    Interaction,
    LabelRequest,
    ModelVersion,
    ServingAck,
    TrainingRequest,
    VersionStatus,
)
from driftloop.tools.demo.live import DomainPause, ReviewDesk, VersionWatch, settled
from driftloop.tools.demo.progress import ProgressLine, ProgressState
from driftloop.tools.demo.traffic import SimulatedReviewer, StreamItem


def version(version_id: str, request_id: str, status: VersionStatus,
            reason: str = "") -> ModelVersion:
    return ModelVersion(version_id=version_id, ts=1.0, task="sentiment", base_model="m",
                        adapter_uri=f"file:///a/{version_id}", sha256="0" * 64, size_bytes=1,
                        training_request_id=request_id, status=status, reason=reason)


def request(request_id: str, trigger: str = "drift") -> TrainingRequest:
    return TrainingRequest(id=request_id, ts=1.0, task="sentiment", trigger=trigger,
                           examples=[{"input": "fine", "target": "positive"}])


def serving(version_id: str) -> ServingAck:
    return ServingAck(ts=2.0, replica="demo-replica", task="sentiment", version_id=version_id,
                      status="serving")


def test_settled_waits_for_every_decision_and_for_the_new_head_to_be_served() -> None:
    state = ProgressState(requests=[request("r-1"), request("r-2")],
                          versions=[version("v1", "r-1", VersionStatus.PROMOTED)])
    assert not settled(state)  # r-2 not decided
    state.versions.append(version("v2", "r-2", VersionStatus.PROMOTED))
    assert not settled(state)  # v2, the head, not served yet
    state.acks.append(serving("v2"))
    assert settled(state)
    state.requests.append(request("r-3"))
    state.versions.append(version("v3", "r-3", VersionStatus.REJECTED))
    assert settled(state)  # a rejection decides without changing the head


class RecordingScorer:
    def __init__(self) -> None:
        self.submitted: list[tuple[str, int]] = []

    def submit(self, version: ModelVersion, items: list[StreamItem]) -> None:
        self.submitted.append((version.version_id, len(items)))


def test_the_watch_scores_promoted_versions_and_notes_each_decision_once() -> None:
    state = ProgressState(requests=[request("r-1", "metric")],
                          versions=[version("v0", "boot", VersionStatus.PROMOTED)])
    scorer, out = RecordingScorer(), io.StringIO()
    heldout = [StreamItem(id="h-1", domain="tweets", text="ok", label="positive")]
    watch = VersionWatch(state, scorer, heldout, ProgressLine(out), announced={"v0"})
    watch()
    assert out.getvalue() == "" and scorer.submitted == [("v0", 1)]
    state.versions.append(version("v1", "r-1", VersionStatus.REJECTED, "holdout 0.70 < 0.72"))
    watch()
    watch()
    assert out.getvalue() == "  rejected v1 (trigger metric): holdout 0.70 < 0.72\n"


class AcceptingEndpoints:
    review = None  # no review page: the desk answers through the service's /feedback

    def __init__(self, status: int) -> None:
        self.status = status
        self.posted: list[tuple[str, dict]] = []

    async def post(self, path: str, body: dict) -> tuple[int, dict]:
        self.posted.append((path, body))
        return self.status, {}


def label_request(interaction_id: str) -> LabelRequest:
    seen = Interaction(id=interaction_id, ts=1.0, task="sentiment", model_version="v0",
                       input="meh")
    return LabelRequest(id=f"l-{interaction_id}", ts=2.0, task="sentiment", interaction=seen,
                        reason="margin", priority=0.5)


async def test_the_desk_posts_the_reviewer_s_answers_and_counts_the_accepted_ones() -> None:
    endpoints = AcceptingEndpoints(202)
    desk = ReviewDesk(SimulatedReviewer({"i-1": "negative"}), endpoints)
    await desk.answer(label_request("i-1"))
    await desk.answer(label_request("i-1"))  # a repeat is not answered twice
    await desk.answer(label_request("i-unknown"))
    assert desk.reviewed == 1
    assert [(path, body["value"]) for path, body in endpoints.posted] == [
        ("/feedback", "negative")]
    refused = ReviewDesk(SimulatedReviewer({"i-2": "positive"}), AcceptingEndpoints(400))
    await refused.answer(label_request("i-2"))
    assert refused.reviewed == 0


class ReviewPage:
    """The review page's API as the desk sees it: a queue by priority, answers by id."""

    review = "http://review"

    def __init__(self, views: list[dict], refuse: set[str] = frozenset()) -> None:
        self.views, self.refuse = list(views), refuse
        self.answers: list[tuple[str, str, str]] = []

    async def review_next(self, task: str, skip: list[str] | None = None) -> dict | None:
        waiting = [v for v in self.views if v["task"] == task]
        chosen = [v for v in waiting if v["request_id"] not in (skip or [])]
        return (chosen or waiting or [None])[0]  # the page wraps around to skipped ones

    async def review_answer(self, request_id: str, value: str, reviewer: str) -> tuple[int, dict]:
        self.answers.append((request_id, value, reviewer))
        if request_id in self.refuse:
            return 400, {"error": "not a label"}
        self.views = [v for v in self.views if v["request_id"] != request_id]
        return 202, {}


async def test_the_desk_answers_the_review_page_s_queue_with_the_truth() -> None:
    def view(n: str) -> dict:
        return {"request_id": f"lr-{n}", "interaction_id": n, "task": "sentiment",
                "labels": ["negative", "positive"]}

    page = ReviewPage([view("i-1"), view("i-stranger"), view("i-2"), view("i-3")],
                      refuse={"lr-i-3"})
    truth = {"i-1": "negative", "i-2": "positive", "i-3": "positive"}
    desk = ReviewDesk(SimulatedReviewer(truth), page)  # type: ignore[arg-type]
    await desk.answer(label_request("i-1"))  # the page offers it: not posted to /feedback
    working = asyncio.create_task(desk.work(idle_s=0.01))
    try:
        await wait_until_async(lambda: len(page.answers) >= 3 and len(page.views) == 2, 10,
                               "the page's queue answered")
    finally:
        working.cancel()
    assert [(rid, value) for rid, value, _ in page.answers] == [
        ("lr-i-1", "negative"), ("lr-i-2", "positive"), ("lr-i-3", "positive")]
    assert {who for *_, who in page.answers} == {"demo-reviewer"}
    assert desk.reviewed == 2 and desk.refused == {400: 1}
    # the request it cannot answer truly is passed over, never answered with a guess
    assert "lr-i-stranger" not in {rid for rid, *_ in page.answers}


class MetricsPage:
    """The worker's /metrics as DomainPause reads it (None: not listening)."""

    worker = "http://worker"

    def __init__(self, text: str | None) -> None:
        self.text = text

    async def get_text(self, url: str) -> str | None:
        assert url == "http://worker/metrics"
        return self.text


class Feedback:
    feedback_sent = 4  # the users' labels the driver sent


class LivingChildren:
    def check(self) -> None:
        pass


async def test_the_pause_waits_for_every_label_joined_and_every_request_decided() -> None:
    state = ProgressState(requests=[request("r-1")])
    desk = ReviewDesk(SimulatedReviewer({}), AcceptingEndpoints(202))
    desk.reviewed = 1
    out = io.StringIO()
    watch = VersionWatch(state, RecordingScorer(), [], ProgressLine(out), announced=set())
    page = MetricsPage(None)
    pause = DomainPause(Feedback(), page, state, desk, watch, LivingChildren(),
                        ProgressLine(out), pause_s=0.3)
    assert not await pause.caught_up()  # the worker does not answer
    page.text = ('driftloop_worker_events_total{kind="feedback"} 4\n'
                 "driftloop_training_requests_total 1\n")
    assert not await pause.caught_up()  # the reviewer's label is not joined yet
    page.text = page.text.replace("} 4", "} 5")
    assert not await pause.caught_up()  # r-1 not decided
    state.versions.append(version("v1", "r-1", VersionStatus.REJECTED))
    assert await pause.caught_up()
    page.text = page.text.replace("requests_total 1", "requests_total 2")
    await pause("tweets", "movies")  # a request the observer has not seen: times out, goes on
    notes = out.getvalue()
    assert "end of tweets: the stream waits" in notes
    assert "note: timed out after 0 s waiting for the loop at the end of tweets; going on" in notes
    assert "movies begins" in notes
