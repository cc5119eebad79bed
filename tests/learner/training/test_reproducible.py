"""Reproducible training: the same examples, settings and seed give the same adapter bytes,
whatever the request's id and time (on the same hardware and thread count)."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
from learner_helpers import sentiment_request

from driftloop.learner.models.adapters import ADAPTER_WEIGHTS_FILE
from driftloop.learner.registry.version_log import VersionLog

pytestmark = pytest.mark.slow


def weights_digest(updater, event, tmp_path: Path) -> str:  # type: ignore[no-untyped-def]
    folder = updater.store.fetch(event.adapter_uri, event.sha256, tmp_path / event.version_id)
    return hashlib.sha256((folder / ADAPTER_WEIGHTS_FILE).read_bytes()).hexdigest()


def test_the_same_examples_train_the_same_adapter_whatever_the_request(
        updater, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # 240 examples: a training part large enough for an early-stop slice (16 or more).
    first = sentiment_request("repro-a", n=240, seed=3)
    again = first.model_copy(update={"id": "repro-b", "ts": first.ts + 3600.0})
    a = updater.update(first, VersionLog()).event
    b = updater.update(again, VersionLog()).event
    assert a.metadata["examples"]["validation"] >= 16
    assert a.version_id != b.version_id  # two versions of the lineage's log ...
    assert weights_digest(updater, a, tmp_path) == weights_digest(updater, b, tmp_path)
    # ... and other examples train other weights (the digest is not constant).
    other = updater.update(sentiment_request("repro-c", n=240, seed=4), VersionLog()).event
    assert weights_digest(updater, other, tmp_path) != weights_digest(updater, a, tmp_path)
    shutil.rmtree(tmp_path, ignore_errors=True)
