"""Adversarial records and artifacts on the real broker: the subscriber refuses or skips each
one (counted, with a reason), keeps following ``model-versions`` and serves the next good
version; the ack reader skips what it cannot read and says so."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from kafka_helpers import produce
from serving_helpers import TASK, publish, serving_settings, store, until, version_event

from driftloop.client.kafka import new_producer
from driftloop.learner.registry.store import StoredArtifact
from driftloop.learner.serving import (
    AckPublisher,
    AdapterSubscriber,
    ModelHost,
    ServingChange,
    read_acks,
)
from driftloop.learner.topics.versions import publish_with_new_producer, read_version_log
from driftloop.schemas import Feedback, ServingStatus, Topic, encode
from driftloop.schemas.settings import Settings

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def garbage_weights(settings, probe: Path, tmp_path: Path) -> StoredArtifact:  # type: ignore[no-untyped-def]
    """A correctly hashed artifact whose safetensors file is not safetensors."""
    folder = tmp_path / "garbage"
    shutil.copytree(probe, folder)
    (folder / "adapter_model.safetensors").write_bytes(b"\xff" * 64)
    return store(settings, folder)


async def test_adversarial_versions_are_refused_and_bad_records_skipped(  # type: ignore[no-untyped-def]
        kafka_settings, resident_models, probes, tmp_path: Path) -> None:
    settings = serving_settings(kafka_settings, tmp_path, "r-bad")
    good = store(kafka_settings, probes["neg"])
    root = good.uri.removeprefix("file://").rsplit("/", 1)[0]
    bad_versions = {
        "v-garbage": version_event("v-garbage", garbage_weights(kafka_settings, probes["neg"],
                                                                tmp_path)),
        "v-outside": version_event("v-outside", good).model_copy(
            update={"adapter_uri": f"file:///etc/{good.sha256}"}),
        "v-dotdot": version_event("v-dotdot", good).model_copy(
            update={"adapter_uri": f"file://{root}/../{good.sha256}"}),
        "v-http": version_event("v-http", good).model_copy(
            update={"adapter_uri": f"http://example.invalid/{good.sha256}"}),
        "v-pickle": version_event("v-pickle", good, format="pytorch-pickle"),
        "v-untrusted": version_event("v-untrusted", good).model_copy(
            update={"base_model": "someone/else"}),
    }
    producer = new_producer(settings)
    host = ModelHost(resident_models, max_length=32)
    served: list[ServingChange] = []  # told after the ack is sent
    subscriber = AdapterSubscriber(settings, host, replica="r-bad", acks=AckPublisher(
        producer=producer, settings=settings, replica="r-bad"), on_serving=[served.append])
    try:
        async with producer, subscriber:
            await subscriber.wait_caught_up(30)
            await produce(settings, Topic.MODEL_VERSIONS, [b"{not json", None, encode(Feedback(
                id="f", interaction_id="i", ts=0, task=TASK, kind="label", value="x"))], key=TASK)
            for version_id, event in bad_versions.items():
                await publish(settings, event)
                await until(lambda v=version_id: v in subscriber.refused, 60,
                            f"{version_id} refused")
            assert subscriber.running and subscriber.serving(TASK) is None
            assert subscriber.bad_records == 3
            # The learner's registry reader skips and counts the same records.
            registry = await read_version_log(settings)
            assert registry.unreadable == 3 and "v-pickle" in registry
            refused = subscriber.refused
            assert "SafetensorError" in refused["v-garbage"]
            assert "not an adapter of the store" in refused["v-outside"]
            assert "not an adapter of the store" in refused["v-dotdot"]
            assert "scheme 'http'" in refused["v-http"]
            assert "'pytorch-pickle' is not one of" in refused["v-pickle"]
            assert "'someone/else' is not trusted" in refused["v-untrusted"]
            # The next good version is served as if nothing had happened.
            await publish(settings, version_event("v-good", good))
            await until(lambda: [c.version_id for c in served] == ["v-good"], 60,
                        "v-good served and acknowledged")
    finally:
        host.close()
    # The ack reader skips records it cannot read, and says which.
    await produce(settings, Topic.SERVING_ACKS, [b"\xff", b'{"replica": 5}'], key="r-bad/x")
    skipped: list[str] = []
    latest = await read_acks(settings, skipped=skipped)
    assert len(skipped) == 2 and "invalid_utf8" not in skipped[0]  # the reason, not the code
    assert "not valid UTF-8" in skipped[0]
    ack = latest[("r-bad", TASK)]
    assert (ack.status, ack.version_id) == (ServingStatus.SERVING, "v-good")


async def test_a_signing_replica_serves_signed_versions_and_ignores_forged_ones(  # type: ignore[no-untyped-def]
        kafka_settings, resident_models, probes, tmp_path: Path) -> None:
    settings = serving_settings(kafka_settings, tmp_path, "r-sign").model_copy(update={
        "trust": Settings(trust={"signing_key": "a shared key of the deployment"}).trust})
    neg, pos = store(settings, probes["neg"]), store(settings, probes["pos"])
    host = ModelHost(resident_models, max_length=32)
    subscriber = AdapterSubscriber(settings, host, replica="r-sign")
    try:
        async with subscriber:
            await subscriber.wait_caught_up(30)
            await publish_with_new_producer(settings, [version_event("v-signed", neg)])
            await until(lambda: subscriber.serving(TASK) == "v-signed", 60, "v-signed served")
            # Without the key: a forged promotion, and the signed event altered to point at
            # other weights under the same version id.
            signed = (await read_version_log(settings)).get("v-signed")
            await publish(settings, version_event("v-forged", pos),
                          signed.model_copy(update={"adapter_uri": pos.uri,
                                                    "sha256": pos.sha256}))
            await until(lambda: subscriber.versions.untrusted == 2, 60, "both forgeries seen")
            assert subscriber.serving(TASK) == "v-signed" and "v-forged" not in subscriber.versions
            assert subscriber.versions.get("v-signed").sha256 == neg.sha256
            # The next signed version is served as usual.
            await publish_with_new_producer(settings, [version_event("v-next", pos)])
            await until(lambda: subscriber.serving(TASK) == "v-next", 60, "v-next served")
    finally:
        host.close()
