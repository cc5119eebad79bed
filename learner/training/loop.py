"""One incremental update: a few optimizer steps on a request, continuing the parent adapter.

Regularisation against forgetting and over-fitting a small request: LoRA dropout, weight
decay, a step budget, early stop on a held-out validation slice of the request (the best
weights seen are kept), and an optional L2 pull of the trainable weights toward the
parent's. Every random choice comes from one seed, so replaying a request on the same
hardware yields the same adapter.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch

from ...schemas.events import TrainingExample
from ..errors import TrainingRequestError

__all__ = ["TrainConfig", "TrainReport", "TrainableTask", "seed_everything", "train_adapter"]


class TrainableTask(Protocol):
    def batch(self, examples: Sequence[TrainingExample]) -> dict[str, torch.Tensor]: ...

    def example_losses(self, model: Any, batch: dict[str, torch.Tensor]) -> torch.Tensor: ...


@dataclass(frozen=True, slots=True)
class TrainConfig:
    """Optimizer and stopping rules of one update.

    Examples
    --------
    >>> TrainConfig(max_steps=4).steps_for(100)
    4
    >>> TrainConfig(batch_size=8, epochs=2).steps_for(20)
    6
    >>> TrainConfig(learning_rate=0)
    Traceback (most recent call last):
    ...
    ValueError: learning_rate must be > 0, got 0
    """

    learning_rate: float = 2e-3
    weight_decay: float = 0.01
    batch_size: int = 8
    epochs: int = 1
    max_steps: int = 200
    eval_every: int = 4
    patience: int = 3
    l2_to_parent: float = 0.0
    max_grad_norm: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")
        for name in ("batch_size", "epochs", "max_steps", "eval_every", "patience"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("weight_decay", "l2_to_parent", "max_grad_norm"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")

    def steps_for(self, n_examples: int) -> int:
        """Optimizer steps for ``n_examples``: the epochs, capped by the step budget."""
        return min(self.max_steps, self.epochs * math.ceil(n_examples / self.batch_size))


@dataclass(slots=True)
class TrainReport:
    """What the update did: steps taken, why it stopped, losses, time."""

    steps: int = 0
    examples_seen: int = 0
    stopped: str = "budget"
    best_validation_loss: float | None = None
    train_loss: float | None = None
    seconds: float = 0.0
    history: list[tuple[int, float]] = field(default_factory=list)

    @property
    def examples_per_second(self) -> float:
        return self.examples_seen / self.seconds if self.seconds > 0 else 0.0


def seed_everything(seed: int) -> torch.Generator:
    """Seed torch's global RNG (dropout, initialisation) and return a generator for order."""
    torch.manual_seed(seed)
    generator = torch.Generator()
    generator.manual_seed(seed)
    return generator


def _trainable(model: Any) -> list[tuple[str, torch.nn.Parameter]]:
    return [(name, p) for name, p in model.named_parameters() if p.requires_grad]


@torch.no_grad()
def _validation_loss(task: TrainableTask, model: Any,
                     examples: Sequence[TrainingExample], batch_size: int) -> float:
    model.eval()
    total = 0.0
    for start in range(0, len(examples), batch_size):
        batch = task.batch(examples[start:start + batch_size])
        total += task.example_losses(model, batch).sum().item()
    return total / len(examples)


def train_adapter(task: TrainableTask, model: Any, train: Sequence[TrainingExample],
                  validation: Sequence[TrainingExample], config: TrainConfig) -> TrainReport:
    """Train ``model``'s trainable weights in place on ``train``; return what happened.

    Per-example weights scale each example's loss. With ``validation`` examples, the loss on
    them is checked every ``eval_every`` steps; after ``patience`` checks without
    improvement training stops, and the best weights seen are restored.
    """
    if not train:
        raise TrainingRequestError("no training examples left after the held-out split")
    params = _trainable(model)
    if not params:
        raise TrainingRequestError("the model has no trainable parameters")
    generator = seed_everything(config.seed)
    anchors = ({name: p.detach().clone() for name, p in params}
               if config.l2_to_parent > 0 else {})
    optimizer = torch.optim.AdamW([p for _, p in params], lr=config.learning_rate,
                                  weight_decay=config.weight_decay)
    report = TrainReport()
    best: dict[str, torch.Tensor] | None = None
    bad_checks = 0
    # fp16 autocast (CUDA without bf16) underflows small gradients unless the loss is scaled.
    device = getattr(task, "device", None)
    scaler = (torch.amp.GradScaler(device.type)
              if device is not None and getattr(device, "autocast_dtype", None) is torch.float16
              else None)
    started = time.perf_counter()
    total_steps = config.steps_for(len(train))
    if validation:
        report.best_validation_loss = _validation_loss(task, model, validation, config.batch_size)
        report.history.append((0, report.best_validation_loss))
        # The starting weights count as seen: if no step helps, the update ends where it began.
        best = {name: p.detach().clone() for name, p in params}
    order: list[int] = []
    running = 0.0
    while report.steps < total_steps:
        if not order:
            order = torch.randperm(len(train), generator=generator).tolist()
        picked, order = order[:config.batch_size], order[config.batch_size:]
        model.train()
        batch = task.batch([train[i] for i in picked])
        losses = task.example_losses(model, batch)
        weights = batch["weights"]
        loss = (losses * weights).sum() / weights.sum()
        if anchors:
            pull = sum(((p - anchors[name]) ** 2).sum() for name, p in params)
            loss = loss + config.l2_to_parent * pull
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones
        else:
            loss.backward()
        if config.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_([p for _, p in params], config.max_grad_norm)
        if scaler is not None:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        report.steps += 1
        report.examples_seen += len(picked)
        running = loss.item() if report.steps == 1 else 0.9 * running + 0.1 * loss.item()
        if validation and (report.steps % config.eval_every == 0 or report.steps == total_steps):
            current = _validation_loss(task, model, validation, config.batch_size)
            report.history.append((report.steps, current))
            assert report.best_validation_loss is not None
            if current < report.best_validation_loss:
                report.best_validation_loss = current
                best = {name: p.detach().clone() for name, p in params}
                bad_checks = 0
            else:
                bad_checks += 1
                if bad_checks >= config.patience:
                    report.stopped = "early_stop"
                    break
    if best is not None:
        with torch.no_grad():
            for name, p in params:
                p.copy_(best[name])
    report.train_loss = running
    report.seconds = time.perf_counter() - started
    model.eval()
    return report
