"""How the learner treats one task (``[tasks.<name>]``): kind, model, labels, distillation.

Examples
--------
>>> TaskSettings(kind="generation", prompt_template_id="sentiment").kind
<TaskKind.GENERATION: 'generation'>
>>> TaskSettings(kind="generation", teacher="v3")
Traceback (most recent call last):
...
pydantic_core._pydantic_core.ValidationError: 1 validation error for TaskSettings
  Value error, teacher: distillation is implemented for classification tasks only ...
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from ..enums import TaskKind
from .section import Section

__all__ = ["Perturbation", "TaskSettings"]

Perturbation = Literal["typo", "char_swap", "case", "punctuation", "word_swap", "negation",
                       "paraphrase"]
"""The robustness checks a gate can run (``driftloop.learner.gate.perturb``)."""


class TaskSettings(Section):
    """How the learner treats one task."""

    kind: TaskKind = TaskKind.CLASSIFICATION
    base_model: str | None = Field(None, description="hub name or local path; None = default")
    labels: tuple[str, ...] = ()
    prompt_template_id: str | None = None
    embedding_dim: int | None = Field(None, gt=0)
    challenge_suite: Path | None = Field(
        None, description="JSONL challenge prompts (input, expected, tags) the gate replays")
    challenge_growth: int = Field(
        0, ge=0, description="held-out examples the parent got wrong that a promoted version "
                             "adds to the challenge suite (0: the suite only grows by hand)")
    adapter_per_domain: bool = Field(
        False, description="one adapter lineage per domain: a request trains the lineage of "
                           "its new examples' domain (which must agree); False = one per task")
    domain_transfer: bool = Field(
        True, description="with adapter_per_domain: a new domain's first adapter starts from "
                          "the head of the domain with the closest embedding centroid "
                          "(cosine); False = from scratch")
    slice_keys: list[str] = Field(
        default_factory=list, max_length=8,
        description="keys of an interaction's metadata whose values are slices of the traffic "
                    "(language, customer tier): the worker tracks accuracy per slice and "
                    "names them on training examples, and every gate decision reports them "
                    "beside domain and length")
    domain_start: Literal["nearest", "merge"] = Field(
        "merge", description="with domain_transfer: where a new domain's first adapter "
                             "starts: the average of every other domain's head (a "
                             "Reptile-style meta start; with one other head, that one), or "
                             "the closest domain's head. bench quality --only meta-start, 3 "
                             "seeds, 2026-12-05, 16 labels of a left-out domain: merge 0.657 "
                             "VADER / 0.399 questions, nearest 0.590 / 0.341; 64 labels: "
                             "0.687 / 0.637 against 0.689 / 0.663")
    challenge_error_cap: int = Field(
        200, ge=0, description="most probes from corrected interactions (real errors) the "
                               "challenge suite holds; once reached none are added (0: none)")
    teacher: str | None = Field(
        None, min_length=1,
        description="knowledge distillation: a model version id from the registry (an adapter "
                    "over the same labels, any base), else a hub name or local path of a "
                    "fine-tuned sequence-classification model; None = no teacher")
    distill_temperature: float = Field(
        2.0, gt=0.0, le=100.0,
        description="softmax temperature T of the teacher's and student's outputs (the "
                    "soft-target term is scaled by T^2)")
    distill_weight: float = Field(
        0.5, ge=0.0, le=1.0,
        description="share of the soft-target loss: weight * T^2 * KL + (1 - weight) * "
                    "cross-entropy on the labels (0: labels only, 1: teacher only)")
    teacher_tolerance: float | None = Field(
        None, ge=0.0, le=1.0,
        description="gate: the student's held-out score must reach the teacher's minus this "
                    "(None: the teacher's score is recorded, not required)")
    synthetic_teacher: str | None = Field(
        None, min_length=1,
        description="a second label check of model-written variants (learner.synthetic_share): "
                    "a model version id from the registry or a fine-tuned "
                    "sequence-classification model over the task's labels, resolved like "
                    "teacher; a variant is kept only when it also gives the label asked for "
                    "(None: the current model's check alone)")
    synthetic_probes: bool = Field(
        False,
        description="also write variants of the challenge probes the current model fails; "
                    "the current model's label is no check of those, so it needs a "
                    "synthetic_teacher, and the gate's challenge check leaves out the probes "
                    "whose variants trained (a regression check on the others)")

    robustness: tuple[Perturbation, ...] = Field(
        (), description="perturbations of the gate's held-out texts asked of parent and "
                        "candidate (typo, char_swap, case, punctuation, word_swap, negation, "
                        "and paraphrase: rewritten by the generation base model); "
                        "the candidate's robust accuracy may fall at most "
                        "learner.robust_tolerance below its parent's (empty: off)")
    negation_labels: dict[str, str] = Field(
        default_factory=dict,
        description="for the negation perturbation: the label a negated text takes "
                    "(e.g. positive = negative); texts of other labels are not negated")

    @model_validator(mode="after")
    def _check_robustness(self) -> TaskSettings:
        if "negation" in self.robustness:
            if not self.negation_labels:
                raise ValueError("robustness: negation needs negation_labels (which label a "
                                 "negated text takes)")
            if self.kind is not TaskKind.CLASSIFICATION:
                raise ValueError("robustness: negation changes a label, so it is for "
                                 "classification tasks only")
        unknown = set(self.negation_labels) | set(self.negation_labels.values())
        if self.labels and unknown - set(self.labels):
            raise ValueError(f"negation_labels: {sorted(unknown - set(self.labels))} not "
                             f"among the task's labels {list(self.labels)}")
        return self

    @model_validator(mode="after")
    def _check_distillation(self) -> TaskSettings:
        if self.teacher is not None and self.kind is not TaskKind.CLASSIFICATION:
            raise ValueError("teacher: distillation is implemented for classification tasks "
                             "only (token-level distillation of generation is not)")
        if self.teacher_tolerance is not None and self.teacher is None:
            raise ValueError("teacher_tolerance needs a teacher")
        if self.synthetic_teacher is not None and self.kind is not TaskKind.CLASSIFICATION:
            raise ValueError("synthetic_teacher: a teacher's label check is implemented for "
                             "classification tasks only")
        if self.synthetic_probes and self.synthetic_teacher is None:
            raise ValueError("synthetic_probes needs a synthetic_teacher: the current model "
                             "fails those probes, so only a teacher can check their "
                             "variants' labels")
        return self
