"""How a federated merge is scored for the gate, with a stand-in task model (no torch)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from driftloop.learner.federated.scoring import GateScorer, gate_metrics
from driftloop.learner.gate.challenges import ChallengeCase, ChallengeSuite
from driftloop.learner.models.adapters import LoraSpec
from driftloop.schemas.events import TrainingExample


class Echo:
    """Answers each input with itself; counts the passes it is asked for."""

    score_name = "accuracy"

    def __init__(self) -> None:
        self.passes: list[int] = []
        self.built: list[tuple[Any, Any]] = []

    def build(self, base: Any, spec: LoraSpec, folder: Any) -> Any:
        self.built.append((base, folder))
        return folder

    def evaluate(self, model: Any, examples: Sequence[TrainingExample]) -> tuple[float, float]:
        self.passes.append(len(examples))
        return sum(e.input == e.target for e in examples) / len(examples), 0.1 * len(examples)

    def score_answers(self, model: Any, prompts: Sequence[str],
                      expected: Sequence[str]) -> list[bool]:
        return [p == e for p, e in zip(prompts, expected, strict=True)]


class Base:
    def __init__(self) -> None:
        self.copies = 0

    def fresh_copy(self) -> str:
        self.copies += 1
        return f"copy-{self.copies}"


EXAMPLES = [TrainingExample(input="a", target="a", domain="x"),
            TrainingExample(input="b", target="a", domain="y"),
            TrainingExample(input="c", target="c", domain="y"),
            TrainingExample(input="d", target="d", domain="y")]
SUITE = ChallengeSuite((ChallengeCase("a", "a", ()), ChallengeCase("b", "c", ())))


def test_one_pass_per_domain_and_the_overall_numbers_are_their_weighted_means() -> None:
    echo = Echo()
    metrics = gate_metrics(echo, None, EXAMPLES, SUITE)
    assert echo.passes == [1, 3]
    assert metrics["holdout_score"] == pytest.approx(3 / 4)
    assert metrics["holdout_loss"] == pytest.approx((0.1 * 1 + 0.3 * 3) / 4)
    assert metrics["holdout_count"] == 4.0
    assert metrics["holdout_score.x"] == 1.0 and metrics["holdout_score.y"] == pytest.approx(2 / 3)
    assert (metrics["challenge_score"], metrics["challenge_count"]) == (0.5, 2.0)


def test_one_domain_has_no_per_domain_scores_and_an_empty_suite_no_challenge() -> None:
    metrics = gate_metrics(Echo(), None, EXAMPLES[:1], ChallengeSuite())
    assert metrics == {"holdout_score": 1.0, "holdout_loss": pytest.approx(0.1),
                       "holdout_count": 1.0}


def test_the_scorer_builds_on_a_fresh_copy_and_leaves_the_suite_out_when_asked() -> None:
    echo, base = Echo(), Base()
    scorer = GateScorer(echo, base, LoraSpec(), EXAMPLES, SUITE)
    model = scorer.build("folder-a")
    scorer.build(None)
    assert echo.built == [("copy-1", "folder-a"), ("copy-2", None)]
    assert "challenge_score" in scorer.score(model)
    assert "challenge_score" not in scorer.score(model, with_suite=False)
