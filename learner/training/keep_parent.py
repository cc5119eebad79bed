"""Keeping what the parent knew: its own answers as soft targets on the replayed examples.

A continued update trains on a request's new examples and a share of replayed old ones. The
replayed examples carry their (often noisy, user-given) labels; the parent's answers on them
are what the served version actually did, and what the gate's older slice measures against.
With ``learner.keep_parent`` above 0, each replayed training example's loss mixes its label
with the parent's softened output (Learning without Forgetting, Li & Hoiem, 2016, restricted
to the replay here: the new examples learn from their labels alone)::

    replayed: keep * T**2 * KL(softmax(parent / T) || softmax(candidate / T))
              + (1 - keep) * cross_entropy(candidate, label)
    new:      cross_entropy(candidate, label)

The parent's logits are taken once, before training, from the trainable model itself (a
continued update starts from the parent's weights; under ``learner.continue_rejected``, from
the rejected candidate it continues, whose answers it then keeps), in eval mode.
Classification tasks only; a first version has no parent, and a task with a distillation
teacher learns from the teacher instead (:mod:`.distill`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ...schemas.enums import ExampleOrigin
from ...schemas.events import TrainingExample
from ..models.classification import ClassificationTask
from ..models.task_model import TaskModel
from .distill import DistillingTask, distillation_loss

__all__ = ["KEEP_TEMPERATURE", "KeepingParent", "parent_logits"]

# Softening of both sides' outputs (Hinton et al.'s usual 2): the parent's less likely
# labels carry some of what it knew.
KEEP_TEMPERATURE = 2.0


def parent_logits(task: ClassificationTask, model: Any,
                  examples: Sequence[TrainingExample]) -> dict[str, torch.Tensor]:
    """The model's float32 logits of each replayed example's input
    (:meth:`ClassificationTask.logits`), by input text; taken before training, while the
    model still is the parent."""
    texts = list(dict.fromkeys(e.input for e in examples
                               if e.origin == ExampleOrigin.REPLAY))
    return dict(zip(texts, task.logits(model, texts), strict=True))


class KeepingParent(DistillingTask):
    """A classification task whose replayed examples also learn the parent's soft answers
    (a :class:`~driftloop.learner.training.distill.DistillingTask` whose teacher is the
    parent, weighed ``keep`` on the replayed examples it answered and 0 on the others).

    Examples
    --------
    >>> from driftloop.learner.models.device import ComputeDevice
    >>> class Student:  # a toy: every text's logits are 0, so its answer is a coin flip
    ...     labels, device = ("neg", "pos"), ComputeDevice(torch.device("cpu"))
    ...     def batch(self, examples):
    ...         n = len(examples)
    ...         return {"input_ids": torch.zeros(n, 1), "attention_mask": torch.ones(n, 1),
    ...                 "labels": torch.tensor([1] * n)}
    >>> model = lambda input_ids, attention_mask: torch.zeros(len(input_ids), 2)
    >>> task = KeepingParent(Student(), {"old": torch.tensor([3.0, -3.0])}, keep=1.0)
    >>> examples = [TrainingExample(input="old", target="pos", origin="replay"),
    ...             TrainingExample(input="new", target="pos")]
    >>> losses = task.example_losses(model, task.batch(examples))
    >>> round(losses[0].item(), 4), round(losses[1].item(), 4)  # the parent's view; the label
    (2.0091, 0.6931)
    >>> task.labels, task.keep
    (('neg', 'pos'), 1.0)
    """

    def __init__(self, student: TaskModel, parent: dict[str, torch.Tensor], *,
                 keep: float, temperature: float = KEEP_TEMPERATURE) -> None:
        super().__init__(student, parent, temperature=temperature, weight=keep)

    @property
    def parent(self) -> dict[str, torch.Tensor]:
        """The parent's logits, by input text of each replayed example."""
        return self.soft_targets

    @property
    def keep(self) -> float:
        return self.weight

    def batch(self, examples: Sequence[TrainingExample]) -> dict[str, torch.Tensor]:
        batch = self.student.batch(examples)
        width = len(self.student.labels)
        kept = [e.origin == ExampleOrigin.REPLAY and e.input in self.parent for e in examples]
        device = batch["labels"].device
        batch["teacher_logits"] = torch.stack(  # rows of the parent's device: the model's
            [self.parent[e.input].to(device) if k else torch.zeros(width, device=device)
             for e, k in zip(examples, kept, strict=True)])
        batch["keep"] = torch.tensor([self.keep if k else 0.0 for k in kept], device=device)
        return batch

    def example_losses(self, model: Any, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        with self.student.device.autocast():
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        logits = logits.float()
        hard = nn.functional.cross_entropy(logits, batch["labels"], reduction="none")
        soft = distillation_loss(logits, batch["teacher_logits"], batch["labels"],
                                 temperature=self.temperature, weight=1.0)
        keep = batch["keep"]
        return keep * soft + (1.0 - keep) * hard
