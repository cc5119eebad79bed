"""An update gives the parent's last rejected candidate its second look: scored on the
request's new labels, which it never trained on, and promoted beside the update's own
candidate when its pooled evidence is enough."""

from __future__ import annotations

import pytest
from learner_helpers import own_learner, sentiment_request

from driftloop.learner.gate.paired import PairedComparison
from driftloop.learner.gate.second_look import Ledger, digests
from driftloop.learner.registry.version_log import VersionLog
from driftloop.schemas.enums import VersionStatus

TASK = "sentiment"


@pytest.mark.slow
def test_the_next_update_looks_again_at_a_rejected_candidate(updater, sentiment_v1, tmp_path
                                                             ) -> None:  # type: ignore[no-untyped-def]
    # The parent serves a model taught the wrong labels; its earlier candidate (the tweets
    # model) was rejected for want of evidence, so the next update looks at it again.
    flipped = updater.update(sentiment_request("r-look-flip", seed=5, flip=True,
                                               parent=sentiment_v1.event.version_id),
                             VersionLog().apply(sentiment_v1.event)).event
    learner, log = own_learner(updater, sentiment_v1, tmp_path, gate_second_look=True,
                               learning_rate=0.5)  # updates that go wrong: rejected
    parent = flipped.model_copy(update={"status": VersionStatus.PROMOTED,
                                        "adapter_uri": learner.store.uri_for(flipped.sha256)})
    earlier = log.get(sentiment_v1.event.version_id).model_copy(update={
        "version_id": "sentiment-earlier", "status": VersionStatus.REJECTED,
        "parent_version": parent.version_id, "metrics_after": {"holdout_effect": 0.0}})
    log.extend([parent, earlier])
    trained = (*sentiment_v1.split.train, *sentiment_v1.split.validation)
    ledger = Ledger(earlier.version_id, parent.version_id, digests(e.input for e in trained),
                    digests(e.input for e in sentiment_v1.split.holdout_new),
                    PairedComparison(0, 0, 0, 0.0, 0.0), old=None)
    learner.second_looks.open(TASK, ledger)
    request = sentiment_request("r-look-2", n=48, seed=3, parent=parent.version_id)
    fresh = ledger.fresh(request.examples)

    result = learner.update(request, log)

    assert not result.decision.promote
    looked = result.event.metadata["second_look"]
    assert looked["of"] == earlier.version_id
    assert looked["new_texts"] == looked["texts"] == len(fresh) > 24
    assert looked["promoted"] and looked["effect"] > 0 and looked["p_better"] < 0.05
    [promoted] = result.also
    assert promoted.version_id == earlier.version_id and promoted.sha256 == earlier.sha256
    assert promoted.status is VersionStatus.PROMOTED
    assert promoted.reason.startswith(f"second look: {earlier.version_id} against "
                                      f"{parent.version_id} on {len(fresh)} recent texts")
    assert promoted.metrics_after["second_look_count"] == len(fresh)
    assert promoted.metadata["second_look_by"] == "r-look-2"
    assert result.events == [result.event, promoted]
    # One look only, and the earlier candidate is the next parent: no ledger is left.
    assert len(learner.second_looks) == 0


@pytest.mark.slow
def test_a_rejected_candidate_leaves_its_evidence_for_the_next_update(
        updater, sentiment_v1, tmp_path) -> None:  # type: ignore[no-untyped-def]
    learner, log = own_learner(updater, sentiment_v1, tmp_path, gate_second_look=True,
                               learning_rate=1e-9)
    parent = sentiment_v1.event.version_id
    result = learner.update(sentiment_request("r-look-keep", "movies", n=32, parent=parent),
                            log)

    assert not result.decision.promote and "second_look" not in result.event.metadata
    ledger = learner.second_looks.get(TASK, parent, result.event.version_id)
    assert ledger is not None
    holdout = result.split.holdout_new
    assert ledger.recent.n == len(holdout) == result.event.metrics_after["holdout_count"]
    # What it trained on is never evidence about it; what it was judged on is counted.
    assert ledger.fresh([*result.split.train, *result.split.validation, *holdout]) == []


@pytest.mark.slow
def test_no_second_look_by_default(updater, sentiment_v1, tmp_path) -> None:  # type: ignore[no-untyped-def]
    learner, log = own_learner(updater, sentiment_v1, tmp_path, learning_rate=1e-9)
    result = learner.update(sentiment_request("r-look-off", "movies", n=32,
                                              parent=sentiment_v1.event.version_id), log)
    assert not result.decision.promote and "second_look" not in result.event.metadata
    assert result.also == [] and len(learner.second_looks) == 0
