"""Paraphrase sets: versioned, tied to one template version, refused when they measure nothing."""

from __future__ import annotations

import pytest

from driftloop.learner.errors import PromptTemplateError
from driftloop.learner.gate.paraphrases import (
    PARAPHRASE_SETS,
    Paraphrase,
    ParaphraseError,
    ParaphraseSet,
    paraphrases_for,
    register_paraphrases,
)
from driftloop.learner.models.prompts import PromptTemplate, get_template, register

WORDING = Paraphrase("Reply with one word: positive or negative?", "Text: {input}")


def test_shipped_sets_keep_the_choices_and_change_the_wording() -> None:
    for paraphrases in PARAPHRASE_SETS.values():
        base, *variants = paraphrases.templates()
        assert base.ref == paraphrases.template_ref
        messages = {t.user_message("some input") for t in (base, *variants)}
        assert len(messages) == 1 + len(variants)  # every wording its own
        for variant in variants:
            assert (variant.id, variant.version, variant.choices) == (base.id, base.version,
                                                                     base.choices)
            assert all(choice in variant.instruction for choice in base.choices)


def test_the_latest_set_of_a_template_is_used() -> None:
    template = register(PromptTemplate("paraphrased", 1, "Is it good? Say yes or no.",
                                       choices=("yes", "no")))
    first = register_paraphrases(ParaphraseSet("paraphrased@1", 1, (
        Paraphrase("Answer yes or no: is it good?"),)))
    assert paraphrases_for(template) is first
    second = register_paraphrases(ParaphraseSet("paraphrased@1", 2, (
        Paraphrase("Answer yes or no: is it good?"), Paraphrase("Good? yes or no."))))
    assert paraphrases_for(template) is second and second.ref == "paraphrased@1/paraphrases@2"
    # Publishing the same set again is a no-op; other wordings under its ref are refused.
    assert register_paraphrases(ParaphraseSet("paraphrased@1", 1, (
        Paraphrase("Answer yes or no: is it good?"),))) == first
    with pytest.raises(ParaphraseError, match="new version"):
        register_paraphrases(ParaphraseSet("paraphrased@1", 1, (Paraphrase("Good or not?"),)))


@pytest.mark.parametrize(("template_ref", "version", "variants", "message"), [
    ("sentiment@1", 1, (), "the list is empty"),
    ("sentiment@1", 1, (WORDING, WORDING), "repeated"),
    ("sentiment@1", 0, (WORDING,), "version must be >= 1"),
    ("sentiment@1", 1, (Paraphrase("Positive or negative?", "no slot"),), "needs {input}"),
    ("sentiment@1", 1, (Paraphrase(get_template("sentiment@1").instruction,
                                   get_template("sentiment@1").input_format),),
     "template's own wording"),
    ("sentiment", 1, (WORDING,), "id@version"),
    ("sentiment@9", 1, (WORDING,), "no version 9"),
    ("nope@1", 1, (WORDING,), "unknown prompt template"),
])
def test_bad_paraphrase_sets_are_refused(template_ref: str, version: int,
                                        variants: tuple[Paraphrase, ...], message: str) -> None:
    with pytest.raises(PromptTemplateError, match=message):
        ParaphraseSet(template_ref, version, variants)


def test_a_template_without_paraphrases_has_none() -> None:
    assert paraphrases_for(get_template("plain@1")) is None
