from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from learner_helpers import own_learner, replay_tweets, sentiment_request

from driftloop.learner.errors import ArtifactIntegrityError, TrainingRequestError
from driftloop.learner.registry.version_log import VersionLog, version_id_for
from driftloop.schemas.enums import VersionStatus
from driftloop.schemas.events import TrainingRequest
from driftloop.schemas.settings import Settings

pytestmark = pytest.mark.slow


def test_first_request_is_promoted_over_the_untrained_head(sentiment_v1) -> None:  # type: ignore[no-untyped-def]
    event = sentiment_v1.event
    assert event.status is VersionStatus.PROMOTED, event.reason
    assert event.parent_version is None
    assert event.version_id == version_id_for("sentiment", "r1",
                                             deployment=Settings().deployment_id)
    assert event.metadata["deployment"] == Settings().deployment_id
    assert event.metrics_after["holdout_score"] > event.metrics_before["holdout_score"]
    assert event.metrics_after["challenge_score"] >= event.metrics_before["challenge_score"]
    assert event.metadata["labels"] == ["negative", "positive"]
    assert event.base_model == "sentence-transformers/all-MiniLM-L6-v2"
    assert event.adapter_uri.endswith(event.sha256)
    assert sentiment_v1.train_report.steps > 0


@pytest.mark.parametrize(("changes", "message"), [
    ({"labels": ["neg", "pos"]}, "not among the task's labels|differ"),
    ({"parent_version": "sentiment-unknown"}, "not in the registry"),
])
def test_untrainable_requests(updater, sentiment_v1, changes, message) -> None:  # type: ignore[no-untyped-def]
    base = sentiment_request("r-bad", n=8).model_dump()
    bad = TrainingRequest.model_validate({**base, **changes})
    log = VersionLog().apply(sentiment_v1.event)
    with pytest.raises(TrainingRequestError, match=message):
        updater.update(bad, log)


def test_one_example_is_not_enough(updater) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(TrainingRequestError, match="at least two new examples"):
        updater.update(sentiment_request("r-one", n=1), VersionLog())


def test_unknown_target_is_refused(updater) -> None:  # type: ignore[no-untyped-def]
    request = sentiment_request("r-neutral", n=8)
    bad = request.model_copy(update={"examples": [
        *request.examples, request.examples[0].model_copy(update={"target": "neutral"})]})
    with pytest.raises(TrainingRequestError, match="neutral"):
        updater.update(bad, VersionLog())


def test_tampered_parent_is_refused(updater, sentiment_v1, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from driftloop.learner.training.update import IncrementalUpdater

    store_root = Path(updater.store.root)
    copy = tmp_path / "store"
    shutil.copytree(store_root, copy)
    (copy / sentiment_v1.event.sha256 / "adapter_model.safetensors").write_bytes(b"tampered")
    settings = updater.settings.model_copy(update={
        "artifacts": updater.settings.artifacts.model_copy(update={"store_url": str(copy)})})
    tampered = IncrementalUpdater(settings, models=updater.models, device=updater.device)
    event = sentiment_v1.event.model_copy(update={
        "adapter_uri": tampered.store.uri_for(sentiment_v1.event.sha256)})
    with pytest.raises(ArtifactIntegrityError):
        tampered.update(sentiment_request("r2", n=8), VersionLog().apply(event))


class _Recorded(Exception):
    """Stops an update at its training step, before it changes the session's gate pool."""


def test_a_continued_update_warms_up_and_a_first_version_does_not(  # type: ignore[no-untyped-def]
        updater, sentiment_v1, monkeypatch) -> None:
    from driftloop.learner.training import update as update_module

    configs = []

    def recording(task, model, train, validation, config):  # type: ignore[no-untyped-def]
        configs.append(config)
        raise _Recorded

    monkeypatch.setattr(update_module, "train_adapter", recording)
    with pytest.raises(_Recorded):
        updater.update(sentiment_request("warm-first", n=24), VersionLog())
    with pytest.raises(_Recorded):
        updater.update(sentiment_request("warm-child", domain="movies", n=24),
                       VersionLog().apply(sentiment_v1.event))
    assert [c.warmup_steps for c in configs] == [0, Settings().learner.warmup_steps]
    assert Settings().learner.warmup_steps > 0


@pytest.mark.parametrize(("every", "first", "expected"), [(0, 32, [32, 0]), (40, 32, [40, 40]),
                                                          (8, 32, [32, 8])])
def test_a_first_version_takes_its_own_step_floor_and_a_continued_update_does_not(  # type: ignore[no-untyped-def]
        updater, sentiment_v1, monkeypatch, every, first, expected) -> None:
    from driftloop.learner.training import update as update_module
    from driftloop.learner.training.update import IncrementalUpdater

    configs = []

    def recording(task, model, train, validation, config):  # type: ignore[no-untyped-def]
        configs.append(config)
        raise _Recorded

    monkeypatch.setattr(update_module, "train_adapter", recording)
    learner = updater.settings.learner.model_copy(update={"min_steps": every,
                                                          "first_min_steps": first})
    floored = IncrementalUpdater(updater.settings.model_copy(update={"learner": learner}),
                                 models=updater.models, device=updater.device)
    with pytest.raises(_Recorded):
        floored.update(sentiment_request("floor-first", n=24), VersionLog())
    with pytest.raises(_Recorded):
        floored.update(sentiment_request("floor-child", domain="movies", n=24),
                       VersionLog().apply(sentiment_v1.event))
    assert [c.min_steps for c in configs] == expected


def test_cross_fitting_adds_every_trained_new_text_to_the_recent_slice_and_changes_no_byte(  # type: ignore[no-untyped-def]
        updater, sentiment_v1, tmp_path: Path) -> None:
    from driftloop.schemas.enums import ExampleOrigin

    request = sentiment_request("r-folds", domain="movies", n=40, seed=7)
    plain, log = own_learner(updater, sentiment_v1, tmp_path / "plain")
    folded, folded_log = own_learner(updater, sentiment_v1, tmp_path / "folded",
                                      gate_cross_fit=2)
    without = plain.update(request, log)
    result = folded.update(request, folded_log)
    trained_new = [e for e in (*result.split.train, *result.split.validation)
                   if e.origin is ExampleOrigin.NEW]
    event = result.event
    assert event.metrics_after["holdout_cross_fit_count"] == len(trained_new) > 0
    assert event.reason.startswith(f"cross-fit: 2 fold candidates on the {len(trained_new)} ")
    held = int(event.metrics_after["holdout_count"])
    assert f" on {held + len(trained_new)}: " in event.reason.split("recent: ", 1)[1]
    assert result.timings["cross_fit_seconds"] > 0
    # The fold candidates are evidence only: the stored candidate is the same adapter.
    assert event.sha256 == without.event.sha256
    assert "cross-fit" not in without.event.reason


def test_robustness_checks_score_both_versions_on_the_same_perturbed_texts(  # type: ignore[no-untyped-def]
        updater, sentiment_v1, tmp_path: Path) -> None:
    kinds = ("typo", "case", "negation")
    learner, log = own_learner(updater, sentiment_v1, tmp_path, robust_examples=10, task={
        "robustness": kinds, "negation_labels": {"positive": "negative",
                                                 "negative": "positive"}})
    event = learner.update(sentiment_request("r-robust", domain="movies", n=32, seed=9),
                           log).event
    for metrics in (event.metrics_before, event.metrics_after):
        assert 20 < metrics["robust_count"] <= 30  # ten per kind (fewer to negate)
        assert {f"robust.{kind}" for kind in kinds} <= set(metrics)
    assert "robust: " in event.reason
    # The parent's answers on the perturbed texts are kept like its held-out ones.
    assert learner.parent_scores.misses >= 30


@pytest.mark.slow
def test_a_paraphrase_check_asks_both_versions_the_texts_a_model_rewrote(  # type: ignore[no-untyped-def]
        updater, sentiment_v1, tmp_path: Path) -> None:
    learner, log = own_learner(updater, sentiment_v1, tmp_path, robust_paraphrases=4,
                               task={"robustness": ("paraphrase",)})
    event = learner.update(sentiment_request("r-paraphrase", domain="movies", n=32, seed=9),
                           log).event
    for metrics in (event.metrics_before, event.metrics_after):
        # SmolLM2 rewrote at most four held-out texts; copies and empty answers left out.
        assert 1 <= metrics["robust_count"] <= 4 and "robust.paraphrase" in metrics
    assert event.metrics_before["robust_count"] == event.metrics_after["robust_count"]


def test_every_gate_reports_accuracy_per_slice_and_can_refuse_on_the_worst(  # type: ignore[no-untyped-def]
        updater, sentiment_v1, tmp_path: Path) -> None:
    learner, log = own_learner(updater, sentiment_v1, tmp_path, slice_min_examples=4,
                                slice_tolerance=0.5)
    replay = [(text, label) for text, label in replay_tweets(12)]
    request = sentiment_request("r-slices", domain="movies", n=32, seed=11, replay=replay)
    request = request.model_copy(update={"examples": [
        e.model_copy(update={"domain": "movies" if e.origin == "new" else "tweets"})
        for e in request.examples]})
    event = learner.update(request, log).event
    for metrics in (event.metrics_before, event.metrics_after):
        assert {"slice.domain=movies", "slice.domain=tweets"} <= set(metrics)
        assert metrics["slice.domain=movies_count"] >= 4
        assert all(0.0 <= metrics[k] <= 1.0 for k in metrics
                   if k.startswith("slice.") and not k.endswith("_count"))
    worst = next(r for r in event.reason.split("; ") if r.startswith("worst slice: "))
    assert "within 0.5" in worst or "a slice fell" in worst
    assert learner.gate.slice_tolerance == 0.5


@pytest.mark.parametrize("forced", [None, "retrieval", "lora"])
def test_a_retrieval_update_puts_the_cheaper_arm_first_and_serving_answers_as_it_was_gated(  # type: ignore[no-untyped-def]
        updater, sentiment_v1, tmp_path: Path, monkeypatch, forced) -> None:
    import json
    from dataclasses import replace

    from driftloop.learner.models.retrieval import BANK_FILE
    from driftloop.learner.serving.model_host import ModelHost
    from driftloop.learner.training import update as update_module

    if forced is not None:  # each arm's storage and serving, whichever the test would pick
        chosen = update_module.choose_arm
        monkeypatch.setattr(update_module, "choose_arm",
                            lambda *a, **k: replace(chosen(*a, **k), arm=forced))
    learner, log = own_learner(updater, sentiment_v1, tmp_path, retrieval=True,
                               retrieval_weight=0.5)
    learner.clear_gate_pool("sentiment")  # the gate's recent slice: this request's holdout
    request = sentiment_request("r-arms", domain="movies", n=48, seed=13)
    result = learner.update(request, log)
    event = result.event
    arm = event.metadata["arm"]
    assert arm in ("retrieval", "lora")
    arms = event.metadata["arms"]
    assert 0 <= arms["retrieval_holdout_score"] <= 1 and 0 <= arms["lora_holdout_score"] <= 1
    assert "p(better)=" in arms["lora_over_retrieval"]
    assert event.metrics_after["holdout_score"] == arms[f"{arm}_holdout_score"]
    half = f"{learner.gate.alpha / 2:g}"  # two candidates, each judged at half the level
    assert f"< {half}" in event.reason or f">= {half}" in event.reason
    folder = learner.store.fetch(event.adapter_uri, event.sha256, tmp_path / "got")
    trained = {e.input for e in (*result.split.train, *result.split.validation)}
    meta = json.loads((folder / "driftloop.json").read_text())
    assert meta["extra"]["retrieval"]["size"] == len(trained)
    assert (folder / BANK_FILE).is_file()
    parent = learner.store.fetch(learner.store.uri_for(sentiment_v1.event.sha256),
                                 sentiment_v1.event.sha256, tmp_path / "parent")
    same_weights = ((folder / "adapter_model.safetensors").read_bytes()
                    == (parent / "adapter_model.safetensors").read_bytes())
    assert same_weights == (arm == "retrieval")  # the retrieval arm trains nothing

    # Served, the version answers with its bank: what the gate scored.
    host = ModelHost(learner.models)
    host.load("sentiment", event.version_id, folder, event.base_model)
    held = list(result.split.holdout_new)
    answers = host.predict("sentiment", event.version_id, [e.input for e in held])
    served = sum(a.label == e.target for a, e in zip(answers, held, strict=True)) / len(held)
    assert event.metrics_after["holdout_pooled_count"] == 0
    assert served == pytest.approx(event.metrics_after["holdout_score"], abs=1e-9)
    bankless = tmp_path / "bankless"
    bankless.mkdir()
    for path in folder.iterdir():
        if path.name != BANK_FILE:
            (bankless / path.name).write_bytes(path.read_bytes())
    meta["extra"].pop("retrieval")
    (bankless / "driftloop.json").write_text(json.dumps(meta))
    host.load("sentiment", "no-bank", bankless, event.base_model)
    plain = host.predict("sentiment", "no-bank", [e.input for e in held])
    assert [a.probabilities for a in plain] != [a.probabilities for a in answers]
    if forced == "retrieval":
        # A parent with a bank is judged as it serves, by a learner that builds no banks.
        from driftloop.learner.training.update import IncrementalUpdater

        later = IncrementalUpdater(learner.settings.model_copy(update={
            "learner": learner.settings.learner.model_copy(update={"retrieval": False})}),
            models=learner.models, device=learner.device)
        later.clear_gate_pool("sentiment")
        child = later.update(sentiment_request("r-after", domain="amazon", n=24, seed=2,
                                               parent=event.version_id), log.apply(event))
        assert child.event.parent_version == event.version_id
        assert "arm" not in child.event.metadata
        assert child.event.metrics_before["holdout_pooled_count"] == 0
        held = list(child.split.holdout_new)
        got = host.predict("sentiment", event.version_id, [e.input for e in held])
        served = sum(a.label == e.target for a, e in zip(got, held, strict=True)) / len(held)
        assert child.event.metrics_before["holdout_score"] == pytest.approx(served, abs=1e-9)
    host.close()


def test_neighbours_with_no_share_build_no_retrieval_candidate_and_no_bank(  # type: ignore[no-untyped-def]
        updater, sentiment_v1, tmp_path: Path) -> None:
    from driftloop.learner.models.retrieval import BANK_FILE

    # A share of 0 is what a fitted weight comes to where neighbours do not help.
    learner, log = own_learner(updater, sentiment_v1, tmp_path, retrieval=True,
                                retrieval_weight=0.0)
    learner.clear_gate_pool("sentiment")
    result = learner.update(sentiment_request("r-no-share", domain="movies", n=32, seed=4), log)
    assert "arm" not in result.event.metadata and "retrieval_seconds" in result.timings
    folder = learner.store.fetch(result.event.adapter_uri, result.event.sha256,
                                 tmp_path / "got")
    assert not (folder / BANK_FILE).exists()
    assert f"< {learner.gate.alpha:g}" in result.event.reason or (
        f">= {learner.gate.alpha:g}" in result.event.reason)  # one candidate, the whole level


def test_without_a_retrieval_arm_the_trained_candidate_takes_the_parents_share(  # type: ignore[no-untyped-def]
        updater, sentiment_v1, tmp_path: Path) -> None:
    import json

    learner, log = own_learner(updater, sentiment_v1, tmp_path, retrieval=True,
                                retrieval_arm=False, retrieval_weight=0.25)
    learner.clear_gate_pool("sentiment")
    result = learner.update(sentiment_request("r-joined", domain="movies", n=32, seed=4), log)
    assert "arm" not in result.event.metadata  # one candidate, judged at the whole level
    assert f"{learner.gate.alpha:g}" in result.event.reason
    assert f"{learner.gate.alpha / 2:g}" not in result.event.reason
    folder = learner.store.fetch(result.event.adapter_uri, result.event.sha256,
                                 tmp_path / "got")
    bank = json.loads((folder / "driftloop.json").read_text())["extra"]["retrieval"]
    trained = {e.input for e in (*result.split.train, *result.split.validation)}
    assert bank["weight"] == 0.25 and bank["size"] == len(trained)


def test_a_stratified_gate_weighs_the_recent_slice_by_the_requests_label_mix(  # type: ignore[no-untyped-def]
        updater, sentiment_v1, tmp_path: Path) -> None:
    learner, log = own_learner(updater, sentiment_v1, tmp_path, gate_stratify=True)
    # Three positives to one negative in the request; its held-out slice has its own mix.
    request = sentiment_request("r-strata", domain="movies", n=48, seed=5)
    negatives = [e for e in request.examples if e.target == "negative"][:8]
    request = request.model_copy(update={"examples": [
        e for e in request.examples if e.target == "positive"] + negatives})
    event = learner.update(request, log).event
    recent = event.reason.split("recent: ", 1)[1].split(";", 1)[0]
    assert "(post-stratified by label)" in recent
    assert event.reason.count("post-stratified") == 1  # the recent slice only


def test_a_parent_is_scored_once_per_text_and_prompt_and_its_kept_results_give_the_same_gate(  # type: ignore[no-untyped-def]
        updater, sentiment_v1, tmp_path: Path) -> None:
    learner, log = own_learner(updater, sentiment_v1, tmp_path)
    request = sentiment_request("r-kept", domain="movies", n=32, seed=3)
    first = learner.update(request, log).event
    scored = learner.parent_scores.misses
    # Held-out texts and the challenge suite's prompts, each asked of the parent once.
    assert first.metrics_before["challenge_count"] > 0
    assert scored == sum(first.metrics_before.get(f"{part}_count", 0)
                         for part in ("holdout", "replay", "challenge"))
    assert learner.parent_scores.hits == 0
    # The same texts against the same parent again: nothing of the parent is scored twice,
    # and its results are those the first gate computed.
    again = learner.update(request.model_copy(update={"id": "r-kept-again"}), log).event
    assert learner.parent_scores.misses == scored and learner.parent_scores.hits == scored
    for key in ("holdout_score", "holdout_loss", "holdout_count", "challenge_score"):
        assert again.metrics_before[key] == pytest.approx(first.metrics_before[key], abs=1e-6)
    assert again.metrics_after["holdout_p_better"] == pytest.approx(
        first.metrics_after["holdout_p_better"])


def test_keeping_the_parent_holds_its_answers_on_replayed_examples_with_wrong_labels(  # type: ignore[no-untyped-def]
        updater, sentiment_v1, tmp_path: Path, monkeypatch) -> None:
    from driftloop.learner.training import update as update_module
    from driftloop.learner.training.keep_parent import KeepingParent

    real = update_module.train_adapter
    seen: list[tuple[object, float]] = []

    def watching(task, model, train, validation, config):  # type: ignore[no-untyped-def]
        student = getattr(task, "student", task)
        replayed = [e.input for e in train if e.origin.value == "replay"]
        before = student.predict(model, replayed)
        report = real(task, model, train, validation, config)
        after = student.predict(model, replayed)
        agree = sum(a == b for a, b in zip(before, after, strict=True)) / len(replayed)
        seen.append((task, agree))
        return report

    monkeypatch.setattr(update_module, "train_adapter", watching)
    flipped = [(text, "negative" if label == "positive" else "positive")
               for text, label in replay_tweets(32)]
    events = {}
    for keep in (0.0, 1.0):
        learner, log = own_learner(updater, sentiment_v1, tmp_path / f"keep-{keep}",
                                   keep_parent=keep, min_steps=32)
        request = sentiment_request(f"keep-{keep}", domain="movies", n=24, replay=flipped,
                                    parent=sentiment_v1.event.version_id)
        events[keep] = learner.update(request, log).event
    (plain, plain_agree), (kept, kept_agree) = seen
    assert not isinstance(plain, KeepingParent) and isinstance(kept, KeepingParent)
    # the parent's answers on the replayed examples it trains on (the held-out ones: never)
    assert kept.parent and set(kept.parent) <= {text for text, _ in flipped}
    # Wrong labels on the replay: learnt without the parent's answers (seen: 9 of 21 kept),
    # mostly held with them (17 of 21; the new domain's labels still move the rest).
    assert kept_agree >= plain_agree + 0.25, (plain_agree, kept_agree)
    assert events[1.0].metadata["keep_parent"] == {"weight": 1.0, "replayed": len(kept.parent)}
    assert "keep_parent" not in events[0.0].metadata
