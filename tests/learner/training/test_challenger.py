"""Challengers: an update continues from the last candidate rejected for want of evidence,
and is still gated against the served parent."""

from __future__ import annotations

import pytest
from learner_helpers import sentiment_request

from driftloop.learner.registry.version_log import VersionLog
from driftloop.learner.training.challenger import challenger_for
from driftloop.learner.training.update import IncrementalUpdater
from driftloop.schemas.enums import VersionStatus
from driftloop.schemas.events import ModelVersion

PARENT = ModelVersion(version_id="v1", ts=1.0, task="t", base_model="m", status="promoted",
                      adapter_uri="file:///s/" + "0" * 64, sha256="0" * 64, size_bytes=1)


def candidate(version_id: str, *, status: str = "rejected", parent: str | None = "v1",
              before: dict | None = None, **after: float) -> ModelVersion:
    return PARENT.model_copy(update={
        "version_id": version_id, "status": VersionStatus(status), "parent_version": parent,
        "metrics_before": before or {}, "metrics_after": {"holdout_effect": 0.0, **after}})


@pytest.mark.parametrize(("latest", "continues"), [
    (candidate("c"), True),  # level with the parent: only evidence was missing
    (candidate("c", holdout_effect=0.05, replay_p_worse=0.5), True),
    (candidate("c", holdout_effect=-0.01), False),  # behind on the recent traffic
    (candidate("c", replay_p_worse=0.01), False),  # shown to forget older traffic
    (candidate("c", before={"challenge_score": 1.0}, challenge_score=0.9), False),
    (candidate("c", status="candidate"), False),  # passed: a canary, not a challenger
    (candidate("c", parent="v0"), None),  # another parent's: the chain of v1 is older
])
def test_which_candidate_is_a_challenger(latest: ModelVersion, continues: bool | None) -> None:
    log = VersionLog().extend([PARENT, candidate("older", holdout_effect=0.1), latest])
    found = challenger_for(log, PARENT, alpha=0.1)
    if continues is None:  # the latest of v1's own candidates decides
        assert found is not None and found.version_id == "older"
    else:
        assert (found is not None and found.version_id == "c") is continues


def test_no_candidate_yet_means_the_parent() -> None:
    assert challenger_for(VersionLog().extend([PARENT]), PARENT, alpha=0.1) is None


@pytest.mark.slow
def test_an_update_continues_the_challenger_and_is_gated_against_the_parent(
        updater, sentiment_v1) -> None:  # type: ignore[no-untyped-def]
    parent = sentiment_v1.event
    log = VersionLog().extend([parent])
    trained = updater.update(sentiment_request("r-movies", "movies", parent=parent.version_id),
                             log)
    challenger = trained.event.model_copy(update={
        "status": VersionStatus.REJECTED,
        "metrics_after": {**trained.event.metrics_after, "holdout_effect": 0.0}})
    log = VersionLog().extend([parent, challenger])
    request = sentiment_request("r-amazon", "amazon", parent=parent.version_id)
    on = updater.settings.model_copy(update={"learner": updater.settings.learner.model_copy(
        update={"continue_rejected": True})})
    continued = IncrementalUpdater(on, models=updater.models).update(request, log)
    fresh = updater.update(request, log)  # the default starts from the served parent

    assert continued.event.metadata["continued_from"] == challenger.version_id
    assert "continued_from" not in fresh.event.metadata
    assert continued.event.parent_version == fresh.event.parent_version == parent.version_id
    # Both gates scored the served parent on the same texts; the starts differed.
    for key in ("holdout_score", "holdout_loss", "replay_score"):
        if key in fresh.event.metrics_before:
            assert continued.event.metrics_before[key] == pytest.approx(
                fresh.event.metrics_before[key])
    assert continued.event.sha256 != fresh.event.sha256
