"""What the gate judges on: parent and candidate scored on the same held-out texts.

The request's held-out new examples (with the gate pool's), its held-out replayed examples
(forgetting), the challenge suite (with a score per tag) and, when the task asks, the
held-out texts perturbed (robust accuracy, with a score per perturbation; :mod:`.perturb`).
Each part records how many examples it had (``<part>_count``): the gate's resolution.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ...schemas.events import TrainingExample
from ..models.task_model import Evaluation, TaskModel
from .challenges import ChallengeCase, ChallengeSuite, cases_from_errors
from .split import RequestSplit

__all__ = ["Answerer", "Metrics", "Outcomes", "parent_misses", "score_for_gate"]

Metrics = dict[str, float]
Outcomes = dict[str, Evaluation]
"""Per part (``holdout``, ``replay``), each example's answer and proper score: the paired
tests of :mod:`.paired` compare parent and candidate example by example."""

Answerer = Callable[[list[str], list[str]], list[bool]]
"""``(prompts, expected) -> hits``: how a model's challenge answers are scored."""


def score_for_gate(task_model: TaskModel, model: Any, split: RequestSplit,
                   suite: ChallengeSuite, outcomes: Outcomes | None = None, *,
                   evaluate: Callable[[list[TrainingExample]], Evaluation] | None = None,
                   answer: Answerer | None = None,
                   robust: Sequence[tuple[str, TrainingExample]] = ()) -> Metrics:
    """Scores and losses of ``model`` on the split's held-out parts and the suite; with
    ``outcomes``, each part's per-example results are put there too. ``evaluate`` scores
    the held-out parts instead of ``task_model.evaluate_each``, and ``answer`` the suite
    instead of ``task_model.score_answers`` (a parent's kept results,
    :class:`.parent_scores.ParentScores`; a candidate whose answers are asked again).
    ``robust``: ``(perturbation, example)`` pairs (:func:`.perturb.robustness_suite`),
    scored as the held-out parts are, into ``robust_score`` and ``robust.<perturbation>``.

    >>> from driftloop.schemas.events import TrainingExample
    >>> class Echo:  # a stand-in task model whose answer is its input
    ...     def evaluate_each(self, model, examples):
    ...         hits = [e.input == e.target for e in examples]
    ...         return Evaluation(hits, 0.7, [float(h) for h in hits])
    ...     def score_answers(self, model, prompts, expected):
    ...         return [p == e for p, e in zip(prompts, expected)]
    >>> held = tuple(TrainingExample(input=t, target="a") for t in ("a", "b"))
    >>> suite = ChallengeSuite((ChallengeCase("a", "a", ("easy",)),))
    >>> score_for_gate(Echo(), None, RequestSplit((), (), held, ()), suite)
    ... # doctest: +NORMALIZE_WHITESPACE
    {'holdout_score': 0.5, 'holdout_loss': 0.7, 'holdout_count': 2.0, 'challenge_score': 1.0,
     'challenge_count': 1.0, 'challenge.easy': 1.0}
    """
    metrics: Metrics = {}
    for part, examples in (("holdout", split.holdout_new), ("replay", split.holdout_replay)):
        if examples:
            result = (evaluate(list(examples)) if evaluate is not None
                      else task_model.evaluate_each(model, list(examples)))
            metrics[f"{part}_score"], metrics[f"{part}_loss"] = result.accuracy, result.loss
            if outcomes is not None:
                outcomes[part] = result
            metrics[f"{part}_count"] = float(len(examples))  # the gate's resolution
    if len(suite):
        prompts, expected = [c.input for c in suite], [c.expected for c in suite]
        hits = (answer(prompts, expected) if answer is not None
                else task_model.score_answers(model, prompts, expected))
        metrics["challenge_score"] = sum(hits) / len(hits)
        metrics["challenge_count"] = float(len(hits))
        for tag in suite.tags():
            tagged = [h for h, c in zip(hits, suite, strict=True) if tag in c.tags]
            metrics[f"challenge.{tag}"] = sum(tagged) / len(tagged)
    if robust:
        examples = [e for _, e in robust]
        result = (evaluate(examples) if evaluate is not None
                  else task_model.evaluate_each(model, examples))
        metrics["robust_score"] = result.accuracy
        metrics["robust_count"] = float(len(examples))
        for kind in dict.fromkeys(k for k, _ in robust):
            kept = [h for h, (k, _) in zip(result.hits, robust, strict=True) if k == kind]
            metrics[f"robust.{kind}"] = sum(kept) / len(kept)
    return metrics


def parent_misses(task_model: TaskModel, model: Any, split: RequestSplit, *, source: str,
                  limit: int, hits: Sequence[bool] | None = None) -> list[ChallengeCase]:
    """The request's held-out examples the parent got wrong, as challenge cases (at most
    ``limit``; ``source`` names the request they came from). ``hits``: the parent's answers
    on them, when the gate has scored them already (the first of its recent slice)."""
    if limit <= 0:
        return []
    inputs = [e.input for e in split.holdout_new]
    targets = [e.target for e in split.holdout_new]
    if hits is None or len(hits) < len(inputs):
        hits = task_model.score_answers(model, inputs, targets)
    return cases_from_errors(inputs, targets, list(hits)[:len(inputs)], source=source,
                             limit=limit)
