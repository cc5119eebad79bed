"""The prompt arm of a generation update: the parent's adapter under a revised prompt faces
the gate beside the trained candidate, and serving renders the winner's prompts as the gate
did."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from learner_helpers import sentiment_request

from driftloop.learner.models.adapters import AdapterMetadata, read_metadata
from driftloop.learner.models.device import select_device
from driftloop.learner.models.generation import GenerationTask
from driftloop.learner.models.prompt_policy import POLICY_FILE, PromptPolicy
from driftloop.learner.models.prompts import PromptTemplate, get_template
from driftloop.learner.models.resident import default_base_model
from driftloop.learner.registry.version_log import VersionLog
from driftloop.learner.serving import write_generation_probe
from driftloop.learner.serving.model_host import ModelHost
from driftloop.learner.training.prompt_arm import (
    prompted,
    revisions,
    save_prompt_candidate,
    worked_examples,
)
from driftloop.learner.training.update import IncrementalUpdater
from driftloop.schemas.enums import TaskKind, VersionStatus
from driftloop.schemas.events import ModelVersion, TrainingExample
from driftloop.tools.demo.vader import balanced_sample, read_domain

TASK = "moviegen"
PAIRS = (("a", "x"), ("b", "y"))


def test_revisions_are_every_template_version_alone_and_with_shots_but_the_parents() -> None:
    template = PromptTemplate("sentiment", 1)
    names = [p.describe() for p in revisions(PromptPolicy("sentiment@1", 2, PAIRS), template,
                                             shots=2, examples=PAIRS)]
    assert names == ["sentiment@1 alone"]  # the parent's own (same shots, same pairs) left out
    grown = (*PAIRS, ("c", "z"))
    assert [p.describe() for p in revisions(PromptPolicy("sentiment@1", 2, PAIRS), template,
                                            shots=2, examples=grown)] == [
        "sentiment@1 alone", "sentiment@1 with 2 nearest of 3 worked examples"]
    assert revisions(PromptPolicy("sentiment@1"), template, shots=2, examples=()) == []


def test_worked_examples_are_real_labels_newest_last_and_bounded() -> None:
    examples = [TrainingExample(input="a", target="1"),
                TrainingExample(input="w", target="2", origin="synthetic"),
                TrainingExample(input="b", target="3", origin="replay")]
    assert worked_examples(examples, None, limit=5) == (("a", "1"), ("b", "3"))
    assert worked_examples(examples, PromptPolicy("s@1", 1, (("a", "0"), ("c", "4"))),
                           limit=2) == (("a", "1"), ("b", "3"))
    assert worked_examples(examples, None, limit=1) == (("b", "3"),)


@pytest.fixture(scope="module")
def smollm(resident_models):  # type: ignore[no-untyped-def]
    return resident_models.get(default_base_model(TaskKind.GENERATION), TaskKind.GENERATION)


def probe(smollm, folder: Path, version_id: str) -> Path:  # type: ignore[no-untyped-def]
    """An untrained generation adapter under ``sentiment@1``: it answers as the base."""
    return write_generation_probe(smollm, folder, version_id=version_id,
                                  prompt_template_id="sentiment@1")


def movie_pairs(n: int, seed: int) -> tuple[tuple[str, str], ...]:
    return tuple((e.text, e.label) for e in balanced_sample(read_domain("movies"), n, seed=seed))


@pytest.mark.slow
def test_serving_renders_a_prompt_versions_worked_examples_as_the_gate_did(
        smollm, resident_models, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    base_id = default_base_model(TaskKind.GENERATION)
    parent = probe(smollm, tmp_path / "parent", "g1")
    policy = PromptPolicy("sentiment@1", 2, movie_pairs(12, seed=4))
    folder = save_prompt_candidate(parent, tmp_path / "prompted", AdapterMetadata(
        TaskKind.GENERATION, base_id, "g2", prompt_template_id="sentiment@1"), policy)
    assert json.loads((folder / POLICY_FILE).read_text())["shots"] == 2
    assert (folder / "adapter_model.safetensors").read_bytes() == (
        parent / "adapter_model.safetensors").read_bytes()
    assert read_metadata(folder).version_id == "g2"
    assert json.loads((folder / "prompt_template.json").read_text())["ref"] == "sentiment@1"
    texts = [text for text, _ in movie_pairs(3, seed=9)]
    # The learner's view: the probe's LoRA update is zero, so the base model answers as it.
    task = GenerationTask(smollm.tokenizer, get_template("sentiment@1"), select_device("cpu"),
                          max_length=64, max_new_tokens=3)
    learner_view = prompted(task, policy, smollm.model)
    prompts = learner_view.prompts(smollm.model, texts)
    assert all(prompt.count("Answer: ") == 2 for prompt in prompts)  # two worked examples
    assert prompts != task.prompts(smollm.model, texts)
    expected = learner_view.generate(smollm.model, texts)
    host = ModelHost(resident_models, max_length=64, max_new_tokens=3)
    try:
        host.load(TASK, "g1", parent, base_id)
        host.load(TASK, "g2", folder, base_id)
        served = host.predict(TASK, "g2", texts)
        plain = host.predict(TASK, "g1", texts)
    finally:
        host.close()
    assert [a.output for a in served] == [a.strip() for a in expected]
    assert [a.output for a in plain] == [a.strip() for a in task.generate(smollm.model, texts)]


@pytest.mark.slow
def test_a_generation_update_puts_a_prompt_candidate_before_the_gate(
        updater, smollm, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    base_id = default_base_model(TaskKind.GENERATION)
    untrained = probe(smollm, tmp_path / "parent", "moviegen-p0")
    stored = updater.store.put(untrained)
    parent = ModelVersion(version_id="moviegen-p0", ts=1.0, task=TASK, base_model=base_id,
                          status=VersionStatus.PROMOTED, adapter_uri=stored.uri,
                          sha256=stored.sha256, size_bytes=stored.size_bytes,
                          prompt_template_id="sentiment@1")
    # A trained candidate that barely moves from the parent cannot be significantly better
    # than the prompt candidate: the prompt is the update's version, promoted or not.
    settings = updater.settings.model_copy(update={"learner": updater.settings.learner.model_copy(
        update={"prompt_arm": True, "prompt_arm_shots": 2, "prompt_arm_texts": 12,
                "learning_rate": 1e-9})})
    learner = IncrementalUpdater(settings, models=updater.models, device=updater.device)
    request = sentiment_request("p1", "movies", n=24, seed=2, task=TASK,
                                parent=parent.version_id)

    result = learner.update(request, VersionLog().apply(parent))

    event = result.event
    search = event.metadata["prompt_search"]
    # The worked examples: the texts the update trains and early-stops on (none held out).
    pairs = len({e.input for e in (*result.split.train, *result.split.validation)})
    shown = f"sentiment@1 with 2 nearest of {pairs} worked examples"
    assert search["texts"] == 12 and search["chosen"] == shown
    assert search["tried"][shown] > search["parent"]  # chosen for beating the parent there
    arms = event.metadata["arms"]
    assert event.metadata["arm"] == "prompt", arms
    assert {"prompt_holdout_score", "lora_holdout_score", "lora_over_prompt"} <= set(arms)
    assert event.metrics_after["holdout_score"] == arms["prompt_holdout_score"]
    assert result.timings["prompt_arm_seconds"] > 0
    # Stored as the parent's weights under the chosen prompt, which the event names.
    assert event.metadata["prompt_policy"] == {"template": "sentiment@1", "shots": 2,
                                               "examples": pairs,
                                               "digest": event.metadata["prompt_policy"][
                                                   "digest"]}
    folder = learner.store.fetch(event.adapter_uri, event.sha256, tmp_path / "fetched")
    assert PromptPolicy.load(folder).describe() == shown
    assert (folder / "adapter_model.safetensors").read_bytes() == (
        untrained / "adapter_model.safetensors").read_bytes()
    assert event.prompt_template_id == read_metadata(folder).prompt_template_id == "sentiment@1"

    # The next update's parent is the prompt version: scored under its own prompt, which
    # is therefore not tried again; the template alone is.
    log = VersionLog().extend([parent, event.with_status(VersionStatus.PROMOTED, ts=2.0)])
    after = learner.update(sentiment_request("p2", "movies", n=16, seed=6, task=TASK,
                                             parent=event.version_id), log)
    tried = after.event.metadata["prompt_search"]["tried"]
    assert "sentiment@1 alone" in tried and len(tried) == 2, tried
