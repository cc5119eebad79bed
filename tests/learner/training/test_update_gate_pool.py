"""The updater's gate pool: a later request's gate judges on earlier held-out examples too."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from learner_helpers import learner_settings, sentiment_request

from driftloop.learner.gate.split import held_out
from driftloop.learner.registry.version_log import VersionLog
from driftloop.learner.training.update import IncrementalUpdater
from driftloop.schemas.events import TrainingRequest

pytestmark = pytest.mark.slow


def tweets(request_id: str, seed: int, parent: str | None = None) -> TrainingRequest:
    request = sentiment_request(request_id, n=32, seed=seed, parent=parent)
    return request.model_copy(update={"examples": [
        e.model_copy(update={"domain": "tweets"}) for e in request.examples]})


def test_a_second_request_is_gated_on_more_than_its_own_holdout(
        tmp_path: Path, resident_models) -> None:  # type: ignore[no-untyped-def]
    settings = learner_settings(str(tmp_path / "store"), gate_pool_size=100)
    updater = IncrementalUpdater(settings, models=resident_models)
    versions = VersionLog()
    first = updater.update(tweets("pool-1", seed=0), versions)
    versions.apply(first.event)
    assert first.event.metrics_after["holdout_pooled_count"] == 0
    assert first.event.metadata["gate_pool"] == {"pooled": 0, "domains": {}}

    second = updater.update(tweets("pool-2", seed=3, parent=first.event.version_id), versions)
    own = len(second.split.holdout_new)
    second_texts = {e.input for e in tweets("pool-2", seed=3).examples}
    expected = [e for e in first.split.holdout_new
                if held_out(e.input, 0.25) and e.input not in second_texts]
    assert expected, "the first request held nothing out by content"
    for metrics in (second.event.metrics_before, second.event.metrics_after):
        assert metrics["holdout_count"] == own + len(expected) > own
        assert metrics["holdout_pooled_count"] == len(expected)
    assert second.event.metadata["gate_pool"] == {"pooled": len(expected),
                                                  "domains": {"tweets": len(expected)}}
    assert second.event.metadata["examples"]["holdout_new"] == own

    # nothing trained on is ever pooled, and a restarted learner reads the same pool
    pooled = {e.input for e in updater.gate_pool("sentiment").examples({"tweets"})}
    trained = {e.input for r in (first, second) for e in (*r.split.train, *r.split.validation)}
    assert pooled and not pooled & trained
    restarted = IncrementalUpdater(settings, models=resident_models)
    assert {e.input for e in restarted.gate_pool("sentiment").examples({"tweets"})} == pooled


def test_a_corrupt_pool_file_starts_an_empty_pool(
        tmp_path: Path, resident_models, caplog: pytest.LogCaptureFixture) -> None:  # type: ignore[no-untyped-def]
    store = tmp_path / "store"
    (store / "gate-pool").mkdir(parents=True)
    (store / "gate-pool" / "sentiment.json").write_text("{truncated")
    updater = IncrementalUpdater(learner_settings(str(store), gate_pool_size=50),
                                 models=resident_models)
    with caplog.at_level(logging.WARNING, logger="driftloop.learner.gate.pool_file"):
        assert len(updater.gate_pool("sentiment")) == 0
    assert "unreadable" in caplog.text
    updater.clear_gate_pool("sentiment")  # and the next save is a sound generation
    [saved] = (store / "gate-pool").glob("*/sentiment/000000000001.json")  # per deployment
    assert saved.read_text().startswith('{"format": 2')


def test_a_zero_sized_pool_is_neither_read_nor_written(
        tmp_path: Path, resident_models) -> None:  # type: ignore[no-untyped-def]
    updater = IncrementalUpdater(learner_settings(str(tmp_path), gate_pool_size=0),
                                 models=resident_models)
    updater.clear_gate_pool("sentiment")
    assert not (tmp_path / "gate-pool").exists()
