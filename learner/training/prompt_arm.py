"""Prompt first, fine-tune second, for generation tasks: the prompt arm of an update.

With ``learner.prompt_arm`` a generation update that has a served parent builds, beside the
trained (LoRA) candidate, a *prompt candidate*: the parent's adapter unchanged under a
revised prompt (:class:`~driftloop.learner.models.prompt_policy.PromptPolicy`). The revisions
tried are every registered version of the task's template, alone and with
``prompt_arm_shots`` worked examples: the nearest of the request's labelled training texts
and the parent's own examples (newest kept, at most ``prompt_arm_examples``), by the base
model's input-token embedding mean. Each is tried on the request's new training texts (at
most ``prompt_arm_texts``; the parent never trained on them; a text is never its own worked
example), and the one answering most of them right (the cheaper on a tie: fewer shots)
becomes the candidate, if it beats the parent's own prompt there. It costs generations, no
training.

The gate then judges both candidates against the parent on the same texts, each at half its
level (:mod:`.arms`: a union bound keeps the update's false-promotion rate at
``gate_alpha``), and the cheaper one, the prompt, serves unless the trained one is
significantly better than it on the recent slice. The prompt candidate is stored as the
parent's adapter files with its policy beside them (``prompt_policy.json``), its event names
the policy's template, and serving renders prompts through the same policy, worked examples
and all (:class:`~driftloop.learner.serving.model_host.ModelHost`).

Examples
--------
>>> from driftloop.learner.models.prompts import PromptTemplate
>>> parent = PromptPolicy("sentiment@1")
>>> [p.describe() for p in revisions(parent, PromptTemplate("sentiment", 1), shots=2,
...                                  examples=(("a", "x"), ("b", "y")))]
['sentiment@1 with 2 nearest of 2 worked examples']
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...schemas.enums import ExampleOrigin
from ...schemas.events import TrainingExample
from ..gate.evidence import Metrics, Outcomes
from ..models.adapters import (
    PROMPT_TEMPLATE_FILE,
    AdapterMetadata,
    save_on_parent_weights,
    write_prompt_template,
)
from ..models.generation import GenerationTask
from ..models.prompt_policy import POLICY_FILE, PromptPolicy, ShotIndex
from ..models.prompts import PromptTemplate, get_template, versions

__all__ = ["PromptCandidate", "PromptSearch", "prompted", "revisions", "save_prompt_candidate",
           "search_prompt", "worked_examples"]


@dataclass(slots=True)
class PromptCandidate:
    """The prompt arm of an update: its policy and its results on the gate's texts.

    >>> PromptCandidate(PromptPolicy("s@1")).policy.describe()
    's@1 alone'
    """

    policy: PromptPolicy
    outcomes: Outcomes = field(default_factory=dict)
    metrics: Metrics = field(default_factory=dict)


@dataclass(slots=True)
class PromptSearch:
    """What the search tried, on how many texts, and what it chose (None: nothing beat the
    parent's prompt).

    >>> PromptSearch(12, 0.25, [("s@1 alone", 0.5)], PromptPolicy("s@1")).metadata()
    {'texts': 12, 'parent': 0.25, 'tried': {'s@1 alone': 0.5}, 'chosen': 's@1 alone'}
    """

    texts: int
    parent: float
    tried: list[tuple[str, float]]
    chosen: PromptPolicy | None

    def metadata(self) -> dict[str, Any]:
        return {"texts": self.texts, "parent": round(self.parent, 4),
                "tried": {name: round(score, 4) for name, score in self.tried},
                "chosen": self.chosen.describe() if self.chosen else None}


def worked_examples(examples: Sequence[TrainingExample], parent: PromptPolicy | None, *,
                    limit: int) -> tuple[tuple[str, str], ...]:
    """The pairs a revised prompt's shots are chosen from: the parent's, then the request's
    real training examples (a text once, its newest label), the newest ``limit`` kept.

    >>> from driftloop.schemas.events import TrainingExample
    >>> ex = [TrainingExample(input=t, target=a) for t, a in (("a", "1"), ("b", "2"), ("a", "3"))]
    >>> worked_examples(ex, PromptPolicy("s@1", 1, (("c", "4"),)), limit=2)
    (('b', '2'), ('a', '3'))
    """
    pairs: dict[str, str] = dict(parent.examples) if parent is not None else {}
    for example in examples:
        if example.origin is not ExampleOrigin.SYNTHETIC:
            pairs.pop(example.input, None)  # re-inserted: the newest label, last
            pairs[example.input] = example.target
    return tuple(pairs.items())[-limit:] if limit else ()


def revisions(parent: PromptPolicy, template: PromptTemplate, *, shots: int,
              examples: tuple[tuple[str, str], ...]) -> list[PromptPolicy]:
    """The prompts an update tries: every version of the template, alone and with
    ``shots`` worked examples, except the parent's own."""
    found = []
    for version in versions(template.id) or [template]:
        for k in sorted({0, shots if examples else 0}):
            policy = PromptPolicy(version.ref, k, examples if k else ())
            if policy.digest != parent.digest:
                found.append(policy)
    return found


def prompted(task_model: Any, policy: PromptPolicy | None, model: Any) -> Any:
    """``task_model`` answering under ``policy`` (its template and worked examples, indexed
    by ``model``'s input embeddings); the task model itself without a policy."""
    if policy is None or not isinstance(task_model, GenerationTask):
        return task_model
    index = (ShotIndex.build(policy, model, task_model.tokenizer, max_length=task_model.max_length)
             if policy.shots else None)
    return task_model.with_prompt(get_template(policy.template_ref), index)


def search_prompt(task_model: GenerationTask, model: Any, parent: PromptPolicy,
                  candidates: Sequence[PromptPolicy],
                  texts: Sequence[TrainingExample]) -> PromptSearch:
    """Try each candidate policy on ``texts`` with ``model``; the best that answers more of
    them right than the parent's own policy (fewer shots first on a tie)."""
    def accuracy(policy: PromptPolicy) -> float:
        hits = prompted(task_model, policy, model).score_answers(
            model, [e.input for e in texts], [e.target for e in texts])
        return sum(hits) / len(hits) if hits else 0.0

    base = accuracy(parent)
    tried = [(policy, accuracy(policy)) for policy in candidates]
    best = max(tried, key=lambda pair: (pair[1], -pair[0].shots), default=None)
    chosen = best[0] if best is not None and best[1] > base else None
    return PromptSearch(len(texts), base, [(p.describe(), s) for p, s in tried], chosen)


def save_prompt_candidate(parent: Path, folder: Path, metadata: AdapterMetadata,
                          policy: PromptPolicy) -> Path:
    """The parent's adapter files (weights untouched) with ``metadata`` and ``policy``, and
    the policy's template in ``prompt_template.json`` (a server without driftloop reads it)."""
    def write(into: Path) -> None:
        policy.save(into)
        write_prompt_template(into, policy.template_ref)

    return save_on_parent_weights(parent, folder, metadata,
                                  replaced=(POLICY_FILE, PROMPT_TEMPLATE_FILE), write=write)
