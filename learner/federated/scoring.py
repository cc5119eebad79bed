"""How a federated merge is gated: every adapter scored the same way on the same evidence.

The promoted head (or an untrained adapter), each site's adapter and the merge are built on
a fresh copy of the base model and scored on the aggregator's evaluation set, overall and
per domain (one pass per domain; the overall numbers are their example-weighted means),
and, for the head and the merge, on the task's challenge suite.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...schemas.events import TrainingExample
from ..gate.challenges import ChallengeSuite
from ..models.adapters import LoraSpec
from ..models.task_model import TaskModel

__all__ = ["GateScorer", "Metrics", "gate_metrics"]

Metrics = dict[str, float]


@dataclass(frozen=True, slots=True)
class GateScorer:
    """Builds an adapter on a fresh copy of the base and scores it the gate's way.

    Examples
    --------
    >>> from driftloop.schemas.events import TrainingExample
    >>> class Echo:  # a stand-in task model whose answer is its input
    ...     def build(self, base, spec, folder):
    ...         return folder
    ...     def evaluate(self, model, examples):
    ...         return sum(e.input == e.target for e in examples) / len(examples), 0.5
    ...     def score_answers(self, model, prompts, expected):
    ...         return [p == e for p, e in zip(prompts, expected)]
    >>> class Base:
    ...     def fresh_copy(self):
    ...         return "a copy"
    >>> examples = [TrainingExample(input="a", target="a")]
    >>> scorer = GateScorer(Echo(), Base(), LoraSpec(), examples, ChallengeSuite())
    >>> scorer.score(scorer.build(None))
    {'holdout_score': 1.0, 'holdout_loss': 0.5, 'holdout_count': 1.0}
    """

    task_model: TaskModel
    base: Any
    spec: LoraSpec
    examples: Sequence[TrainingExample]
    suite: ChallengeSuite

    def build(self, folder: Path | None) -> Any:
        return self.task_model.build(self.base.fresh_copy(), self.spec, folder)

    def score(self, model: Any, *, with_suite: bool = True) -> Metrics:
        return gate_metrics(self.task_model, model, self.examples,
                            self.suite if with_suite else ChallengeSuite())


def gate_metrics(task_model: TaskModel, model: Any, examples: Sequence[TrainingExample],
                 suite: ChallengeSuite) -> Metrics:
    """The gate's metrics on the evaluation set (overall and per domain) and the suite.

    >>> from driftloop.schemas.events import TrainingExample
    >>> class Echo:  # a stand-in task model whose answer is its input
    ...     def evaluate(self, model, examples):
    ...         return sum(e.input == e.target for e in examples) / len(examples), 0.5
    ...     def score_answers(self, model, prompts, expected):
    ...         return [p == e for p, e in zip(prompts, expected)]
    >>> examples = [TrainingExample(input="a", target="a", domain="x"),
    ...             TrainingExample(input="b", target="a", domain="y"),
    ...             TrainingExample(input="c", target="c", domain="y")]
    >>> gate_metrics(Echo(), None, examples, ChallengeSuite()) # doctest: +NORMALIZE_WHITESPACE
    {'holdout_score': 0.666..., 'holdout_loss': 0.5, 'holdout_count': 3.0,
     'holdout_score.x': 1.0, 'holdout_score.y': 0.5}
    """
    parts = {domain: [e for e in examples if e.domain == domain]
             for domain in sorted({e.domain for e in examples})}
    # One pass per domain; the overall numbers are their example-weighted means.
    scored = {domain: task_model.evaluate(model, part) for domain, part in parts.items()}
    total = float(len(examples))
    metrics: Metrics = {
        "holdout_score": sum(s * len(parts[d]) for d, (s, _) in scored.items()) / total,
        "holdout_loss": sum(loss * len(parts[d]) for d, (_, loss) in scored.items()) / total,
        "holdout_count": total}
    if len(parts) > 1:
        metrics.update({f"holdout_score.{d}": s for d, (s, _) in scored.items()})
    if len(suite):
        hits = task_model.score_answers(model, [c.input for c in suite],
                                        [c.expected for c in suite])
        metrics["challenge_score"] = sum(hits) / len(hits)
        metrics["challenge_count"] = float(len(hits))
    return metrics
