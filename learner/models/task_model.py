"""What every task model offers the learner: build, batch, losses, evaluation, answers.

:class:`~driftloop.learner.models.classification.ClassificationTask` and
:class:`~driftloop.learner.models.generation.GenerationTask` are the two implementations;
the update, the gate, distillation, stability and serving call them only through this
protocol, so a third task kind is one new class.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn

from ...schemas.events import TrainingExample
from .adapters import LoraSpec
from .device import ComputeDevice
from .prompts import PromptTemplate

__all__ = ["TaskModel"]


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

    def score_answers(self, model: Any, prompts: Sequence[str],
                      expected: Sequence[str]) -> list[bool]:
        """Whether the answer to each prompt is the expected one."""
        ...
