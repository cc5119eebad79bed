"""The review page's HTTP API on the real broker: label requests in, reviewers' answers out
as feedback events, refusals that publish nothing, the token (``review/page.py``)."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer
from kafka_helpers import produce
from review_samples import TOKEN, feedback_on_topic, label_request, review_settings
from waiting import wait_until_async

from driftloop.review.auth import ReviewSetupError
from driftloop.review.page import create_app
from driftloop.schemas import FeedbackSource, Topic, encode
from driftloop.schemas.settings import Settings

pytestmark = [pytest.mark.kafka]

ANN = {"Authorization": "Basic " + base64.b64encode(f"ann:{TOKEN}".encode()).decode()}
BEARER = {"Authorization": f"Bearer {TOKEN}"}


async def publish_requests(settings: Settings, *requests) -> None:  # type: ignore[no-untyped-def]
    await produce(settings, Topic.LABEL_REQUESTS, [encode(r) for r in requests],
                  key=requests[0].task)


async def page_client(settings: Settings) -> TestClient:
    client = TestClient(TestServer(create_app(settings)))
    await client.start_server()  # starts the desk: feedback read, group joined
    return client


async def pending(client: TestClient, count: int) -> dict:
    """Wait until the page has ``count`` requests waiting; the /api/tasks body."""
    async def seen() -> dict | None:
        response = await client.get("/api/tasks", headers=ANN)
        body = await response.json()
        return body if body["pending"] == count else None
    return await wait_until_async(seen, 30, f"{count} requests waiting on the page")


async def feedback_count(settings: Settings, count: int) -> list:
    async def enough() -> list | None:
        events = await feedback_on_topic(settings)
        return events if len(events) >= count else None
    return await wait_until_async(enough, 30, f"{count} feedback events on the topic")


@pytest.fixture
async def settings(kafka_settings: Settings) -> Settings:
    return review_settings(kafka_settings, undo_window_s=0)


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[TestClient]:
    client = await page_client(settings)
    try:
        yield client
    finally:
        await client.close()


async def test_answers_through_the_api_are_feedback_on_the_topic(settings: Settings,
                                                                 client: TestClient) -> None:
    await publish_requests(settings, label_request(1, priority=0.3),
                           label_request(2, priority=0.9), label_request(3, priority=0.6))
    tasks = await pending(client, 3)
    assert tasks["tasks"] == [{"task": "sentiment", "pending": 3, "held": 0, "answered": 0}]
    assert tasks["reviewer"] == "ann"
    answered = []
    for value in ("negative", "positive", "negative"):
        shown = await (await client.get("/api/next?task=sentiment", headers=ANN)).json()
        view = shown["request"]
        assert view["labels"] == ["negative", "positive"]
        assert view["model"] == {"answer": "positive", "confidence": 0.52, "version": "v1",
                                 "probabilities": {"negative": 0.48, "positive": 0.52}}
        assert view["reason"] == "margin" and view["text"].startswith("review text number")
        response = await client.post("/api/answer", headers=ANN,
                                     json={"request_id": view["request_id"], "value": value})
        assert response.status == 202, await response.text()
        body = await response.json()
        assert body["feedback_id"] == f"{view['request_id']}.review"
        answered.append((view["request_id"], value))
    assert [rid for rid, _ in answered] == ["lr-i2", "lr-i3", "lr-i1"]  # by priority
    events = await feedback_count(settings, 3)
    assert sorted((e.metadata["label_request_id"], e.value) for e in events) == sorted(answered)
    assert {(e.source, e.metadata["reviewer"], e.task) for e in events} == {
        (FeedbackSource.REVIEWER, "ann", "sentiment")}
    assert {e.interaction_id for e in events} == {"i1", "i2", "i3"}
    done = await (await client.get("/api/next", headers=ANN)).json()
    assert done == {"request": None, "left": 0, "upcoming": []}
    metrics = await (await client.get("/metrics", headers=BEARER)).text()
    assert 'driftloop_review_answers_total{task="sentiment"} 3.0' in metrics
    assert 'driftloop_review_pending{task="sentiment"} 0.0' in metrics
    assert 'driftloop_review_answer_latency_seconds_count{task="sentiment"} 3.0' in metrics


async def test_a_bad_answer_is_refused_and_nothing_is_published(settings: Settings,
                                                                client: TestClient) -> None:
    await publish_requests(settings, label_request(1))
    await pending(client, 1)
    bad = await client.post("/api/answer", headers=ANN,
                            json={"request_id": "lr-i1", "value": "maybe"})
    assert bad.status == 400
    assert (await bad.json())["error"] == (
        "'maybe' is not a label of task 'sentiment' (negative, positive)")
    unknown = await client.post("/api/answer", headers=ANN,
                                json={"request_id": "lr-nope", "value": "negative"})
    assert unknown.status == 404
    for body in ({"value": "negative"}, {"request_id": "lr-i1", "value": 3}, ["lr-i1"]):
        assert (await client.post("/api/answer", headers=ANN, json=body)).status == 400
    not_json = await client.post("/api/answer", headers=ANN,
                                 data="request_id=lr-i1&value=negative",
                                 skip_auto_headers=["Content-Type"])
    assert not_json.status == 415  # what a cross-site form would send
    await pending(client, 1)  # still waiting
    good = await client.post("/api/answer", headers=ANN,
                             json={"request_id": "lr-i1", "value": "positive"})
    assert good.status == 202
    await feedback_count(settings, 1)
    # The broker keeps a partition's order: a refused answer sent, it would be before this.
    assert [(e.id, e.value) for e in await feedback_on_topic(settings)] == [
        ("lr-i1.review", "positive")]
    metrics = await (await client.get("/metrics", headers=ANN)).text()
    assert 'driftloop_review_rejected_answers_total{code="400"} 4.0' in metrics


async def test_a_request_answered_twice_is_one_feedback(settings: Settings,
                                                        client: TestClient) -> None:
    request = label_request(1)
    await publish_requests(settings, request, request)  # the worker redelivered it
    await pending(client, 1)
    first = await client.post("/api/answer", headers=ANN,
                              json={"request_id": "lr-i1", "value": "negative"})
    assert first.status == 202
    again = await client.post("/api/answer", headers=BEARER,
                              json={"request_id": "lr-i1", "value": "positive"})
    assert again.status == 409
    assert "answered already (by ann)" in (await again.json())["error"]
    await feedback_count(settings, 1)
    undo = await client.post("/api/undo", headers=ANN, json={})
    assert undo.status == 409  # published already: it stands, and undo says so
    assert "published already" in (await undo.json())["error"]
    await client.close()  # stop the desk: everything it had is flushed
    assert [(e.id, e.value) for e in await feedback_on_topic(settings)] == [
        ("lr-i1.review", "negative")]


async def test_undo_within_the_window_publishes_only_the_second_answer(
        kafka_settings: Settings) -> None:
    settings = review_settings(kafka_settings, undo_window_s=600)
    client = await page_client(settings)
    try:
        await publish_requests(settings, label_request(1), label_request(2, priority=0.1))
        await pending(client, 2)
        answer = {"request_id": "lr-i1", "value": "negative"}
        assert (await client.post("/api/answer", headers=ANN, json=answer)).status == 202
        bob = {"Authorization": "Basic " + base64.b64encode(f"bob:{TOKEN}".encode()).decode()}
        assert (await client.post("/api/undo", headers=bob, json={})).status == 409  # not bob's
        undone = await client.post("/api/undo", headers=ANN, json={})
        assert undone.status == 200
        assert (await undone.json())["request"]["request_id"] == "lr-i1"
        shown = await (await client.get("/api/next", headers=ANN)).json()
        assert shown["request"]["request_id"] == "lr-i1" and shown["left"] == 2
        answer["value"] = "positive"
        assert (await client.post("/api/answer", headers=ANN, json=answer)).status == 202
        tasks = await (await client.get("/api/tasks", headers=ANN)).json()
        assert tasks["tasks"][0]["held"] == 1
        metrics = await (await client.get("/metrics", headers=ANN)).text()
        assert 'driftloop_review_undos_total{task="sentiment"} 1.0' in metrics
    finally:
        await client.close()  # the reviewers are gone: the held answer is published
    assert [(e.id, e.value) for e in await feedback_on_topic(settings)] == [
        ("lr-i1.review", "positive")]


async def test_every_request_without_the_token_gets_401(settings: Settings,
                                                        client: TestClient) -> None:
    await publish_requests(settings, label_request(1))
    await pending(client, 1)
    wrong = {"Authorization": "Basic " + base64.b64encode(b"ann:not-the-token").decode()}
    for headers in ({}, wrong, {"Authorization": "Bearer not-the-token"}):
        for method, path in (("GET", "/"), ("GET", "/api/tasks"), ("GET", "/api/next"),
                             ("POST", "/api/answer"), ("POST", "/api/undo"),
                             ("GET", "/metrics")):
            response = await client.request(method, path, headers=headers,
                                            json={"request_id": "lr-i1", "value": "negative"})
            assert response.status == 401, (method, path, headers)
            assert response.headers["WWW-Authenticate"].startswith("Basic realm=")
    assert (await client.get("/healthz")).status == 200  # a probe has no secret
    page = await client.get("/", headers=ANN)
    assert page.status == 200 and "driftloop review" in await page.text()
    assert "nonce-" in page.headers["Content-Security-Policy"]
    assert (await client.get("/api/tasks", headers=BEARER)).status == 200
    await pending(client, 1)  # nothing was answered by the refused requests


async def test_an_app_without_a_token_is_refused_unless_no_auth(kafka_settings: Settings,
                                                                monkeypatch: pytest.MonkeyPatch
                                                                ) -> None:
    monkeypatch.delenv("DRIFTLOOP_REVIEW_TOKEN", raising=False)
    with pytest.raises(ReviewSetupError, match="needs a token"):
        create_app(kafka_settings)
    client = TestClient(TestServer(create_app(kafka_settings, no_auth=True)))
    await client.start_server()  # the command allows this on loopback only
    try:
        assert (await client.get("/api/tasks")).status == 200
    finally:
        await client.close()
