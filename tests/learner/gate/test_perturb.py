from __future__ import annotations

from typing import get_args

import pytest
from pydantic import ValidationError

from driftloop.learner.gate.perturb import (
    MODEL_WRITTEN,
    PERTURBATIONS,
    perturb,
    robustness_suite,
)
from driftloop.learner.gate.rule import GateRule
from driftloop.schemas.events import TrainingExample
from driftloop.schemas.settings import TaskSettings
from driftloop.schemas.settings.tasks import Perturbation

TEXTS = ["The service was slow and the food cold.", "Absolutely loved the new album!",
         "Meh", "I can't recommend it", "Where is the nearest station?"]


def test_the_settings_name_every_perturbation_the_gate_knows() -> None:
    assert set(get_args(Perturbation)) == set(PERTURBATIONS) | set(MODEL_WRITTEN)


@pytest.mark.parametrize("kind", PERTURBATIONS)
def test_each_perturbation_changes_a_text_the_same_way_every_time(kind: str) -> None:
    changed = [perturb(text, kind, seed=3) for text in TEXTS]
    assert changed == [perturb(text, kind, seed=3) for text in TEXTS]
    assert any(c is not None for c in changed)
    assert all(c != t for c, t in zip(changed, TEXTS, strict=True))


def test_letter_perturbations_keep_length_within_one_and_words_in_place() -> None:
    text = "Absolutely loved the new album!"
    for kind in ("typo", "char_swap"):
        changed = perturb(text, kind)
        assert changed is not None and abs(len(changed) - len(text)) <= 1
        assert len(changed.split()) == len(text.split())
    assert sorted(perturb(text, "word_swap").split()) == sorted(text.split())


def test_a_suite_keeps_labels_negates_by_the_map_and_respects_its_limit() -> None:
    held = [TrainingExample(input=t, target="negative" if i % 2 else "positive")
            for i, t in enumerate(TEXTS)]
    held.append(TrainingExample(input="Is it open?", target="question"))
    suite = robustness_suite(held, ["case", "negation"], limit=3,
                             negation={"positive": "negative", "negative": "positive"})
    cases = [e for kind, e in suite if kind == "case"]
    assert len(cases) == 3
    originals = {e.input.lower(): e.target for e in held}
    assert all(originals[e.input.lower()] == e.target for e in cases)
    negated = [e for kind, e in suite if kind == "negation"]
    assert negated and all(e.target != "question" for e in negated)
    for example in negated:
        source = next(h for h in held if h.input != example.input
                      and perturb(h.input, "negation") == example.input)
        assert example.target != source.target
    # The same texts whatever order the gate holds them in.
    assert robustness_suite(held[::-1], ["case"], limit=3) == [s for s in suite
                                                               if s[0] == "case"]


def test_the_documented_settings_are_valid() -> None:
    import re
    import tomllib
    from pathlib import Path

    docs = (Path(__file__).parents[3] / "docs" / "learner.md").read_text()
    snippet = re.search(r"```toml\n(\[tasks\.sentiment\]\nrobustness.*?)```", docs, re.S)
    assert snippet is not None
    task = TaskSettings(**tomllib.loads(snippet.group(1))["tasks"]["sentiment"])
    assert "negation" in task.robustness and task.negation_labels["positive"] == "negative"


def test_bad_robustness_settings_are_refused_with_the_reason() -> None:
    with pytest.raises(ValueError, match="unknown perturbation"):
        perturb("text", "emoji")
    with pytest.raises(ValueError, match="negation labels"):
        robustness_suite([TrainingExample(input="is ok", target="a")], ["negation"])
    with pytest.raises(ValidationError, match="negation_labels"):
        TaskSettings(robustness=("negation",))
    with pytest.raises(ValidationError, match="classification tasks only"):
        TaskSettings(kind="generation", prompt_template_id="x", robustness=("negation",),
                     negation_labels={"a": "b"})
    with pytest.raises(ValidationError, match="not among"):
        TaskSettings(labels=("negative", "positive"), negation_labels={"good": "bad"})
    with pytest.raises(ValidationError):
        TaskSettings(robustness=("emoji",))


def test_the_gate_refuses_a_candidate_less_robust_than_its_parent_beyond_the_tolerance() -> None:
    rule = GateRule(robust_tolerance=0.05)
    before = {"holdout_score": 0.6, "robust_score": 0.8, "robust_count": 200.0}
    fine = rule.decide(before, {"holdout_score": 0.8, "robust_score": 0.77,
                                "robust_count": 200.0})
    assert fine.promote and "robust: 0.770 within 0.05 of 0.800" in fine.reasons
    worse = rule.decide(before, {"holdout_score": 0.8, "robust_score": 0.7,
                                 "robust_count": 200.0})
    assert not worse.promote
    assert worse.reasons[-1] == "robust: 0.700 < 0.800 - 0.05 (less robust)"


def test_paraphrases_keep_the_label_leave_out_copies_and_respect_their_limit() -> None:
    held = [TrainingExample(input=t, target=str(i)) for i, t in enumerate(TEXTS)]
    asked: list[list[str]] = []

    def rewrite(texts: list[str]) -> list[str | None]:
        asked.append(texts)
        # a rewrite, an empty answer, the same words, then rewrites again
        return [f"In other words: {t}" if i % 3 == 0 else None if i % 3 == 1 else t.upper()
                for i, t in enumerate(texts)]

    suite = robustness_suite(held, ["paraphrase", "case"], paraphrase=rewrite,
                             paraphrase_limit=4)
    written = [e for kind, e in suite if kind == "paraphrase"]
    assert len(asked) == 1 and len(asked[0]) == 4  # one batch, at most the limit
    assert [e.input for e in written] == [f"In other words: {t}" for t in asked[0][::3]]
    source = {e.input: e.target for e in held}
    assert all(e.target == source[e.input.removeprefix("In other words: ")] for e in written)
    assert any(kind == "case" for kind, _ in suite)
    with pytest.raises(ValueError, match="needs a paraphraser"):
        robustness_suite(held, ["paraphrase"])
    with pytest.raises(ValueError, match="1 paraphrases for 2 texts"):
        robustness_suite(held, ["paraphrase"], paraphrase=lambda texts: ["x"],
                         paraphrase_limit=2)
