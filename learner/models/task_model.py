"""What every task model offers the learner: build, batch, losses, evaluation, answers.

:class:`~driftloop.learner.models.classification.ClassificationTask` and
:class:`~driftloop.learner.models.generation.GenerationTask` are the two implementations;
the update, the gate, distillation, stability and serving call them only through this
protocol, so a third task kind is one new class.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple, Protocol, runtime_checkable

import torch
from torch import nn

from ...schemas.enums import TaskKind
from ...schemas.events import TrainingExample
from .adapters import LoraSpec
from .device import ComputeDevice
from .prompts import PromptTemplate

__all__ = ["Evaluation", "TaskModel", "length_batches", "task_model_for"]


def length_batches(texts: Sequence[str], size: int) -> list[list[int]]:
    """Positions of ``texts`` in batches of ``size``, shortest texts first: each batch pads
    to about its own length. The caller puts each result back at its position.

    >>> length_batches(["a long one", "a", "mid", "longest of all"], 2)
    [[1, 2], [0, 3]]
    """
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    return [order[start:start + size] for start in range(0, len(order), size)]


class Evaluation(NamedTuple):
    """One model on labelled examples, example by example.

    ``scores`` is a bounded proper score per example, in [0, 1], higher is better: for a
    classifier one minus half the Brier score of its probabilities (so a confident wrong
    answer costs more than a hesitant one, and no answer gains by overconfidence); for a
    generator, whether the answer matched. The paired gate compares two versions on them
    (:mod:`driftloop.learner.gate.paired`).

    ``losses`` is each example's loss (its mean is ``loss``) when the task model gives them:
    a parent's results can then be kept per example and reused by the next gate.

    >>> Evaluation([True, False], 0.4, [0.9, 0.3]).accuracy
    0.5
    """

    hits: list[bool]
    loss: float
    scores: list[float]
    losses: list[float] | None = None

    @property
    def accuracy(self) -> float:
        return sum(self.hits) / len(self.hits) if self.hits else 0.0


@runtime_checkable
class TaskModel(Protocol):
    """Batches, loss and evaluation of an adapter for one task kind.

    Attributes
    ----------
    score_name
        The name of :meth:`evaluate`'s score (``accuracy``, ``exact_match``).
    labels
        The label set in head order (classification), empty for generation.
    template
        The prompt template examples are rendered with (generation), None for classification.
    device
        Where batches are placed and under which autocast.

    Examples
    --------
    >>> from driftloop.learner.models.classification import ClassificationTask
    >>> task = ClassificationTask(None, ("negative", "positive"),
    ...                           ComputeDevice(torch.device("cpu")))
    >>> isinstance(task, TaskModel), task.labels, task.template
    (True, ('negative', 'positive'), None)
    """

    score_name: str
    labels: tuple[str, ...]
    template: PromptTemplate | None
    device: ComputeDevice

    def check(self, examples: Sequence[TrainingExample]) -> None:
        """Refuse examples this task cannot learn from (unknown label, too long a target)."""
        ...

    def build(self, base: nn.Module, spec: LoraSpec, parent_dir: Path | None, *,
              dropout: float = 0.1) -> Any:
        """A trainable PEFT model on ``base``: a fresh adapter, or the parent's continued."""
        ...

    def batch(self, examples: Sequence[TrainingExample]) -> dict[str, torch.Tensor]:
        """Tensors of ``examples`` on the device, with their ``weights``."""
        ...

    def example_losses(self, model: Any, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """One loss per example of ``batch`` (the trainer weighs and averages them)."""
        ...

    def evaluate(self, model: Any, examples: Sequence[TrainingExample]) -> tuple[float, float]:
        """``(score, mean loss)`` on labelled examples."""
        ...

    def evaluate_each(self, model: Any, examples: Sequence[TrainingExample]) -> Evaluation:
        """Whether each labelled example is answered right, its proper score (the paired
        gate compares two versions example by example), and the mean loss."""
        ...

    def score_answers(self, model: Any, prompts: Sequence[str],
                      expected: Sequence[str]) -> list[bool]:
        """Whether the answer to each prompt is the expected one."""
        ...


def task_model_for(kind: TaskKind, tokenizer: Any, device: ComputeDevice, *,
                   labels: Sequence[str] = (), template_ref: str | None = None,
                   max_length: int = 128, max_new_tokens: int = 8) -> TaskModel:
    """The task model of ``kind``: a classifier over ``labels``, or a generator under the
    template ``template_ref`` names (the default template when None).

    >>> task_model_for(TaskKind.CLASSIFICATION, None, ComputeDevice(torch.device("cpu")),
    ...                labels=("no", "yes")).labels
    ('no', 'yes')
    """
    from .classification import ClassificationTask
    from .generation import GenerationTask
    from .prompts import get_template

    if kind is TaskKind.CLASSIFICATION:
        return ClassificationTask(tokenizer, labels, device, max_length=max_length)
    return GenerationTask(tokenizer, get_template(template_ref), device, max_length=max_length,
                          max_new_tokens=max_new_tokens)
