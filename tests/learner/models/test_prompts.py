from __future__ import annotations

import pytest

from driftloop.learner.errors import PromptTemplateError
from driftloop.learner.models.prompts import (
    IGNORE_INDEX,
    PromptTemplate,
    get_template,
    register,
    versions,
)


def test_loss_covers_target_tokens_only(minilm) -> None:  # type: ignore[no-untyped-def]
    tokenizer = minilm.tokenizer
    template = get_template("sentiment@1")
    ids, labels = template.encode(tokenizer, "what a lovely day", "positive", max_length=64)
    target = tokenizer("positive", add_special_tokens=False)["input_ids"]
    if tokenizer.eos_token_id is not None:
        target = [*target, tokenizer.eos_token_id]
    assert len(ids) == len(labels)
    assert labels[-len(target):] == target == ids[-len(target):]
    assert set(labels[:-len(target)]) == {IGNORE_INDEX}


def test_long_prompts_lose_their_start_not_the_target(minilm) -> None:  # type: ignore[no-untyped-def]
    ids, labels = get_template("plain").encode(minilm.tokenizer, "word " * 500, "positive",
                                               max_length=32)
    assert len(ids) == 32 and labels[-1] != IGNORE_INDEX
    with pytest.raises(PromptTemplateError, match="does not fit"):
        get_template("plain").encode(minilm.tokenizer, "x", "word " * 50, max_length=16)


def test_template_registry() -> None:
    assert get_template("qa").ref == "qa@1"
    with pytest.raises(PromptTemplateError, match="unknown prompt template"):
        get_template("nope")
    assert register(PromptTemplate("qa", 1, "Answer the question in as few words as possible.",
                                   "{input}")).ref == "qa@1"
    with pytest.raises(PromptTemplateError, match="new version"):
        register(PromptTemplate("qa", 1, "Something else"))


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"id": "", "version": 1}, "non-empty"),
    ({"id": "a@b", "version": 1}, "without '@'"),
    ({"id": "a", "version": 0}, "version"),
    ({"id": "a", "version": 1, "input_format": "no slot"}, "needs"),
])
def test_bad_templates(kwargs: dict, message: str) -> None:
    with pytest.raises(PromptTemplateError, match=message):
        PromptTemplate(**kwargs)


def test_a_changed_template_is_a_new_version_never_a_replacement() -> None:
    first = register(PromptTemplate("versioned", 1, "Say yes or no.", choices=("yes", "no")))
    with pytest.raises(PromptTemplateError, match="publish a new version"):
        register(PromptTemplate("versioned", 1, "Say yes or no!", choices=("yes", "no")))
    second = register(PromptTemplate("versioned", 2, "Say yes or no!", choices=("yes", "no")))
    assert [t.ref for t in versions("versioned")] == ["versioned@1", "versioned@2"]
    assert get_template("versioned") is second and get_template("versioned@1") is first
    # The content digest a model version records tells the two apart, and only the content.
    assert first.sha256 != second.sha256
    assert first.sha256 == PromptTemplate("versioned", 1, "Say yes or no.",
                                          choices=("yes", "no")).sha256


@pytest.mark.parametrize(("ref", "message"), [
    ("sentiment@2", r"has no version 2; versions: \[1\]"),
    ("sentiment@0", "has no version 0"),
    ("sentiment@one", "has no version one"),
    ("sentiment@", "has no version"),
    ("nope@1", "unknown prompt template 'nope@1'"),
    ("", "unknown prompt template ''"),
])
def test_bad_template_versions_are_named(ref: str, message: str) -> None:
    with pytest.raises(PromptTemplateError, match=message):
        get_template(ref)
