"""Prompt stability: does a generation candidate give the same answer under reworded prompts?

Each challenge probe is answered under the candidate's template and under every paraphrase of
its :class:`~driftloop.learner.gate.paraphrases.ParaphraseSet`; a probe is *consistent* when all of
those answers are the same (under a template with choices, the choice read from the answer;
else the normalised answer). The metric ``prompt_stability`` is the share of consistent probes,
recorded on the version beside ``prompt_stability_count`` (probes) and
``prompt_stability_variants`` (wordings, the template's own included); the gate can require a
minimum (``learner.min_prompt_stability``).

Only the newest ``learner.prompt_stability_probes`` probes of the suite are asked (the latest
real errors), and only of the candidate: the minimum is absolute, so the parent's figure would
cost as much again and decide nothing.

Classification has no prompt: its input goes to the encoder as is, so there is nothing to
paraphrase and no metric. (Robustness of a classifier to perturbed *inputs* is a different
property; this check does not claim to measure it.)
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from ..models.prompts import PromptTemplate, normalize_answer
from .challenges import ChallengeSuite
from .paraphrases import ParaphraseSet, paraphrases_for

if TYPE_CHECKING:  # the task models load torch; this module stays light
    from ..models.generation import GenerationTask
    from ..models.task_model import TaskModel

__all__ = ["StabilityReport", "answer_of", "check_stability", "consistency", "prompt_record",
           "stability_metrics"]

log = logging.getLogger(__name__)


def answer_of(template: PromptTemplate, text: str) -> str:
    """What an answer says, in the form answers are compared in.

    >>> from driftloop.learner.models.prompts import get_template
    >>> answer_of(get_template("sentiment"), "Positive, clearly.")
    'positive'
    >>> answer_of(get_template("qa"), " Paris. ")
    'paris'
    >>> answer_of(get_template("sentiment"), "I cannot tell")  # no choice named: the text
    'i cannot tell'
    """
    if template.choices:
        choice = template.read_answer(text)
        if choice is not None:
            return choice
    return normalize_answer(text)


def consistency(answers: Sequence[Sequence[str]]) -> float:
    """Share of probes answered the same under every wording; ``answers[wording][probe]``.

    >>> consistency([["positive", "negative", "positive"],
    ...              ["positive", "positive", "positive"]])
    0.6666666666666666
    >>> consistency([[], []])
    Traceback (most recent call last):
    ...
    ValueError: no probes to compare
    """
    if len(answers) < 2:
        raise ValueError(f"need the answers of at least two wordings, got {len(answers)}")
    probes = {len(row) for row in answers}
    if len(probes) != 1:
        raise ValueError(f"every wording must answer every probe, got {sorted(probes)} answers")
    (count,) = probes
    if count == 0:
        raise ValueError("no probes to compare")
    same = sum(1 for probe in zip(*answers, strict=True) if len(set(probe)) == 1)
    return same / count


@dataclass(frozen=True, slots=True)
class StabilityReport:
    """The outcome of one stability check.

    Examples
    --------
    >>> report = StabilityReport(0.5, 2, 4, "sentiment@1/paraphrases@1", ("meh",))
    >>> report.metrics()
    {'prompt_stability': 0.5, 'prompt_stability_count': 2.0, 'prompt_stability_variants': 4.0}
    """

    consistency: float
    probes: int
    wordings: int
    paraphrases_ref: str
    unstable: tuple[str, ...] = ()

    def metrics(self) -> dict[str, float]:
        return {"prompt_stability": self.consistency,
                "prompt_stability_count": float(self.probes),
                "prompt_stability_variants": float(self.wordings)}


def check_stability(task_model: GenerationTask, model: Any, probes: Sequence[str],
                    paraphrases: ParaphraseSet,
                    known: Mapping[str, str] | None = None) -> StabilityReport:
    """Answer ``probes`` under every wording of ``paraphrases`` with a generation task model.

    ``task_model`` is a :class:`~driftloop.learner.models.generation.GenerationTask`; it is copied
    per wording, never changed. ``known``: the model's answers (as generated) under its own
    template, by probe, when it has given them already (the gate's challenge scoring): that
    wording is not asked again.
    """
    if not probes:
        raise ValueError("no probes to check")
    wordings = paraphrases.templates()
    answers: list[list[str]] = []
    for wording in wordings:
        if (known is not None and all(text in known for text in probes)
                and _same_wording(wording, task_model.template)):
            said = [known[text] for text in probes]
        else:
            asker = copy.copy(task_model)
            asker.template = wording
            said = asker.generate(model, probes)
        answers.append([answer_of(wording, text) for text in said])
    unstable = tuple(text for text, said in zip(probes, zip(*answers, strict=True), strict=True)
                     if len(set(said)) > 1)
    return StabilityReport(consistency(answers), len(probes), len(wordings), paraphrases.ref,
                           unstable)


def _same_wording(one: PromptTemplate, other: PromptTemplate | None) -> bool:
    """Whether two templates put the same words around an input (the same prompt)."""
    return other is not None and one.user_message("{x}") == other.user_message("{x}")


def stability_metrics(task_model: TaskModel, model: Any, suite: ChallengeSuite,
                      max_probes: int, known: Mapping[str, str] | None = None
                      ) -> dict[str, float]:
    """The update's hook: the metrics of :func:`check_stability`, or ``{}`` when it does not
    apply (classification, a template without paraphrases, no probes, or switched off).
    ``known``: answers already generated under the task's own template, by input."""
    template = task_model.template
    if template is None or max_probes <= 0 or not len(suite):
        return {}
    paraphrases = paraphrases_for(template)
    if paraphrases is None:
        log.info("template %s has no paraphrases: prompt stability not measured", template.ref)
        return {}
    probes = [case.input for case in suite.cases[-max_probes:]]
    report = check_stability(cast("GenerationTask", task_model), model, probes, paraphrases,
                             known)
    log.info("prompt stability under %s: %.3f of %d probe(s); unstable: %s", report.paraphrases_ref,
             report.consistency, report.probes, list(report.unstable))
    return report.metrics()


def prompt_record(task_model: TaskModel) -> dict[str, Any]:
    """What a model version's metadata records of its prompt (``None``: classification).

    >>> import torch
    >>> from driftloop.learner.models import ClassificationTask, ComputeDevice, GenerationTask
    >>> from driftloop.learner.models.prompts import get_template
    >>> cpu = ComputeDevice(torch.device("cpu"))
    >>> record = prompt_record(GenerationTask(None, get_template("sentiment@1"), cpu))
    >>> record["prompt_template"]["ref"], record["prompt_template"]["paraphrases"]
    ('sentiment@1', 'sentiment@1/paraphrases@1')
    >>> len(record["prompt_template"]["sha256"])
    64
    >>> prompt_record(ClassificationTask(None, ("negative", "positive"), cpu))
    {'prompt_template': None}
    """
    template = task_model.template
    if template is None:
        return {"prompt_template": None}
    paraphrases = paraphrases_for(template)
    return {"prompt_template": {"ref": template.ref, "sha256": template.sha256,
                                "paraphrases": paraphrases.ref if paraphrases else None}}
