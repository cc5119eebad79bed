"""The Label Studio bridge against a real Label Studio server and the real broker.

Label requests are made the way the worker makes them (``streams.active.label_requests``
over uncertain and confident interactions) and published on ``label-requests``; a reviewer
answers through Label Studio's REST API (POST and PATCH annotations); what comes back is
read off the ``feedback`` topic. The last test runs the real worker too: its own label
requests go to Label Studio, and the answer and its revision reach its replay buffer.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from kafka_helpers import consume_until, free_port, produce
from label_studio_server import LabelStudioServer
from waiting import wait_until, wait_until_async

from driftloop.client.publisher import Publisher
from driftloop.review.label_studio import (
    LabelStudioAuthError,
    LabelStudioBridge,
    LabelStudioClient,
    LabelStudioUnreachable,
)
from driftloop.schemas import Feedback, Interaction, LabelRequest, encode
from driftloop.schemas.codec import decode_batch
from driftloop.schemas.settings import Settings
from driftloop.schemas.topics import Topic
from driftloop.streams.active import ActiveSampler, label_requests

LABELS = ["negative", "positive"]


def studio_settings(kafka_settings: Settings, server: LabelStudioServer,
                    **studio: Any) -> Settings:
    """The test's broker and topics, its own project titles on the shared server."""
    section = {"url": server.url, "token": server.token, "poll_interval_s": 0.3,
               "unreachable_deadline_s": 20.0,
               "project_prefix": f"{kafka_settings.kafka.topic_prefix} ", **studio}
    return kafka_settings.model_copy(update={
        "label_studio": kafka_settings.label_studio.model_validate(section),
        "tasks": {"sentiment": kafka_settings.task("sentiment").model_validate(
                      {"labels": LABELS}),
                  "qa": kafka_settings.task("qa").model_validate({"kind": "generation"})}})


def worker_label_requests(task: str, texts: list[str], confidences: list[float], *,
                          now: float, kind: str = "classification") -> list[LabelRequest]:
    """What the worker's active learning asks for, among these interactions."""
    events = []
    for k, (text, confidence) in enumerate(zip(texts, confidences, strict=True)):
        scores: dict[str, Any] = {"confidence": confidence}
        extra: dict[str, Any] = {"output": f"model answer {k}"}
        if kind == "classification":
            scores["probabilities"] = {"positive": confidence, "negative": 1 - confidence}
            extra = {"prediction": "positive"}
        events.append(Interaction(id=f"{task}-{k}-{int(now)}", ts=now, task=task,
                                  model_version="v1", input=text, scores=scores, **extra))
    probabilities = [e.scores.probabilities for e in events]
    asked = label_requests(ActiveSampler(strategy="margin", threshold=0.6, budget=100), task,
                           events, np.asarray(confidences), probabilities, now=now)
    return asked or []


async def publish_requests(settings: Settings, requests: list[LabelRequest]) -> None:
    for request in requests:  # one event per message, keyed by task, as the worker sends
        await produce(settings, Topic.LABEL_REQUESTS, [encode(request)], key=request.task)


async def feedback_events(settings: Settings, until: Any, timeout: float = 60.0
                          ) -> list[Feedback]:
    def events(records: list[Any]) -> list[Feedback]:
        out: list[Feedback] = []
        for record in records:
            out += [e for e in decode_batch(record.value, Feedback) if isinstance(e, Feedback)]
        return out

    records = await consume_until(settings, Topic.FEEDBACK, lambda rs: until(events(rs)),
                                  timeout=timeout)
    return events(records)


@asynccontextmanager
async def running(settings: Settings, tasks: list[str]) -> AsyncIterator[LabelStudioBridge]:
    bridge = LabelStudioBridge(settings, tasks=tasks)
    await bridge.start()
    stop = asyncio.Event()
    runner = asyncio.create_task(bridge.run(stop))
    try:
        yield bridge
    finally:
        stop.set()
        await runner
        await bridge.stop()


class Reviewer:
    """A person in Label Studio, through its REST API (blocking calls off the loop)."""

    def __init__(self, server: LabelStudioServer) -> None:
        self.server = server

    async def call(self, method: str, path: str, body: Any = None) -> Any:
        return await asyncio.to_thread(self.server.api, method, path, body)

    async def project(self, title: str) -> dict[str, Any] | None:
        projects = (await self.call("GET", "/api/projects/?page_size=1000"))["results"]
        return next((p for p in projects if p["title"] == title), None)

    async def tasks(self, project: int) -> list[dict[str, Any]]:
        body = await self.call("GET", f"/api/tasks/?project={project}&fields=all&page_size=1000")
        return body["tasks"]

    async def annotate(self, task: int, result: list[dict[str, Any]], **extra: Any
                       ) -> dict[str, Any]:
        return await self.call("POST", f"/api/tasks/{task}/annotations/",
                               {"result": result, **extra})


def choice(value: str) -> list[dict[str, Any]]:
    return [{"from_name": "answer", "to_name": "text", "type": "choices",
             "value": {"choices": [value]}}]


def text_answer(value: str) -> list[dict[str, Any]]:
    return [{"from_name": "answer", "to_name": "text", "type": "textarea",
             "value": {"text": [value]}}]


async def test_requests_go_to_label_studio_and_answers_come_back_once(
        kafka_settings: Settings, label_studio: LabelStudioServer) -> None:
    settings = studio_settings(kafka_settings, label_studio)
    reviewer = Reviewer(label_studio)
    uncertain = worker_label_requests(
        "sentiment", ["it was fine I guess", "not bad, not good", "meh", "could be worse",
                      "a masterpiece", "utter rubbish"], [0.52, 0.55, 0.5, 0.57, 0.99, 0.01],
        now=1000.0)
    assert len(uncertain) == 4  # the sampler asks about the uncertain ones only
    [question] = worker_label_requests("qa", ["capital of France?"], [0.51], now=1000.0,
                                       kind="generation")
    [elsewhere] = worker_label_requests("other", ["not bridged"], [0.5], now=1000.0)
    # The least urgent first: Label Studio must still serve the most urgent first.
    await publish_requests(settings, [*reversed(uncertain), question, elsewhere])

    async with running(settings, ["sentiment", "qa"]) as bridge:
        title = bridge.project_title("sentiment")
        project = await wait_until_async(lambda: reviewer.project(title), 60,
                                         "the sentiment project")
        assert 'value="negative"' in project["label_config"]
        assert project["sampling"] == "Uncertainty sampling"
        tasks = await wait_until_async(
            lambda: _when(reviewer.tasks(project["id"]), lambda ts: len(ts) == 4), 60,
            "four tasks imported")
        by_request = {t["data"]["request_id"]: t for t in tasks}
        assert set(by_request) == {r.id for r in uncertain}
        for request in uncertain:  # the most urgent is served first: lowest score
            prediction = by_request[request.id]["predictions"][0]
            assert prediction["score"] == pytest.approx(1 - request.priority, abs=1e-6)
            assert by_request[request.id]["data"]["interaction_id"] == request.interaction.id
        urgent = max(uncertain, key=lambda r: r.priority)
        served = await reviewer.call("GET", f"/api/projects/{project['id']}/next")
        assert served["data"]["request_id"] == urgent.id  # Label Studio serves it first
        qa_project = await reviewer.project(bridge.project_title("qa"))
        assert "<TextArea" in qa_project["label_config"]
        [qa_task] = await wait_until_async(
            lambda: _when(reviewer.tasks(qa_project["id"]), len), 60, "the qa task")
        assert await reviewer.project(bridge.project_title("other")) is None

    # Answered while the bridge is down, so that it finds the two annotators' answers to the
    # disputed task together (a running bridge may look between the two, publish the first
    # and count the second as a later conflict), and picks them up when it starts again.
    answered, skipped, invalid, disputed = (by_request[r.id] for r in uncertain)
    first = await reviewer.annotate(answered["id"], choice("negative"))
    await reviewer.annotate(skipped["id"], [], was_cancelled=True)
    await reviewer.annotate(invalid["id"], choice("maybe"))  # Label Studio lets it in
    await reviewer.annotate(disputed["id"], choice("positive"))
    ann = await reviewer.call("POST", "/api/users/", {"email": "ann@driftloop.test",
                                                      "username": "ann"})
    dissent = await reviewer.annotate(disputed["id"], choice("negative"),
                                      completed_by=ann["id"])
    await reviewer.annotate(qa_task["id"], text_answer("Paris"))

    async with running(settings, ["sentiment", "qa"]) as bridge:
        seen = await feedback_events(settings, lambda fs: len(fs) >= 2)
        await wait_until_async(lambda: bridge.counts["conflicts"] == 1
                               and bridge.counts["skipped"] == 1
                               and bridge.counts["invalid"] == 1, 30,
                               "the skip, the invalid answer and the conflict counted",
                               seen=lambda: dict(bridge.counts))
        by_id = {f.id: f for f in seen}
        label = by_id[f"{answered['data']['request_id']}.review"]
        assert (label.value, label.kind.value, label.source.value) == \
            ("negative", "label", "reviewer")
        assert label.interaction_id == answered["data"]["interaction_id"]
        assert label.metadata["reviewer"] == label_studio.username
        assert label.metadata["ls_annotation_id"] == first["id"]
        correction = by_id[f"{question.id}.review"]
        assert (correction.value, correction.kind.value) == ("Paris", "correction")

        # The dispute ends when one answer is marked ground truth; the answer changes later.
        await reviewer.call("PATCH", f"/api/annotations/{dissent['id']}/",
                            {"ground_truth": True})
        await reviewer.call("PATCH", f"/api/annotations/{first['id']}/",
                            {"result": choice("positive")})
        seen = await feedback_events(settings, lambda fs: len(fs) >= 4)
        by_id = {f.id: f for f in seen}
        settled = by_id[f"{disputed['data']['request_id']}.review"]
        assert (settled.value, settled.metadata["reviewer"]) == ("negative",
                                                                 "ann@driftloop.test")
        revision = by_id[f"{answered['data']['request_id']}.review.1"]
        assert revision.value == "positive"
        assert revision.metadata["revises"] == label.id
        assert revision.interaction_id == label.interaction_id

    # A restarted bridge: the worker sends the same requests again, and one more.
    [late] = worker_label_requests("sentiment", ["so-so"], [0.5], now=2000.0)
    await publish_requests(settings, [*uncertain, late])
    async with running(settings, ["sentiment", "qa"]) as bridge:
        tasks = await wait_until_async(
            lambda: _when(reviewer.tasks(project["id"]), lambda ts: len(ts) >= 5), 60,
            "the late request imported")
        looks = bridge.looks
        await wait_until_async(lambda: bridge.looks >= looks + 3, 30, "three more looks")
        assert len(tasks) == 5 and len(await reviewer.tasks(project["id"])) == 5
        assert bridge.counts["already_imported"] == 4
        assert bridge.counts["published"] == bridge.counts["revisions"] == 0
    final = await feedback_events(settings, lambda fs: len(fs) >= 4)
    assert sorted(f.id for f in final) == sorted(by_id)  # nothing published twice


async def _when(value: Any, condition: Any) -> Any:
    found = await value
    return found if condition(found) else None


async def test_a_refused_token_is_a_clear_error_at_start(
        kafka_settings: Settings, label_studio: LabelStudioServer) -> None:
    settings = studio_settings(kafka_settings, label_studio, token="not-the-right-token")
    bridge = LabelStudioBridge(settings, tasks=["sentiment"])
    with pytest.raises(LabelStudioAuthError, match="refused the legacy API token"):
        async with bridge:
            pass


async def test_a_personal_access_token_works_and_a_revoked_one_is_refused(
        label_studio: LabelStudioServer) -> None:
    personal = (await asyncio.to_thread(label_studio.api, "POST", "/api/token/", {}))["token"]
    async with LabelStudioClient(label_studio.url, personal) as client:
        assert client.auth_scheme == "Bearer"
        assert (await client.whoami())["email"] == label_studio.username
    await asyncio.to_thread(label_studio.api, "POST", "/api/token/blacklist/",
                            {"refresh": personal})
    with pytest.raises(LabelStudioAuthError, match="personal access token"):
        async with LabelStudioClient(label_studio.url, personal):
            pass


async def test_an_unreachable_server_is_retried_then_a_clear_error() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    client = LabelStudioClient(url, "0123456789abcdef", timeout=2.0, deadline=2.0)
    with pytest.raises(LabelStudioUnreachable, match=f"{url} did not answer .* for 2 s"):
        async with client:
            pass


def test_the_command_bridges_until_sigterm(kafka_settings: Settings,
                                           label_studio: LabelStudioServer) -> None:
    settings = studio_settings(kafka_settings, label_studio)
    requests = worker_label_requests("sentiment", ["meh", "hm"], [0.5, 0.52], now=3000.0)
    asyncio.run(publish_requests(settings, requests))
    env = {**os.environ, **settings.kafka.child_env(),
           "DRIFTLOOP_LABEL_STUDIO_TOKEN": label_studio.token,
           "DRIFTLOOP_LABEL_STUDIO__PROJECT_PREFIX": settings.label_studio.project_prefix,
           "DRIFTLOOP_TASKS__SENTIMENT__LABELS": '["negative", "positive"]'}
    metrics_port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "driftloop.tools", "review", "label-studio",
         "--url", label_studio.url, "--task", "sentiment", "--poll-interval", "0.5",
         "--metrics-port", str(metrics_port)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        title = f"{settings.label_studio.project_prefix}sentiment"

        def imported() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"the bridge exited: {proc.communicate()}")
            found = [p for p in label_studio.api("GET", "/api/projects/?page_size=1000")
                     ["results"] if p["title"] == title]
            return bool(found) and len(label_studio.api(
                "GET", f"/api/tasks/?project={found[0]['id']}")["tasks"]) == 2

        wait_until(imported, 90, "the command's two tasks in Label Studio", interval=0.5)

        def scraped() -> str | None:  # the count follows the import in the same step
            with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics",
                                        timeout=5) as page:
                text = page.read().decode()
            return text if 'driftloop_review_bridge_events_total{kind="imported"} 2.0' in text \
                else None

        wait_until(scraped, 30, "the bridge's /metrics counting two imports")
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "bridging sentiment to Label Studio" in out
    assert "stopped: imported 2" in out


async def test_the_worker_asks_joins_the_answer_and_takes_the_revision(
        kafka_settings: Settings, label_studio: LabelStudioServer, tmp_path: Path) -> None:
    # The whole human loop with the real worker: its label requests, the bridge, a person's
    # answer in Label Studio, the join, and a changed answer replacing the example.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "streams"))
    from stream_helpers import FAST_ENV, WorkerProcess

    settings = studio_settings(kafka_settings, label_studio)
    worker = WorkerProcess(settings, tmp_path, dict(FAST_ENV)).start()
    reviewer = Reviewer(label_studio)
    try:
        now = time.time()
        seen = [Interaction(id=f"w-{k}", ts=now + k, task="sentiment", model_version="v1",
                            input=text, prediction="positive",
                            scores={"confidence": p, "probabilities": {"positive": p,
                                                                       "negative": 1 - p}})
                for k, (text, p) in enumerate([("hmm", 0.52), ("well", 0.55), ("wow", 0.99)])]
        async with Publisher(settings) as publisher:
            await publisher.send(seen)
        async with running(settings, ["sentiment"]) as bridge:
            project = await wait_until_async(
                lambda: reviewer.project(bridge.project_title("sentiment")), 90,
                "the project")
            tasks = await wait_until_async(
                lambda: _when(reviewer.tasks(project["id"]), lambda ts: len(ts) == 2), 90,
                "the worker's two label requests in Label Studio")
            assert {t["data"]["interaction_id"] for t in tasks} == {"w-0", "w-1"}
            target = next(t for t in tasks if t["data"]["interaction_id"] == "w-0")
            first = await reviewer.annotate(target["id"], choice("negative"))
            for kind in ("joined", "examples"):
                await asyncio.to_thread(worker.wait_value, "driftloop_worker_events_total", 1,
                                        60, task="sentiment", kind=kind)
            await reviewer.call("PATCH", f"/api/annotations/{first['id']}/",
                                {"result": choice("positive")})
            await asyncio.to_thread(worker.wait_value, "driftloop_worker_events_total", 1, 60,
                                    task="sentiment", kind="examples_revised")
            assert worker.value("driftloop_worker_events_total", task="sentiment",
                                kind="examples") == 1  # replaced, not added
    finally:
        assert worker.stop() == 0, worker.tail()
