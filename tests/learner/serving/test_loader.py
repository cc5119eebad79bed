"""AdapterLoader: fetch, verify and load a version, unload the rest, or say why not."""

from __future__ import annotations

from pathlib import Path

import pytest
from serving_helpers import TASK, version_event

from driftloop.learner.serving import AdapterLoader, ModelHost
from driftloop.learner.serving.loader import serving_store
from driftloop.schemas.settings import Settings


@pytest.fixture
def loader(resident_models, tmp_path: Path):  # type: ignore[no-untyped-def]
    host = ModelHost(resident_models, max_length=32)
    settings = Settings(artifacts={"store_url": str(tmp_path / "store")},
                        serving={"cache_dir": tmp_path / "cache"})
    yield AdapterLoader(serving_store(settings), host)
    host.close()


async def test_a_verified_version_is_loaded_once_and_its_copy_removed(  # type: ignore[no-untyped-def]
        loader: AdapterLoader, probes, tmp_path: Path) -> None:
    stored = loader.store.put(probes["neg"])
    first = await loader.load(version_event("v1", stored))
    assert first.refused is None and first.seconds > 0
    assert loader.host.versions(TASK) == ["v1"]
    again = await loader.load(version_event("v1", stored))
    assert again.refused is None and again.seconds == 0.0
    assert not any((tmp_path / "cache").rglob("*.safetensors"))  # weights are in memory


async def test_what_cannot_be_served_is_a_reason_not_an_exception(  # type: ignore[no-untyped-def]
        loader: AdapterLoader, probes) -> None:
    neg, pos = loader.store.put(probes["neg"]), loader.store.put(probes["pos"])
    wrong_sha = version_event("v1", neg).model_copy(update={"sha256": pos.sha256})
    assert "is not named by the expected sha256" in (await loader.load(wrong_sha)).refused
    pickle = version_event("v2", neg, format="pytorch-pickle")
    assert (await loader.load(pickle)).refused == (
        "format 'pytorch-pickle' is not one of ['peft-lora-safetensors']")
    gone = version_event("v3", neg).model_copy(
        update={"adapter_uri": neg.uri.replace(neg.sha256, "f" * 64), "sha256": "f" * 64})
    assert "does not exist in the store" in (await loader.load(gone)).refused
    assert loader.host.versions(TASK) == []


async def test_keep_only_unloads_the_versions_not_kept(loader: AdapterLoader,  # type: ignore[no-untyped-def]
                                                       probes) -> None:
    for version_id, name in (("v1", "neg"), ("v2", "pos"), ("v3", "neg2")):
        assert (await loader.load(version_event(version_id,
                                                loader.store.put(probes[name])))).refused is None
    assert await loader.keep_only(TASK, {"v2", "v3"}) == ["v1"]
    assert loader.host.versions(TASK) == ["v2", "v3"]
    assert await loader.keep_only(TASK, {"v2", "v3"}) == []


def test_the_serving_store_creates_its_cache_folder(tmp_path: Path) -> None:
    settings = Settings(artifacts={"store_url": str(tmp_path / "store")},
                        serving={"cache_dir": tmp_path / "deep" / "cache"})
    store = serving_store(settings)
    assert (tmp_path / "deep" / "cache").is_dir()
    assert store.root == str((tmp_path / "store").resolve())
