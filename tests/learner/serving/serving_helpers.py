"""Helpers of the serving tests: per-replica settings, storing and publishing versions."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from kafka_helpers import produce
from waiting import wait_until_async

from driftloop.learner.registry.store import ArtifactStore, StoredArtifact
from driftloop.schemas import Topic, encode
from driftloop.schemas.events import ModelVersion
from driftloop.schemas.settings import Settings

LABELS = ("negative", "positive")
TASK = "sentiment"


def serving_settings(kafka_settings: Settings, tmp_path: Path, replica: str,
                     **serving: object) -> Settings:
    """The test broker's settings with one replica's serving section."""
    section = {"replica_id": replica, "tasks": [TASK], "cache_dir": tmp_path / replica,
               "batch_linger_ms": 2.0, **serving}
    return kafka_settings.model_copy(update={
        "serving": kafka_settings.serving.model_copy(update=section)})


def store(settings: Settings, folder: Path) -> StoredArtifact:
    return ArtifactStore(settings.artifacts.store_url).put(folder)


def version_event(version_id: str, stored: StoredArtifact, status: str = "promoted",
                  parent: str | None = None, **fields: object) -> ModelVersion:
    return ModelVersion(version_id=version_id, ts=time.time(), task=TASK,
                        base_model="sentence-transformers/all-MiniLM-L6-v2",
                        parent_version=parent, adapter_uri=stored.uri, sha256=stored.sha256,
                        size_bytes=stored.size_bytes, status=status, **fields)


async def publish(settings: Settings, *events: ModelVersion) -> None:
    """Append version events to ``model-versions`` (keyed by task), acknowledged."""
    await produce(settings, Topic.MODEL_VERSIONS, [encode(e) for e in events], key=TASK)


async def until(check: Callable[[], object], timeout: float, what: str) -> None:
    """Wait until ``check()`` is truthy; fail naming ``what`` after ``timeout`` seconds."""
    await wait_until_async(check, timeout, what, interval=0.01)
