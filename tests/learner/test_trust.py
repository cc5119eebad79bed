"""The trust policy: which base models a process loads, and which version events it believes.

On the real broker: a training request whose parent names an untrusted base model is a dead
letter ``untrusted_model``; with a signing key, the learner's registry reader skips an
unsigned (forged) version, so a request cannot continue from it.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from pathlib import Path

import pytest
from kafka_helpers import consume_until, produce
from learner_helpers import sentiment_request

from driftloop.learner.errors import UntrustedModelError, UntrustedVersionError
from driftloop.learner.service import LearnerService
from driftloop.learner.topics.versions import publish_with_new_producer, read_version_log
from driftloop.learner.training.update import IncrementalUpdater
from driftloop.learner.trust import Trust, weights_sha256
from driftloop.schemas import DeadLetter, ModelVersion, SettingsError, Topic, decode, encode
from driftloop.schemas.settings import Settings

KEY = "a shared key of the deployment"
MINILM = "sentence-transformers/all-MiniLM-L6-v2"


def version(version_id: str, base_model: str = MINILM, **fields: object) -> ModelVersion:
    return ModelVersion(version_id=version_id, ts=time.time(), task="sentiment",
                        base_model=base_model, adapter_uri="file:///store/" + "0" * 64,
                        sha256="0" * 64, size_bytes=1, status="promoted", **fields)


def test_defaults_task_models_and_listed_models_are_trusted_nothing_else() -> None:
    trust = Trust(Settings(tasks={"support": {"base_model": "org/support"}},
                           trust={"base_models": ["org/listed"]}))
    for name in (MINILM, "org/support", "org/listed"):
        trust.check_base_model(name)
    for name in ("evil/model", "org/support-2", "/etc", "*"):
        with pytest.raises(UntrustedModelError, match="is not trusted"):
            trust.check_base_model(name)
    Trust(Settings(trust={"base_models": ["*"]})).check_base_model("any/model")


def test_a_local_model_is_trusted_only_while_its_weights_hash_to_the_listed_digest(
        tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.mkdir()
    weights = model / "model.safetensors"
    weights.write_bytes(b"weights")
    (model / "config.json").write_text("{}")
    digest = hashlib.sha256(b"weights").hexdigest()
    assert weights_sha256(model) == weights_sha256(weights) == digest
    trust = Trust(Settings(trust={"base_model_sha256": {str(model): digest}}))
    trust.check_base_model(str(model))
    weights.write_bytes(b"swapped weights")
    with pytest.raises(UntrustedModelError, match="weights hash to"):
        trust.check_base_model(str(model))
    (model / "extra.safetensors").write_bytes(b"shard")
    with pytest.raises(UntrustedModelError, match="2 weights files"):
        trust.check_base_model(str(model))
    missing = Trust(Settings(trust={"base_model_sha256": {str(tmp_path / "gone"): digest}}))
    with pytest.raises(UntrustedModelError, match="no such local path"):
        missing.check_base_model(str(tmp_path / "gone"))


def test_signed_versions_are_believed_and_forged_or_altered_ones_refused() -> None:
    signing = Trust(Settings(trust={"signing_key": KEY}))
    signed = signing.sign(version("v1"))
    signing.check_version(signed)
    assert signing.signed_by_us(signed)
    with pytest.raises(UntrustedVersionError, match="unsigned"):
        signing.check_version(version("v1"))
    altered = signed.model_copy(update={"adapter_uri": "file:///store/" + "1" * 64})
    with pytest.raises(UntrustedVersionError, match="wrongly signed"):
        signing.check_version(altered)
    other_key = Trust(Settings(trust={"signing_key": KEY + "!"})).sign(version("v1"))
    assert not signing.signed_by_us(other_key)
    # A status change is a new event: signed again when published, never reusing the old one.
    assert signed.with_status("rolled_back", ts=2.0).signature is None
    with pytest.raises(UntrustedVersionError, match="evil/model"):
        signing.check_version(signing.sign(version("v2", base_model="evil/model")))
    # Without a key nothing is signed and unsigned events are believed.
    plain = Trust(Settings())
    assert plain.sign(version("v1")).signature is None and plain.signed_by_us(version("v1"))


def test_a_short_signing_key_is_refused_at_start() -> None:
    with pytest.raises(SettingsError, match="at least 16"):
        Settings(trust={"signing_key": "short"})


@pytest.mark.kafka
async def test_a_request_continuing_an_untrusted_base_model_is_a_dead_letter(
        kafka_settings) -> None:  # type: ignore[no-untyped-def]
    await publish_with_new_producer(kafka_settings, [version("v-evil", base_model="evil/model")])
    request = sentiment_request("r-evil", n=8, parent="v-evil")
    await produce(kafka_settings, Topic.TRAINING_REQUESTS, [encode(request)], key="sentiment")
    service = LearnerService(kafka_settings, updater=IncrementalUpdater(kafka_settings),
                             max_requests=1)
    stats = await asyncio.wait_for(service.run(), 60)
    assert stats.dead_letters == 1 and stats.published == []
    [record] = await consume_until(kafka_settings, Topic.DEAD_LETTERS, 1, timeout=30)
    letter = decode(record.value, DeadLetter)
    assert letter.reason == "untrusted_model" and "'evil/model' is not trusted" in letter.error


@pytest.mark.kafka
async def test_a_signing_deployment_skips_forged_versions_in_its_registry(
        kafka_settings) -> None:  # type: ignore[no-untyped-def]
    signing = kafka_settings.model_copy(update={"trust": Settings(
        trust={"signing_key": KEY}).trust})
    await publish_with_new_producer(signing, [version("v-signed")])
    # A forger with write access to the topic but not the key.
    await produce(signing, Topic.MODEL_VERSIONS, [encode(version("v-forged"))], key="sentiment")
    registry = await read_version_log(signing)
    assert "v-signed" in registry and "v-forged" not in registry and registry.untrusted == 1
    assert registry.get("v-signed").signature is not None
    # A request naming the forged version as its parent finds no such version.
    await produce(signing, Topic.TRAINING_REQUESTS,
                  [encode(sentiment_request("r-forged", n=8, parent="v-forged"))],
                  key="sentiment")
    stats = await asyncio.wait_for(LearnerService(
        signing, updater=IncrementalUpdater(signing), max_requests=1).run(), 60)
    assert stats.dead_letters == 1 and stats.published == []
    [record] = await consume_until(signing, Topic.DEAD_LETTERS, 1, timeout=30)
    assert decode(record.value, DeadLetter).error.endswith("'v-forged' is not in the registry")
