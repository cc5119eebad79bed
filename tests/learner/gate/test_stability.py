"""Prompt stability: the consistency metric, its gate minimum, and SmolLM2 measured for real.

SmolLM2 (GGUF, CPU) generates about 1-4 prompts a second here: the model tests ask two probes
under at most four wordings, with answers of four tokens.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pydantic
import pytest
from learner_helpers import sentiment_request

from driftloop.learner.errors import PromptTemplateError
from driftloop.learner.gate.challenges import ChallengeCase, ChallengeSuite
from driftloop.learner.gate.paraphrases import Paraphrase, ParaphraseSet, paraphrases_for
from driftloop.learner.gate.rule import GateRule
from driftloop.learner.gate.stability import check_stability, consistency, stability_metrics
from driftloop.learner.models.generation import GenerationTask
from driftloop.learner.models.prompts import get_template
from driftloop.learner.models.resident import default_base_model
from driftloop.learner.registry.version_log import VersionLog
from driftloop.learner.training.update import IncrementalUpdater
from driftloop.schemas.enums import TaskKind, VersionStatus
from driftloop.schemas.settings import LearnerSettings

# Clear-cut to a person; the untrained 135M model answers them differently by wording.
PROBES = ["Terrible service, never again.", "not good at all"]
BEFORE = {"holdout_score": 0.5, "holdout_loss": 0.7}
BETTER = {"holdout_score": 0.8, "holdout_loss": 0.5}


def test_consistency_is_the_share_of_probes_answered_alike() -> None:
    answers = [["positive", "negative", "negative", "x"],
               ["positive", "negative", "positive", "x"],
               ["positive", "negative", "negative", "y"]]
    assert consistency(answers) == 0.5
    assert consistency([["a"], ["a"]]) == 1.0 and consistency([["a"], ["b"]]) == 0.0


@pytest.mark.parametrize(("answers", "message"), [
    ([["a", "b"]], "at least two wordings"),
    ([], "at least two wordings"),
    ([["a", "b"], ["a"]], "every wording must answer every probe"),
    ([[], []], "no probes"),
])
def test_bad_answer_tables_are_refused(answers: list[list[str]], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        consistency(answers)


def test_the_gate_minimum() -> None:
    rule = GateRule(min_stability=0.75)
    refused = rule.decide(BEFORE, {**BETTER, "prompt_stability": 0.5})
    assert not refused.promote
    assert refused.reasons[-1] == "prompt stability: 0.500 < 0.75 (answers change with the wording)"
    assert rule.decide(BEFORE, {**BETTER, "prompt_stability": 0.75}).promote
    # Not measured (classification, no probes, no paraphrases): not held to it, and said so.
    unmeasured = rule.decide(BEFORE, BETTER)
    assert unmeasured.promote and "not measured" in unmeasured.summary
    # Off by default: the metric is recorded, never required.
    assert GateRule().decide(BEFORE, {**BETTER, "prompt_stability": 0.0}).promote
    assert LearnerSettings().min_prompt_stability is None


@pytest.mark.parametrize("minimum", [-0.1, 1.5])
def test_a_minimum_outside_zero_one_is_refused(minimum: float) -> None:
    with pytest.raises(ValueError, match="min_stability"):
        GateRule(min_stability=minimum)
    with pytest.raises(pydantic.ValidationError, match="min_prompt_stability"):
        LearnerSettings(min_prompt_stability=minimum)
    with pytest.raises(pydantic.ValidationError, match="prompt_stability_probes"):
        LearnerSettings(prompt_stability_probes=-1)


class Classifier:
    """Stands where a classification task model would: its ``template`` is None."""

    template = None


class Asker:
    def __init__(self, ref: str) -> None:
        self.template = get_template(ref)


@pytest.mark.parametrize(("task_model", "probes", "max_probes"), [
    (Classifier(), PROBES, 16),     # classification: no prompt to paraphrase
    (Asker("plain@1"), PROBES, 16),  # a template without paraphrases
    (Asker("sentiment@1"), [], 16),  # no probes yet
    (Asker("sentiment@1"), PROBES, 0),  # switched off
])
def test_where_stability_does_not_apply_no_metric_is_made(task_model: object,
                                                          probes: list[str],
                                                          max_probes: int) -> None:
    suite = ChallengeSuite(tuple(ChallengeCase(p, "negative") for p in probes))
    # Returns before the model is asked anything (there is none here).
    assert stability_metrics(task_model, None, suite, max_probes) == {}


class Generator:
    """A generator stand-in: answers by a fixed table per wording, and records what it was
    asked under which wording."""

    def __init__(self, said: dict[str, dict[str, str]]) -> None:
        self.template = get_template("sentiment@1")
        self.said, self.asked = said, []

    def generate(self, model: object, texts: list[str]) -> list[str]:
        wording = self.template.user_message("{x}")
        self.asked.append((wording, list(texts)))
        return [self.said.get(wording, {}).get(t, "Positive.") for t in texts]


def test_answers_given_under_the_template_itself_are_not_asked_again() -> None:
    paraphrases = paraphrases_for(get_template("sentiment@1"))
    own = get_template("sentiment@1").user_message("{x}")
    table = {own: {PROBES[0]: "Negative.", PROBES[1]: "negative"}}
    asked_all = Generator(table)
    full = check_stability(asked_all, None, PROBES, paraphrases)
    reusing = Generator(table)
    known = {PROBES[0]: "Negative.", PROBES[1]: "negative", "another": "x"}
    report = check_stability(reusing, None, PROBES, paraphrases, known)
    assert report == full and report.metrics()["prompt_stability_variants"] == 4
    assert len(asked_all.asked) == 4 and own in [w for w, _ in asked_all.asked]
    assert len(reusing.asked) == 3 and own not in [w for w, _ in reusing.asked]
    # Answers to only some of the probes: the template's own wording is asked in full.
    partial = Generator(table)
    check_stability(partial, None, PROBES, paraphrases, {PROBES[0]: "Negative."})
    assert len(partial.asked) == 4


@pytest.fixture(scope="module")
def smollm(resident_models):  # type: ignore[no-untyped-def]
    return resident_models.get(default_base_model(TaskKind.GENERATION), TaskKind.GENERATION)


@pytest.mark.slow
def test_a_wording_that_moves_every_answer_scores_zero_and_is_refused(
        smollm, updater) -> None:  # type: ignore[no-untyped-def]
    asker = GenerationTask(smollm.tokenizer, get_template("sentiment@1"), updater.device,
                           max_new_tokens=4)
    # Not a paraphrase: another task. Every answer must move, so the check must see it.
    other_task = ParaphraseSet("sentiment@1", 99, (Paraphrase("Translate the text into French."),))
    report = check_stability(asker, smollm.model, PROBES, other_task)
    assert report.metrics() == {"prompt_stability": 0.0, "prompt_stability_count": 2.0,
                                "prompt_stability_variants": 2.0}
    assert report.unstable == tuple(PROBES) and asker.template.ref == "sentiment@1"
    assert not GateRule(min_stability=0.5).decide(BEFORE, BETTER | report.metrics()).promote


@pytest.mark.slow
def test_a_generation_version_records_its_template_and_stability(
        session_settings, updater, smollm, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    suite = tmp_path / "suite.jsonl"
    ChallengeSuite.append(suite, [ChallengeCase(p, "negative") for p in PROBES])
    shutil.copy(suite, tmp_path / "before.jsonl")
    task = session_settings.task("moviegen").model_copy(update={"challenge_suite": suite})
    learner = session_settings.learner.model_copy(update={
        "min_prompt_stability": 1.0, "prompt_stability_probes": 2})
    settings = session_settings.model_copy(update={
        "learner": learner, "tasks": {**session_settings.tasks, "moviegen": task}})
    asked: list[tuple[str, tuple[str, ...]]] = []
    generate = GenerationTask.generate

    def recording(self, model, texts):  # type: ignore[no-untyped-def]
        asked.append((self.template.user_message("{x}"), tuple(texts)))
        return generate(self, model, texts)

    monkeypatch.setattr(GenerationTask, "generate", recording)
    result = IncrementalUpdater(settings, models=updater.models, device=updater.device).update(
        sentiment_request("stab-1", domain="movies", n=8, seed=4, task="moviegen"), VersionLog())
    # The probes under the template itself: once for the untrained start, once for the
    # candidate, whose challenge answers the stability check reuses; each paraphrase once.
    own = get_template("sentiment@1").user_message("{x}")
    probes = [wording for wording, texts in asked if set(PROBES) <= set(texts)]
    assert probes.count(own) == 2 and len(probes) == 2 + 3
    event = result.event
    template = get_template("sentiment@1")
    assert event.prompt_template_id == template.ref
    assert event.metadata["prompt_template"] == {
        "ref": template.ref, "sha256": template.sha256,
        "paraphrases": paraphrases_for(template).ref}
    after = event.metrics_after
    assert after["prompt_stability_count"] == 2 and after["prompt_stability_variants"] == 4
    assert after["prompt_stability"] in (0.0, 0.5, 1.0)
    assert "prompt_stability" not in event.metrics_before  # the minimum is absolute
    # The gate held the candidate to learner.min_prompt_stability = 1.0.
    if after["prompt_stability"] < 1.0:
        assert event.status is VersionStatus.REJECTED
        assert "answers change with the wording" in event.reason
    else:
        assert "prompt stability: 1.000 >= 1" in event.reason


@pytest.mark.slow
def test_a_request_naming_an_unknown_template_version_is_refused(
        updater, smollm) -> None:  # type: ignore[no-untyped-def]
    bad = sentiment_request("bad-template", domain="movies", n=8, task="moviegen",
                            prompt_template_id="sentiment@9")
    with pytest.raises(PromptTemplateError, match="sentiment has no version 9"):
        updater.update(bad, VersionLog())
