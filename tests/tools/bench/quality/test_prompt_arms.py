"""The prompt-arm bench: both arms update the same first version on the new domain, and
the table reports the prompt's share, its cost and the served accuracy."""

from __future__ import annotations

import json

import pytest

from driftloop.tools.bench.quality.prompt_arms import ARMS, prompt_arms, summarise_prompt_arms
from driftloop.tools.bench.quality.run import _prompt_arm_table


@pytest.mark.slow
def test_both_arms_update_the_same_first_version_and_are_scored_after_each_update() -> None:
    run = prompt_arms("vader", seed=0, known=8, per_update=8, updates=1, heldout=8,
                      torch_threads=1)
    assert (run["from"], run["to"], run["template"]) == ("tweets", "movies", "sentiment@1")
    assert sorted(run["arms"]) == sorted(ARMS)
    first = {arm: steps[0] for arm, steps in run["arms"].items()}
    assert first["lora"] == first["prompt"]  # one first version, scored once
    for arm, (_, step) in run["arms"].items():
        assert step["labels"] == 8 and 0 <= step["served"] <= 1
        assert step["train_seconds"] > 0  # both arms train the LoRA candidate
        assert (step["prompt_seconds"] > 0) is (arm == "prompt")
        assert step["arm"] in (("lora",) if arm == "lora" else ARMS)
    back = json.loads(json.dumps(run))
    summary = summarise_prompt_arms([back])
    assert summary == summarise_prompt_arms([run])
    table = _prompt_arm_table({"known": 8, "per_update": 8, "updates": 1, "summary": summary})
    assert table[1].startswith("vader (1 seeds; the prompt candidate was the update's version")
    assert [line.split()[0] for line in table[2:]] == list(ARMS)
