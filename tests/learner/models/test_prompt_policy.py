"""Prompt policies: a template and worked examples, saved with an adapter, chosen per input
by the input embedding, never the input itself."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from driftloop.learner.errors import AdapterFormatError
from driftloop.learner.models.prompt_policy import POLICY_FILE, PromptPolicy, ShotIndex
from driftloop.learner.models.prompts import get_template

EXAMPLES = (("so good", "positive"), ("so bad", "negative"), ("fine, i guess", "positive"))
VECTORS = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.7, 0.7]])


def test_a_policy_round_trips_through_its_file(tmp_path: Path) -> None:
    policy = PromptPolicy("sentiment@1", 2, EXAMPLES)
    policy.save(tmp_path)
    assert PromptPolicy.load(tmp_path) == policy
    assert policy.metadata() == {"template": "sentiment@1", "shots": 2, "examples": 3,
                                 "digest": policy.digest}


@pytest.mark.parametrize("body", ["not json", json.dumps({"template": "s@1"}),
                                  json.dumps({"template": "s@1", "shots": 1, "examples": 5}),
                                  json.dumps({"template": "s@1", "shots": -1, "examples": []})])
def test_a_malformed_policy_file_is_an_adapter_format_error(tmp_path: Path, body: str) -> None:
    (tmp_path / POLICY_FILE).write_text(body)
    with pytest.raises(AdapterFormatError, match="not a prompt policy"):
        PromptPolicy.load(tmp_path)


def test_shots_need_examples() -> None:
    with pytest.raises(ValueError, match="needs examples"):
        PromptPolicy("s@1", 2)


def test_the_nearest_examples_come_last_and_an_input_is_never_its_own() -> None:
    index = ShotIndex(PromptPolicy("sentiment@1", 2, EXAMPLES), VECTORS)
    shots = index.shots_for(["quite good", "so bad"], torch.tensor([[0.9, 0.2], [0.0, 1.0]]))
    assert shots[0] == [("fine, i guess", "positive"), ("so good", "positive")]
    assert ("so bad", "negative") not in shots[1] and len(shots[1]) == 2
    # More shots than examples: all of them (but the input's own).
    many = ShotIndex(PromptPolicy("sentiment@1", 9, EXAMPLES), VECTORS)
    assert len(many.shots_for(["so good"], torch.tensor([[1.0, 0.0]]))[0]) == 2
    assert ShotIndex(PromptPolicy("s@1"), torch.zeros(0, 2)).shots_for(["a"], [[1.0, 0.0]]) == [[]]


def test_vectors_must_match_the_examples() -> None:
    with pytest.raises(ValueError, match="2 vectors for 3 examples"):
        ShotIndex(PromptPolicy("s@1", 1, EXAMPLES), VECTORS[:2])


def test_the_template_renders_the_shots_before_the_input() -> None:
    message = get_template("sentiment").user_message("meh", shots=[("so good", "positive")])
    instruction, shot, text = message.split("\n\n")
    assert instruction.startswith("Is the sentiment")
    assert shot == "Text: so good\nAnswer: positive" and text == "Text: meh"
    assert get_template("sentiment").user_message("meh") == f"{instruction}\n\nText: meh"
