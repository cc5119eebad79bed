"""The reference service on the real broker: hot swap, rollback, refusals, events out."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from kafka_helpers import consume_until
from serving_helpers import TASK, publish, serving_settings, store, version_event
from waiting import wait_until_async

from driftloop.learner.registry.store import StoredArtifact
from driftloop.learner.registry.version_log import VersionLog
from driftloop.learner.serving.http import ServingService
from driftloop.schemas import (
    Feedback,
    Interaction,
    ServingAck,
    Topic,
    decode,
    decode_batch,
)
from driftloop.schemas.enums import VersionStatus
from driftloop.schemas.settings import Settings

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

SWAP_DEADLINE_S = 1.0


async def running(settings: Settings, resident_models) -> AsyncIterator[TestClient]:  # type: ignore[no-untyped-def]
    service = ServingService(settings, models=resident_models)
    client = TestClient(TestServer(service.app()))
    await client.start_server()
    return client


async def poll(check: Callable[[], Any], timeout: float, what: str) -> Any:
    """Await ``check()`` until it returns something truthy; fail after ``timeout``."""
    return await wait_until_async(check, timeout, what, interval=0.01)


async def answer(client: TestClient, text: str = "an ordinary afternoon") -> dict:
    response = await client.post("/predict", json={"task": TASK, "input": text})
    assert response.status == 200, await response.text()
    return await response.json()


async def swap_seconds(client: TestClient, version: str, published_at: float) -> float:
    async def served() -> bool:
        return (await answer(client))["model_version"] == version
    await poll(served, 10.0, f"serving {version}")
    return time.monotonic() - published_at


async def acks_of(settings: Settings, until: Callable[[list[ServingAck]], bool]) -> list:
    records = await consume_until(
        settings, Topic.SERVING_ACKS,
        lambda rs: until([decode(r.value, ServingAck) for r in rs]), timeout=15.0)
    return [decode(r.value, ServingAck) for r in records]


async def test_promotion_swaps_within_a_second_rollback_restores_bad_sha_is_refused(  # type: ignore[no-untyped-def]
        kafka_settings, resident_models, probes, tmp_path: Path) -> None:
    settings = serving_settings(kafka_settings, tmp_path, "replica-1")
    neg, pos, neg2 = (store(settings, probes[n]) for n in ("neg", "pos", "neg2"))
    v1 = version_event("v1", neg)
    await publish(settings, v1)
    client = await running(settings, resident_models)
    try:
        await poll(lambda: _serving(client, "v1"), 60.0, "v1 served at start")
        first = await answer(client)
        assert (first["output"], first["model_version"]) == ("negative", "v1")

        # A promotion changes what /predict returns, without a restart, within a second.
        v2 = version_event("v2", pos, parent="v1")
        await publish(settings, v2)
        assert await swap_seconds(client, "v2", time.monotonic()) < SWAP_DEADLINE_S
        assert (await answer(client))["output"] == "positive"

        # A rollback restores the previous version (still loaded: a pointer move).
        await publish(settings, *VersionLog().extend([v1, v2]).rollback_events(TASK,
                                                                               ts=time.time()))
        assert await swap_seconds(client, "v1", time.monotonic()) < SWAP_DEADLINE_S
        assert (await answer(client))["output"] == "negative"

        # A version whose sha256 does not match its artifact is refused, and so is one whose
        # stored bytes were tampered with after publication; v1 keeps serving.
        acks = await publish_bad_sha_and_tampered_bytes(settings, pos, neg2)
        refused = {a.version_id: a for a in acks if a.status == "refused"}
        assert "sha256" in refused["v3"].reason and "expected" in refused["v4"].reason
        assert refused["v4"].metadata["serving"] == "v1"
        assert [(a.version_id, a.previous_version) for a in acks if a.status == "serving"] == [
            ("v1", None), ("v2", "v1"), ("v1", "v2")]
        after = await answer(client)
        assert (after["output"], after["model_version"]) == ("negative", "v1")
        health = await (await client.get("/healthz")).json()
        assert health["status"] == "ok" and health["serving"] == {TASK: "v1"}
        assert health["refused"] == ["v3", "v4"]

        # Every answer was published as an interaction with its version, scores and embedding.
        await check_published(settings, client, after)

        metrics = await (await client.get("/metrics")).text()
        assert 'driftloop_serving_swaps_total{task="sentiment"} 3.0' in metrics
        assert 'driftloop_serving_refused_versions_total{task="sentiment"} 2.0' in metrics
        assert 'driftloop_serving_version_info{task="sentiment",version="v1"} 1.0' in metrics
    finally:
        await client.close()


async def publish_bad_sha_and_tampered_bytes(settings: Settings, pos: StoredArtifact,
                                             neg2: StoredArtifact) -> list[ServingAck]:
    """Publish v3 (its sha256 names another artifact) and v4 (its stored bytes tampered
    with after publication); the acks once both are answered."""
    wrong_sha = version_event("v3", pos, parent="v1").model_copy(
        update={"sha256": neg2.sha256})
    await publish(settings, wrong_sha)
    await acks_of(settings, lambda acks: any(a.version_id == "v3" for a in acks))
    # v4's artifact was stored whole; its bytes change before the replica fetches them.
    weights = Path(neg2.uri.removeprefix("file://")) / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-8] + b"\0" * 8)
    await publish(settings, version_event("v4", neg2, parent="v1"))
    return await acks_of(settings, lambda acks: any(a.version_id == "v4" for a in acks))


async def check_published(settings: Settings, client: TestClient, after: dict) -> None:
    """``after`` went out as an interaction with its version, scores and embedding (and
    every answer before it with v1 or v2), and feedback on it as Feedback."""
    feedback = await client.post("/feedback", json={
        "interaction_id": after["id"], "task": TASK, "kind": "label", "value": "positive"})
    assert feedback.status == 202
    records = await consume_until(settings, Topic.INTERACTIONS, lambda rs: any(
        i.id == after["id"] for r in rs for i in _events(r.value)), timeout=15.0)
    seen = {i.id: i for r in records for i in _events(r.value)}
    event = seen[after["id"]]
    assert isinstance(event, Interaction) and event.model_version == "v1"
    assert event.prediction == "negative" and len(event.embedding) == 384
    assert event.scores.confidence == pytest.approx(after["confidence"])
    assert event.metadata["replica"] == "replica-1"
    assert {i.model_version for i in seen.values()} == {"v1", "v2"}
    [record] = await consume_until(settings, Topic.FEEDBACK, 1)
    assert decode(record.value, Feedback).interaction_id == after["id"]


async def _serving(client: TestClient, version: str) -> bool:
    health = await (await client.get("/healthz")).json()
    return health["serving"].get(TASK) == version


def _events(value: bytes) -> list:
    return [e for e in decode_batch(value, Interaction) if isinstance(e, Interaction)]


@pytest.mark.parametrize(("path", "body", "status", "message"), [
    ("/predict", b"not json", 400, "JSON object"),
    ("/predict", b"[1, 2]", 400, "JSON object"),
    ("/predict", b'{"input": "x"}', 400, "'task'"),
    ("/predict", b'{"task": "sentiment"}', 400, "'input'"),
    ("/predict", b'{"task": "sentiment", "inputs": ["a", 3]}', 400, "'inputs'"),
    ("/predict", b'{"task": "sentiment", "inputs": ["a", "b", "c"]}', 400, "at most 2"),
    ("/predict", b'{"task": "sentiment", "input": "a", "ids": ["1", "2"]}', 400, "one per input"),
    ("/predict", b'{"task": "sentiment", "input": "a", "metadata": 3}', 400, "'metadata'"),
    ("/predict", b'{"task": "other", "input": "a"}', 503, "not served by this replica"),
    ("/predict", b'{"task": "sentiment", "input": "a"}', 503,
     "driftloop learner bootstrap --task sentiment"),
    ("/feedback", b'{"task": "sentiment", "kind": "rating", "value": "five"}', 400,
     "interaction_id"),
    ("/feedback", b'{"interaction_id": "i", "task": "sentiment", "kind": "rating", '
                  b'"value": "five"}', 400, "value"),
])
async def test_bad_requests_get_a_status_and_a_reason(  # type: ignore[no-untyped-def]
        kafka_settings, resident_models, tmp_path: Path, path: str, body: bytes, status: int,
        message: str) -> None:
    settings = serving_settings(kafka_settings, tmp_path, "replica-bad", max_inputs=2)
    client = await running(settings, resident_models)
    try:
        response = await client.post(path, data=body,
                                     headers={"Content-Type": "application/json"})
        assert response.status == status
        assert message in (await response.json())["error"]
        health = await client.get("/healthz")
        assert health.status == 200
    finally:
        await client.close()


async def test_the_canary_answers_its_share_and_interactions_say_so(  # type: ignore[no-untyped-def]
        kafka_settings, resident_models, probes, tmp_path: Path) -> None:
    settings = serving_settings(kafka_settings, tmp_path, "replica-canary", canary_fraction=1.0)
    neg, pos = store(settings, probes["neg"]), store(settings, probes["pos"])
    await publish(settings, version_event("v1", neg),
                  version_event("v2", pos, status="candidate", parent="v1"))
    client = await running(settings, resident_models)
    try:
        async def canary_loaded() -> bool:
            health = await (await client.get("/healthz")).json()
            return health["serving"] == {TASK: "v1"} and health["candidates"] == {TASK: "v2"}
        await poll(canary_loaded, 60.0, "v1 served with v2 as canary")
        response = await client.post("/predict", json={"task": TASK, "inputs": ["a", "b"],
                                                       "ids": ["c-1", "c-2"]})
        body = await response.json()
        assert (body["model_version"], body["canary"]) == ("v2", True)
        assert [p["output"] for p in body["predictions"]] == ["positive", "positive"]
        records = await consume_until(settings, Topic.INTERACTIONS, lambda rs: sum(
            len(_events(r.value)) for r in rs) >= 2)
        events = [e for r in records for e in _events(r.value)]
        assert {(e.id, e.model_version, e.metadata["canary"]) for e in events} == {
            ("c-1", "v2", True), ("c-2", "v2", True)}
        metrics = await (await client.get("/metrics")).text()
        assert ('driftloop_serving_predictions_total{canary="true",task="sentiment",'
                'version="v2"} 2.0') in metrics
    finally:
        await client.close()


async def test_a_generation_task_without_a_version_answers_zero_shot_and_feeds_the_loop(  # type: ignore[no-untyped-def]
        kafka_settings, resident_models, tmp_path: Path) -> None:
    from driftloop.schemas.settings import TaskSettings

    settings = serving_settings(kafka_settings, tmp_path, "replica-zero", tasks=["reviews"])
    settings = settings.model_copy(update={"tasks": {
        "reviews": TaskSettings(kind="generation", prompt_template_id="sentiment")}})
    client = await running(settings, resident_models)
    try:
        response = await client.post("/predict", json={
            "task": "reviews", "inputs": ["A triumph of a film.", "Dreadful from start to end."]})
        assert response.status == 200, await response.text()
        body = await response.json()
        assert body["model_version"] == "reviews-zero-shot"
        # The base model's answers go out as interactions the worker joins feedback to.
        records = await consume_until(
            settings, Topic.INTERACTIONS,
            lambda rs: sum(len(_events(r.value)) for r in rs) >= 2, timeout=15.0)
        events = [e for r in records for e in _events(r.value)]
        assert {e.model_version for e in events} == {"reviews-zero-shot"}
        # Their version-free input vector rides as the input embedding (input drift).
        assert all(e.input_embedding and e.embedding is None and e.task == "reviews"
                   for e in events)
        assert [e.input for e in events] == ["A triumph of a film.", "Dreadful from start to end."]

        # Turned off, the task is refused until a version exists, and the reason says how.
        off = settings.model_copy(update={
            "serving": settings.serving.model_copy(update={"zero_shot": False,
                                                           "replica_id": "replica-off"})})
        refusing = await running(off, resident_models)
        try:
            refused = await refusing.post("/predict", json={"task": "reviews", "input": "x"})
            assert refused.status == 503
            assert "bootstrap --task reviews" in (await refused.json())["error"]
        finally:
            await refusing.close()
    finally:
        await client.close()


async def test_each_domain_is_answered_by_its_own_lineage_head(  # type: ignore[no-untyped-def]
        kafka_settings, resident_models, probes, tmp_path: Path) -> None:
    """A task with one adapter per domain: a request naming a domain with a head is answered
    by that head, any other by the task's latest; a rolled-back domain falls back."""
    settings = serving_settings(kafka_settings, tmp_path, "replica-domains")
    neg, pos = store(settings, probes["neg"]), store(settings, probes["pos"])
    movies = version_event("v2", pos, metadata={"domain": "movies"})
    await publish(settings, version_event("v1", neg, metadata={"domain": "tweets"}), movies)
    client = await running(settings, resident_models)

    async def by_domain(domain: str) -> tuple[str, str, bool]:
        response = await client.post("/predict", json={"task": TASK, "input": "so-so",
                                                       "domain": domain,
                                                       "id": f"{domain}-{time.time_ns()}"})
        body = await response.json()
        return body["model_version"], body["output"], body["canary"]
    try:
        async def both_served() -> bool:
            health = await (await client.get("/healthz")).json()
            return health["domains"] == {TASK: {"tweets": "v1", "movies": "v2"}}
        await poll(both_served, 60.0, "a head per domain served")
        assert await by_domain("tweets") == ("v1", "negative", False)
        assert await by_domain("movies") == ("v2", "positive", False)
        assert await by_domain("news") == ("v2", "positive", False)  # the task's latest head
        records = await consume_until(settings, Topic.INTERACTIONS, lambda rs: sum(
            len(_events(r.value)) for r in rs) >= 3)
        events = [e for r in records for e in _events(r.value)]
        assert {(e.domain, e.model_version) for e in events} == {
            ("tweets", "v1"), ("movies", "v2"), ("news", "v2")}
        # Each domain's head is acked under its own key: it never stands in for the task's.
        acked = await consume_until(settings, Topic.SERVING_ACKS, lambda rs: {
            r.key for r in rs} >= {b"replica-domains/sentiment/tweets",
                                   b"replica-domains/sentiment/movies"})
        by_key = {r.key: decode(r.value, ServingAck) for r in acked}
        assert by_key[b"replica-domains/sentiment/tweets"].version_id == "v1"
        assert by_key[b"replica-domains/sentiment/tweets"].metadata["domain"] == "tweets"
        assert by_key[b"replica-domains/sentiment"].version_id == "v2"
        await publish(settings, movies.model_copy(update={"status": VersionStatus.ROLLED_BACK}))

        async def movies_fell_back() -> bool:
            return (await by_domain("movies"))[0] == "v1"
        await poll(movies_fell_back, 10.0, "movies answered by the task's version again")
        assert (await (await client.get("/healthz")).json())["domains"] == {
            TASK: {"tweets": "v1"}}
    finally:
        await client.close()
