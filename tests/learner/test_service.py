"""The learner against the real broker: requests in, gated versions out, crash-safe."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from kafka_helpers import consume_until, produce
from learner_helpers import learner_env, replay_tweets, sentiment_request
from monitoring_names import assert_serves
from waiting import wait_until

from driftloop.learner.errors import ArtifactIntegrityError
from driftloop.learner.gate.challenges import ChallengeSuite
from driftloop.learner.gate.error_probes import ERROR_TAG
from driftloop.learner.heartbeat import HEARTBEAT_FILE, read_heartbeat
from driftloop.learner.models.resident import ResidentModels
from driftloop.learner.registry.version_log import version_id_for
from driftloop.learner.service import HOLD_BEFORE_PUBLISH_ENV, LearnerService
from driftloop.learner.topics.versions import publish_with_new_producer, read_version_log
from driftloop.learner.training.update import IncrementalUpdater, store_from_settings
from driftloop.schemas.codec import decode, encode
from driftloop.schemas.enums import VersionStatus
from driftloop.schemas.events import DeadLetter, ModelVersion
from driftloop.schemas.settings import Settings
from driftloop.schemas.topics import Topic

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

DRIFTLOOP = Path(sys.executable).parent / "driftloop"


def with_learner(kafka_settings: Settings, session_settings: Settings,
                 store: str | None = None) -> Settings:
    """The test's broker and topics, the session's learner and task settings."""
    artifacts = kafka_settings.artifacts
    if store is not None:
        artifacts = artifacts.model_copy(update={"store_url": store})
    learner = session_settings.learner.model_copy(
        update={"group_id": f"{kafka_settings.kafka.topic_prefix}learner"})
    return kafka_settings.model_copy(update={"learner": learner, "tasks": session_settings.tasks,
                                             "artifacts": artifacts})


async def run_service(settings: Settings, updater: IncrementalUpdater, requests: list[bytes],
                      expect_versions: int, timeout: float = 240.0,
                      services: list[LearnerService] | None = None) -> list[ModelVersion]:
    """Produce requests, run the service until it handled them all, read the versions."""
    await produce(settings, Topic.TRAINING_REQUESTS, requests, key="sentiment")
    service = LearnerService(settings, updater=updater, max_requests=len(requests))
    if services is not None:
        services.append(service)
    try:
        await asyncio.wait_for(service.run(), timeout)
    finally:
        service.stop()
    beat = read_heartbeat(settings.learner.cache_dir / HEARTBEAT_FILE)
    assert beat is not None and beat["pid"] == os.getpid()  # what `learner health` reads
    records = await consume_until(settings, Topic.MODEL_VERSIONS, expect_versions, timeout=30)
    return [decode(r.value, ModelVersion) for r in records]


def session_updater(settings: Settings, updater: IncrementalUpdater) -> IncrementalUpdater:
    return IncrementalUpdater(settings, models=updater.models, device=updater.device)


async def test_request_yields_promoted_version_loadable_in_fresh_process(
        kafka_settings, session_settings, updater, sentiment_v1, tmp_path,
        unused_port) -> None:  # type: ignore[no-untyped-def]
    settings = with_learner(kafka_settings, session_settings,
                            store=session_settings.artifacts.store_url)
    suite = tmp_path / "suite.jsonl"
    shutil.copy(session_settings.task("sentiment").challenge_suite, suite)
    grown = settings.task("sentiment").model_copy(update={"challenge_suite": suite,
                                                          "challenge_growth": 3})
    settings = settings.model_copy(update={"tasks": {**settings.tasks, "sentiment": grown}})
    port = unused_port
    settings = settings.model_copy(update={"learner": settings.learner.model_copy(
        update={"metrics_port": port})})
    request = sentiment_request("r1")
    # The same request twice (a producer retry) and one undecodable record.
    raw = [encode(request), encode(request), b'{"schema_name": "driftloop.training_request"}']
    scraped: list[str] = []

    async def scrape() -> None:  # /metrics answers while the learner runs
        def answered() -> bool:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
                    scraped.append(r.read().decode())
                return True
            except OSError:
                return False

        await asyncio.to_thread(wait_until, answered, 120, "the learner's /metrics")

    scraping = asyncio.create_task(scrape())
    services: list[LearnerService] = []
    versions = await run_service(settings, session_updater(settings, updater), raw, 1,
                                 services=services)
    await scraping
    assert "driftloop_learner_queue_lag" in scraped[0]
    assert_serves(scraped[0], "learner")  # what the dashboard and alert rules read
    text = services[0].metrics.render().decode()
    for line in ('driftloop_learner_updates_total{outcome="promoted",task="sentiment"} 1.0',
                 'driftloop_learner_updates_total{outcome="skipped",task="sentiment"} 1.0',
                 'driftloop_learner_updates_total{outcome="dead_letter",task="sentiment"} 1.0',
                 'driftloop_learner_update_seconds_count{phase="train"} 1.0',
                 "driftloop_learner_publish_seconds_count 1.0",
                 # The updater's models are shared by the session: count what it holds.
                 f"driftloop_learner_resident_models {len(updater.models.resident())}.0"):
        assert line in text, text
    dead = await consume_until(settings, Topic.DEAD_LETTERS, 1, timeout=60)
    assert decode(dead[0].value, DeadLetter).reason == "invalid_event"
    registry = await read_version_log(settings)
    assert registry.events_seen == 1, "a request read twice must publish once"
    (event,) = versions
    assert event.version_id == version_id_for("sentiment", "r1", deployment=settings.deployment_id)
    assert event.status is VersionStatus.PROMOTED, event.reason
    # When the learner took the request, before the update it timed (``bench freshness``).
    received = event.metadata["received_ts"]
    assert request.ts <= received <= event.ts - event.metadata["timings"]["update_seconds"]
    assert event.metadata["regime"] == 0  # the newest regime it trained on: its gate's start
    # Seeds fixed: the request trained again (here, through Kafka) gives the same weights
    # (the folders differ in the version id their metadata names: another deployment).
    store = store_from_settings(settings)
    weights = [(store.fetch(e.adapter_uri, e.sha256, tmp_path / n) / "adapter_model.safetensors"
                ).read_bytes() for n, e in (("kafka", event), ("fixture", sentiment_v1.event))]
    assert weights[0] == weights[1]
    # The promoted version's parent errors joined the challenge suite, after publishing.
    added = [c for c in ChallengeSuite.load(suite) if "from-error" in c.tags]
    assert len(added) == 3 and all("source:r1" in c.tags for c in added)

    spec = tmp_path / "spec.json"
    cfg = settings.learner
    spec.write_text(json.dumps({
        "store_url": settings.artifacts.store_url, "event": event.model_dump(mode="json"),
        "request": request.model_dump(mode="json"), "holdout_fraction": cfg.holdout_fraction,
        "seed": cfg.seed, "max_length": cfg.max_length}))
    scored = await asyncio.to_thread(
        subprocess.run, [sys.executable, str(Path(__file__).with_name("score_adapter.py")),
                         str(spec)], capture_output=True, text=True, timeout=300, check=False)
    assert scored.returncode == 0, scored.stderr[-3000:]
    result = json.loads(scored.stdout.strip().splitlines()[-1])
    assert result["accuracy"] > event.metrics_before["holdout_score"]
    assert result["accuracy"] == pytest.approx(event.metrics_after["holdout_score"])


async def test_tampered_adapter_is_refused_at_load(
        kafka_settings, session_settings, sentiment_v1, tmp_path) -> None:  # type: ignore[no-untyped-def]
    event = sentiment_v1.event
    source = Path(session_settings.artifacts.store_url) / event.sha256
    copy = tmp_path / "store" / event.sha256
    shutil.copytree(source, copy)
    weights = copy / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1] + b"\0")
    settings = with_learner(kafka_settings, session_settings, store=str(tmp_path / "store"))
    store = store_from_settings(settings)
    with pytest.raises(ArtifactIntegrityError, match="tampered"):
        store.fetch(store.uri_for(event.sha256), event.sha256, tmp_path / "out")
    # A learner asked to continue from it dead-letters the request instead of training.
    tampered = event.model_copy(update={"adapter_uri": store.uri_for(event.sha256)})
    await publish_with_new_producer(settings, [tampered])
    service = LearnerService(settings, max_requests=1, updater=IncrementalUpdater(
        settings, models=ResidentModels(loader=_never_loaded)))
    await produce(settings, Topic.TRAINING_REQUESTS, [encode(sentiment_request("r2", n=8))])
    await asyncio.wait_for(service.run(), 120)
    dead = decode((await consume_until(settings, Topic.DEAD_LETTERS, 1))[0].value, DeadLetter)
    assert dead.reason == "untrainable_request" and "tampered" in dead.error
    assert (await read_version_log(settings)).events_seen == 1


async def test_a_request_by_reference_trains_and_a_broken_reference_is_a_dead_letter(
        kafka_settings, session_settings, updater, sentiment_v1, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from driftloop.learner.registry.examples import put_examples

    store_dir = tmp_path / "store"
    shutil.copytree(session_settings.artifacts.store_url, store_dir)
    settings = with_learner(kafka_settings, session_settings, store=str(store_dir))
    suite = tmp_path / "suite.jsonl"  # real errors named by reference grow it too
    shutil.copy(session_settings.task("sentiment").challenge_suite, suite)
    task = settings.task("sentiment").model_copy(update={"challenge_suite": suite})
    settings = settings.model_copy(update={"tasks": {**settings.tasks, "sentiment": task}})
    await publish_with_new_producer(settings, [sentiment_v1.event.model_copy(update={
        "adapter_uri": store_from_settings(settings).uri_for(sentiment_v1.event.sha256)})])
    request = sentiment_request("r-by-ref", domain="movies", n=24, seed=9)
    wrong = {0, 1}  # the served model answered these two the other way
    examples = [e.model_copy(update={"model_answer": next(
        label for label in ("negative", "positive") if label != e.target)}) if i in wrong else e
        for i, e in enumerate(request.examples)]
    request = request.model_copy(update={"examples": examples})
    ref = put_examples(store_from_settings(settings), request.examples)
    by_ref = request.model_copy(update={"examples": [], "examples_ref": ref})
    broken = by_ref.model_copy(update={"id": "r-broken", "examples_ref": ref.model_copy(
        update={"count": ref.count + 1})})
    versions = await run_service(settings, session_updater(settings, updater),
                                 [encode(broken), encode(by_ref)], 2)
    assert versions[-1].version_id == version_id_for("sentiment", "r-by-ref",
                                                     deployment=settings.deployment_id)
    assert versions[-1].metadata["examples_ref"]["sha256"] == ref.sha256
    probes = [case for case in ChallengeSuite.load(suite) if ERROR_TAG in case.tags]
    assert sorted(p.input for p in probes) == sorted(examples[i].input for i in wrong)
    assert {p.source["training_request_id"] for p in probes} == {"r-by-ref"}
    dead = decode((await consume_until(settings, Topic.DEAD_LETTERS, 1))[0].value, DeadLetter)
    assert dead.reason == "untrainable_request" and "the reference says 25" in dead.error


def _never_loaded(model_id, kind):  # type: ignore[no-untyped-def]
    raise AssertionError("a refused parent must stop the update before any model is loaded")


async def test_flipped_labels_are_published_as_rejected(
        kafka_settings, session_settings, updater, sentiment_v1) -> None:  # type: ignore[no-untyped-def]
    settings = with_learner(kafka_settings, session_settings,
                            store=session_settings.artifacts.store_url)
    await publish_with_new_producer(settings, [sentiment_v1.event])  # the parent, trained earlier
    flipped = sentiment_request("r-flip", seed=3, flip=True, replay=replay_tweets())
    versions = await run_service(settings, session_updater(settings, updater),
                                 [encode(flipped)], 2)
    event = versions[-1]
    assert event.version_id == version_id_for("sentiment", "r-flip",
                                              deployment=settings.deployment_id)
    assert event.parent_version == sentiment_v1.event.version_id
    assert event.status is VersionStatus.REJECTED
    # Published with its metrics and the rule's reasons, so operators can see why.
    assert event.metrics_before["replay_score"] > 0 and "challenge_score" in event.metrics_after
    assert "recent: " in event.reason and "older: " in event.reason  # each part, with its test
    registry = await read_version_log(settings)
    assert registry.head("sentiment").version_id == sentiment_v1.event.version_id


def wait_for(condition, timeout: float, what: str, proc=None) -> None:  # type: ignore[no-untyped-def]
    def holds() -> bool:
        if condition():
            return True
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"learner exited ({proc.returncode}) before {what}")
        return False

    wait_until(holds, timeout, what)


async def test_killed_between_training_and_publishing_publishes_once(
        kafka_settings, session_settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = with_learner(kafka_settings, session_settings)
    request = sentiment_request("r-crash", n=32, seed=5)
    await produce(settings, Topic.TRAINING_REQUESTS, [encode(request)], key="sentiment")
    marker = tmp_path / "held"
    first = subprocess.Popen([str(DRIFTLOOP), "learner"], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT,
                             env=learner_env(settings, **{HOLD_BEFORE_PUBLISH_ENV: str(marker)}))
    try:
        await asyncio.to_thread(wait_for, marker.exists, 300, "the adapter to be stored", first)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(30)
    assert marker.read_text() == version_id_for("sentiment", "r-crash",
                                                deployment=settings.deployment_id)
    assert (await read_version_log(settings)).events_seen == 0

    second = subprocess.Popen([str(DRIFTLOOP), "learner"], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, env=learner_env(settings))
    try:
        await consume_until(settings, Topic.MODEL_VERSIONS, 1, timeout=300)
    finally:
        second.send_signal(signal.SIGTERM)  # a graceful stop: exit 0, summary printed
        output, _ = second.communicate(timeout=60)
    assert second.returncode == 0, output[-3000:]
    assert "published 1, skipped 0" in output
    registry = await read_version_log(settings)
    assert registry.events_seen == 1
    assert [v.version_id for v in registry.versions()] == [version_id_for("sentiment", "r-crash",
                                                                 deployment=settings.deployment_id)]


async def test_sigterm_during_an_update_finishes_it_publishes_once_and_commits(
        kafka_settings, session_settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = with_learner(kafka_settings, session_settings)
    first_request = sentiment_request("r-term-1", n=32, seed=6)
    await produce(settings, Topic.TRAINING_REQUESTS, [encode(first_request)], key="sentiment")
    log_path = tmp_path / "learner.log"
    with open(log_path, "wb") as log:
        first = subprocess.Popen([str(DRIFTLOOP), "-v", "learner"], stdout=log,
                                 stderr=subprocess.STDOUT, env=learner_env(settings))
    first_id = version_id_for("sentiment", "r-term-1", deployment=settings.deployment_id)
    training = f"training {first_id}".encode()
    try:
        await asyncio.to_thread(wait_for, lambda: training in log_path.read_bytes(), 300,
                                "the learner to start the update", first)
        first.send_signal(signal.SIGTERM)  # mid-update: finish it, publish, commit, exit
        assert first.wait(300) == 0, log_path.read_text()[-3000:]
    finally:
        if first.poll() is None:
            first.kill()
    log_text = log_path.read_bytes()
    assert b"published 1, skipped 0" in log_text
    # A normal start and update: no ERROR line, no progress bar in the daemon's log.
    assert b" ERROR " not in log_text and b"Loading weights" not in log_text, log_text[-3000:]
    assert (await read_version_log(settings)).events_seen == 1

    # The offset was committed with the version: a new learner skips nothing and trains only
    # the request that came after.
    await produce(settings, Topic.TRAINING_REQUESTS,
                  [encode(sentiment_request("r-term-2", n=32, seed=7))], key="sentiment")
    second = subprocess.Popen([str(DRIFTLOOP), "learner"], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, env=learner_env(settings))
    try:
        await consume_until(settings, Topic.MODEL_VERSIONS, 2, timeout=300)
    finally:
        second.send_signal(signal.SIGTERM)
        output, _ = second.communicate(timeout=120)
    assert second.returncode == 0, output[-3000:]
    assert "published 1, skipped 0" in output
    registry = await read_version_log(settings)
    assert [v.training_request_id for v in registry.versions()] == ["r-term-1", "r-term-2"]
