"""AdapterSubscriber without the HTTP service: convergence, acks, canary, fallback."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from kafka_helpers import produce
from serving_helpers import TASK, publish, serving_settings, store, until, version_event

from driftloop.client.kafka import new_producer
from driftloop.learner.errors import ServingError
from driftloop.learner.models.resident import ResidentModels
from driftloop.learner.serving import (
    AckPublisher,
    AdapterSubscriber,
    ModelHost,
    ServingChange,
    converged,
    read_acks,
)
from driftloop.schemas import Topic, VersionStatus
from driftloop.schemas.settings import Settings

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


class Replica:
    """A subscriber, its host and its ack producer: what a serving layer embeds."""

    def __init__(self, settings: Settings, models: ResidentModels) -> None:
        self.settings = settings
        self.host = ModelHost(models, max_length=32)
        self.changes: list[ServingChange] = []
        self.producer = new_producer(settings)
        self.subscriber = AdapterSubscriber(
            settings, self.host, replica=settings.serving.replica_id or "",
            acks=AckPublisher(producer=self.producer, settings=settings,
                              replica=settings.serving.replica_id or "?"),
            on_serving=[self.changes.append])

    async def __aenter__(self) -> Replica:
        await self.producer.start()
        await self.subscriber.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.subscriber.stop()
        await self.producer.stop()
        self.host.close()


async def test_two_fresh_replicas_converge_on_the_promoted_version_and_ack_it(  # type: ignore[no-untyped-def]
        kafka_settings, resident_models, probes, tmp_path: Path) -> None:
    neg, pos = store(kafka_settings, probes["neg"]), store(kafka_settings, probes["pos"])
    # History before either replica exists, with a record no decoder accepts in the middle.
    await publish(kafka_settings, version_event("v1", neg),
                  version_event("v2", pos, parent="v1"))
    await produce(kafka_settings, Topic.MODEL_VERSIONS, [b"{not json"], key=TASK)
    await publish(kafka_settings, version_event("v3", neg, status="rejected", parent="v2"))
    settings = [serving_settings(kafka_settings, tmp_path, name) for name in ("r-a", "r-b")]
    async with Replica(settings[0], resident_models) as a, \
            Replica(settings[1], resident_models) as b:
        await asyncio.gather(a.subscriber.wait_caught_up(60), b.subscriber.wait_caught_up(60))
        for replica in (a, b):
            assert replica.subscriber.serving(TASK) == "v2"
            # A fresh replica loads the head only, not every version in the log.
            assert replica.host.versions(TASK) == ["v2"]
            assert [(c.version_id, c.previous_version) for c in replica.changes] == [("v2", None)]
            answer = await replica.host.apredict(TASK, "v2", ["fine"])
            assert answer[0].label == "positive"
        acks = await read_acks(kafka_settings)
        assert converged(acks, TASK, "v2", ["r-a", "r-b"])
        assert not converged(acks, TASK, "v1", ["r-a", "r-b"])
        # Each ack says when the replica read the event and what the load took (wall clock:
        # ``bench freshness`` lines these up with the learner's and the worker's stamps).
        for ack in acks.values():
            timing = ack.metadata
            assert 0 < timing["fetch_seconds"] < timing["load_seconds"]
            assert timing["read_ts"] + timing["load_seconds"] <= ack.ts + 1e-3


async def test_a_rollback_without_repromotion_falls_back_to_the_last_promoted(  # type: ignore[no-untyped-def]
        kafka_settings, resident_models, probes, tmp_path: Path) -> None:
    neg, pos = store(kafka_settings, probes["neg"]), store(kafka_settings, probes["pos"])
    v2 = version_event("v2", pos, parent="v1")
    await publish(kafka_settings, version_event("v1", neg), v2)
    async with Replica(serving_settings(kafka_settings, tmp_path, "r-a"),
                       resident_models) as replica:
        await replica.subscriber.wait_caught_up(60)
        assert replica.subscriber.serving(TASK) == "v2"
        await publish(kafka_settings, v2.model_copy(update={"status": VersionStatus.ROLLED_BACK,
                                                            "reason": "operator"}))
        await until(lambda: replica.changes[-1].version_id == "v1", 10, "fallback to v1")
        assert replica.subscriber.serving(TASK) == "v1"
        assert replica.changes[-1].previous_version == "v2"


async def test_the_canary_share_goes_to_the_newest_candidate(  # type: ignore[no-untyped-def]
        kafka_settings, resident_models, probes, tmp_path: Path) -> None:
    neg, pos = store(kafka_settings, probes["neg"]), store(kafka_settings, probes["pos"])
    candidate = version_event("v2", pos, status="candidate", parent="v1")
    await publish(kafka_settings, version_event("v1", neg), candidate)
    settings = serving_settings(kafka_settings, tmp_path, "r-c", canary_fraction=0.25)
    async with Replica(settings, resident_models) as replica:
        subscriber = replica.subscriber
        await subscriber.wait_caught_up(60)
        assert (subscriber.serving(TASK), subscriber.candidate(TASK)) == ("v1", "v2")
        routed = [subscriber.route(TASK, f"request-{i}") for i in range(2000)]
        assert routed.count("v2") / len(routed) == pytest.approx(0.25, abs=0.04)
        # The split is a function of the request id: a retried request lands on the same one.
        assert routed == [subscriber.route(TASK, f"request-{i}") for i in range(2000)]
        assert (await replica.host.apredict(TASK, "v2", ["meh"]))[0].label == "positive"
        # Rejected: the candidate leaves the split and is unloaded.
        rejected = candidate.model_copy(update={"status": VersionStatus.REJECTED})
        await publish(kafka_settings, rejected)
        await until(lambda: subscriber.candidate(TASK) is None, 10, "candidate cleared")
        assert {subscriber.route(TASK, f"request-{i}") for i in range(100)} == {"v1"}
        await until(lambda: replica.host.versions(TASK) == ["v1"], 10, "candidate unloaded")


async def test_a_missing_topic_fails_start_with_its_name(kafka_broker, resident_models,  # type: ignore[no-untyped-def]
                                                         tmp_path: Path) -> None:
    settings = Settings(kafka={"bootstrap_servers": kafka_broker.bootstrap_servers,
                               "topic_prefix": "nothing-here."},
                        artifacts={"store_url": str(tmp_path / "store")},
                        serving={"cache_dir": tmp_path / "cache"})
    subscriber = AdapterSubscriber(settings, ModelHost(resident_models), replica="r")
    with pytest.raises(ServingError, match=r"nothing-here\.model-versions does not exist"):
        await subscriber.start()
    await subscriber.stop()


def test_bad_arguments_fail_at_construction(resident_models: ResidentModels) -> None:
    with pytest.raises(ValueError, match="replica"):
        AdapterSubscriber(Settings(), ModelHost(resident_models), replica="")
    with pytest.raises(ValueError, match="replica"):
        AckPublisher(producer=None, settings=Settings(), replica="")


async def test_a_refused_version_republished_with_its_real_artifact_is_served(  # type: ignore[no-untyped-def]
        kafka_settings, resident_models, probes, tmp_path: Path) -> None:
    neg, pos = store(kafka_settings, probes["neg"]), store(kafka_settings, probes["pos"])
    wrong = version_event("v1", neg).model_copy(update={"sha256": pos.sha256})
    await publish(kafka_settings, wrong)
    async with Replica(serving_settings(kafka_settings, tmp_path, "r-f"),
                       resident_models) as replica:
        await replica.subscriber.wait_caught_up(60)
        assert replica.subscriber.serving(TASK) is None
        assert "v1" in replica.subscriber.refused
        await publish(kafka_settings, version_event("v1", neg))
        await until(lambda: replica.subscriber.serving(TASK) == "v1", 10, "corrected v1 served")
        assert replica.subscriber.ack_failures == 0


class HeldHost(ModelHost):
    """A host whose loads wait until the test lets them go."""

    def __init__(self, models: ResidentModels) -> None:
        super().__init__(models, max_length=32)
        self.loading, self.release = asyncio.Event(), asyncio.Event()

    async def aload(self, task: str, version_id: str, folder: Path, base_model_id: str) -> float:
        self.loading.set()
        await self.release.wait()
        return await super().aload(task, version_id, folder, base_model_id)


async def test_stopping_during_a_switch_finishes_it_and_acks_it(  # type: ignore[no-untyped-def]
        kafka_settings, resident_models, probes, tmp_path: Path) -> None:
    await publish(kafka_settings, version_event("v1", store(kafka_settings, probes["neg"])))
    settings = serving_settings(kafka_settings, tmp_path, "r-stop")
    host = HeldHost(resident_models)
    async with new_producer(settings) as producer:
        subscriber = AdapterSubscriber(settings, host, replica="r-stop",
                                       acks=AckPublisher(producer=producer, settings=settings,
                                                         replica="r-stop"))
        await subscriber.start()
        await asyncio.wait_for(host.loading.wait(), 60)
        stopping = asyncio.create_task(subscriber.stop())  # SIGTERM while the load is in hand
        await until(lambda: not subscriber.running, 10, "the follow loop cancelled")
        host.release.set()
        await asyncio.wait_for(stopping, 60)
    assert host.versions(TASK) == ["v1"] and subscriber.serving(TASK) == "v1"
    acks = await read_acks(kafka_settings)
    assert converged(acks, TASK, "v1", ["r-stop"]), "what the replica serves is acked"
    host.close()
