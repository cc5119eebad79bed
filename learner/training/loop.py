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
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import torch

from ...schemas.events import TrainingExample
from ...schemas.events.training import easy_first
from ..errors import TrainingRequestError
from ..models.device import ComputeDevice

if TYPE_CHECKING:
    from .data_parallel import Shard

__all__ = ["TrainConfig", "TrainReport", "TrainableTask", "seed_everything", "train_adapter",
           "trainable_parameters"]


class TrainableTask(Protocol):
    """What the optimizer loop needs of a task model (a :class:`TaskModel` has more)."""

    device: ComputeDevice

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
    >>> TrainConfig(batch_size=8, min_steps=32).steps_for(64)  # four passes over 64
    32
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
    min_steps: int = 0
    """Fewest steps of an update (more passes over a small request; ``max_steps`` still
    caps it); early stop neither ends training nor keeps weights before them."""
    eval_every: int = 4
    patience: int = 3
    l2_to_parent: float = 0.0
    max_grad_norm: float = 1.0
    interpolation: float = 1.0
    """Share of the trained change kept: ``start + interpolation * (trained - start)``."""
    interpolation_choices: tuple[float, ...] = ()
    """Shares of the trained change to choose from on the validation slice (the one with
    the lowest validation loss; the whole change on a tie); ``interpolation`` is then
    unused."""
    warmup_steps: int = 0
    """Steps over which the learning rate rises linearly to ``learning_rate``."""
    averaging: float = 0.0
    """Decay of an exponential moving average of the trained weights (0: off). With it, the
    average is what early stop measures and what the update returns (Polyak averaging)."""
    curriculum: bool = False
    """The first epoch goes easy to hard (each example's ``difficulty``, unknown in the
    middle); later epochs, and every epoch without it, in a seeded random order."""
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")
        for name in ("batch_size", "epochs", "max_steps", "eval_every", "patience"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("weight_decay", "l2_to_parent", "max_grad_norm", "warmup_steps",
                     "min_steps"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not 0 < self.interpolation <= 1:
            raise ValueError(f"interpolation must be in (0, 1], got {self.interpolation}")
        if any(not 0 < share <= 1 for share in self.interpolation_choices):
            raise ValueError(f"interpolation_choices must be in (0, 1], got "
                             f"{self.interpolation_choices}")
        if not 0 <= self.averaging < 1:
            raise ValueError(f"averaging must be in [0, 1), got {self.averaging}")

    def steps_for(self, n_examples: int) -> int:
        """Optimizer steps for ``n_examples``: the epochs, at least ``min_steps``, capped by
        the step budget."""
        epochs = self.epochs * math.ceil(n_examples / self.batch_size)
        return min(self.max_steps, max(epochs, self.min_steps))


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
    processes: int = 1
    """Processes the update was spread over (``learner.data_parallel``)."""
    interpolation: float = 1.0
    """Share of the trained change the update kept."""

    @property
    def examples_per_second(self) -> float:
        return self.examples_seen / self.seconds if self.seconds > 0 else 0.0


def seed_everything(seed: int) -> torch.Generator:
    """Seed torch's global RNG (dropout, initialisation) and return a generator for order."""
    torch.manual_seed(seed)
    generator = torch.Generator()
    generator.manual_seed(seed)
    return generator


def trainable_parameters(model: Any) -> list[tuple[str, torch.nn.Parameter]]:
    """The weights an update trains (LoRA layers, saved modules such as a head), by name."""
    return [(name, p) for name, p in model.named_parameters() if p.requires_grad]


@torch.no_grad()
def _validation_loss(task: TrainableTask, model: Any, examples: Sequence[TrainingExample],
                     batch_size: int, shard: Shard | None = None) -> float:
    """Mean loss over ``examples``; with a shard, this process scores its slice and the
    sums of all processes are added."""
    model.eval()
    mine = shard.part(examples) if shard is not None else examples
    total = 0.0
    for start in range(0, len(mine), batch_size):
        batch = task.batch(mine[start:start + batch_size])
        total += task.example_losses(model, batch).sum().item()
    if shard is not None:
        total = shard.sum(torch.tensor([total], dtype=torch.float64,
                                       device=task.device.device)).item()
    return total / len(examples)


def _picks(n_examples: int, config: TrainConfig, generator: torch.Generator,
           first: Sequence[int] | None = None) -> Iterator[list[int]]:
    """The example indices of each step: epochs of seeded permutations, cut into batches;
    the first epoch in the order ``first`` when given (a curriculum).

    >>> list(_picks(5, TrainConfig(batch_size=2, epochs=2), torch.Generator(), [4, 3, 2, 1, 0]))[:3]
    [[4, 3], [2, 1], [0]]
    """
    order: list[int] = list(first) if first is not None else []
    for _ in range(config.steps_for(n_examples)):
        if not order:
            order = torch.randperm(n_examples, generator=generator).tolist()
        picked, order = order[:config.batch_size], order[config.batch_size:]
        yield picked


class _Optimizer:
    """One optimizer step: weighted loss, the L2 pull to the parent, clipping, loss scaling."""

    def __init__(self, task: TrainableTask, params: list[tuple[str, torch.nn.Parameter]],
                 config: TrainConfig, shard: Shard | None = None) -> None:
        self.task, self.params, self.config, self.shard = task, params, config, shard
        self.anchors = ({name: p.detach().clone() for name, p in params}
                        if config.l2_to_parent > 0 else {})
        self.optimizer = torch.optim.AdamW([p for _, p in params], lr=config.learning_rate,
                                           weight_decay=config.weight_decay)
        # A continued update starts with a fresh optimizer: Adam's first steps move every
        # weight by about the learning rate whatever its gradient, which a trained adapter
        # feels. A linear warm-up lets the moment estimates settle first.
        warmup = config.warmup_steps
        self.schedule = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda step: min(1.0, (step + 1) / (warmup + 1)))
        # fp16 autocast (CUDA without bf16) underflows small gradients unless the loss is scaled.
        self.scaler = (torch.amp.GradScaler(task.device.type)
                       if task.device.autocast_dtype is torch.float16 else None)

    def step(self, model: Any, examples: Sequence[TrainingExample]) -> float:
        model.train()
        loss, value = self._loss(model, examples)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
        else:
            loss.backward()
        if self.shard is not None:  # every process takes the step of the whole batch
            self.shard.sum_gradients([p for _, p in self.params])
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)  # clip the true gradients, not the scaled ones
        if self.config.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_([p for _, p in self.params], self.config.max_grad_norm)
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.schedule.step()
        self.optimizer.zero_grad(set_to_none=True)
        return value

    def _loss(self, model: Any, examples: Sequence[TrainingExample]) -> tuple[Any, float]:
        """The step's loss to differentiate (this process's share of it under a shard) and
        the whole batch's loss as a number."""
        shard = self.shard
        mine = shard.part(examples) if shard is not None else examples
        if mine:
            batch = self.task.batch(mine)
            losses = self.task.example_losses(model, batch)
            weights = batch["weights"]
            weighted, weight = (losses * weights).sum(), weights.sum()
        else:  # a batch smaller than the processes: this one adds nothing
            weighted = torch.zeros((), device=self.task.device.device, requires_grad=True)
            weight = torch.zeros((), device=self.task.device.device)
        if shard is None:
            loss = whole = weighted / weight
        else:  # sum(w * l) / sum(w) over the whole batch, split over the processes
            totals = shard.sum(torch.stack([weighted.detach(), weight.detach()]).double())
            loss, whole = weighted / totals[1].to(weighted.dtype), totals[0] / totals[1]
        value = float(whole.detach())
        if self.anchors:
            pull = self.config.l2_to_parent * sum(
                ((p - self.anchors[name]) ** 2).sum() for name, p in self.params)
            value += float(pull.detach())
            if shard is None or shard.rank == 0:  # counted once when the gradients are summed
                loss = loss + pull
        return loss, value


class _EarlyStop:
    """Validation loss every ``eval_every`` steps; the best trained weights are kept.

    The starting weights are measured (the history's step 0) but are not a candidate: an
    update that restored them ended identical to its parent, and the gate then compared a
    version with itself (two of 45 updates of the live bench, on an 18-example validation
    slice). Measured over ten seeds of the live loop on VADER (2026-12-03): seeds 0-4 final
    held-out on shifted domains 0.759 against 0.742 with the start as a candidate, seeds 5-9
    identical (no update there ended on its start); questions identical.
    """

    def __init__(self, task: TrainableTask, model: Any,
                 params: list[tuple[str, torch.nn.Parameter]],
                 validation: Sequence[TrainingExample], config: TrainConfig,
                 report: TrainReport, shard: Shard | None = None) -> None:
        self.task, self.model, self.params, self.shard = task, model, params, shard
        self.validation, self.config, self.report = validation, config, report
        self.best: dict[str, torch.Tensor] | None = None
        self.mean: dict[str, torch.Tensor] | None = None
        self.bad_checks = 0
        if validation:
            report.history.append((0, self._loss()))
            report.best_validation_loss = math.inf

    def _loss(self) -> float:
        return _validation_loss(self.task, self.model, self.validation, self.config.batch_size,
                                self.shard)

    def _snapshot(self) -> dict[str, torch.Tensor]:
        return {name: p.detach().clone() for name, p in self.params}

    def average(self) -> None:
        """Fold the weights after a step into the moving average (``config.averaging``)."""
        decay = self.config.averaging
        if not decay:
            return
        with torch.no_grad():
            if self.mean is None:  # the first trained weights, not the start: no pull back
                self.mean = self._snapshot()
                return
            for name, p in self.params:
                self.mean[name].mul_(decay).add_(p.detach(), alpha=1.0 - decay)

    def _measured(self) -> tuple[float, dict[str, torch.Tensor] | None]:
        """The validation loss of what the update would return now: the average when there
        is one (swapped in for the measurement), else the current weights."""
        if self.mean is None:
            return self._loss(), None
        current = self._snapshot()
        self._load(self.mean)
        try:
            return self._loss(), {name: t.clone() for name, t in self.mean.items()}
        finally:
            self._load(current)

    def _load(self, weights: dict[str, torch.Tensor]) -> None:
        with torch.no_grad():
            for name, p in self.params:
                p.copy_(weights[name])

    def should_stop(self, total_steps: int) -> bool:
        """Check after a step (when due); True once ``patience`` checks did not improve."""
        steps = self.report.steps
        if not self.validation or (steps % self.config.eval_every and steps != total_steps):
            return False
        if steps < self.config.min_steps:  # neither a stop nor a candidate before the floor
            return False
        current, averaged = self._measured()
        self.report.history.append((steps, current))
        assert self.report.best_validation_loss is not None
        if current < self.report.best_validation_loss:
            self.report.best_validation_loss = current
            self.best = averaged if averaged is not None else self._snapshot()
            self.bad_checks = 0
            return False
        self.bad_checks += 1
        return self.bad_checks >= self.config.patience

    def restore_best(self) -> None:
        """Load the best weights measured; without a validation slice, the average (if
        any) of the whole run."""
        if self.best is not None:
            self._load(self.best)
        elif self.mean is not None:
            self._load(self.mean)


def _chosen_share(early_stop: _EarlyStop, start: dict[str, torch.Tensor],
                  config: TrainConfig) -> float:
    """The share of the trained change (among ``config.interpolation_choices`` and the
    whole) with the lowest validation loss; the whole change without a validation slice.
    The weights are the trained ones again on return."""
    if not early_stop.validation:
        return 1.0
    trained = early_stop._snapshot()
    best_share, best_loss = 1.0, early_stop._loss()
    for share in sorted(set(config.interpolation_choices) - {1.0}, reverse=True):
        early_stop._load({name: start[name] + share * (trained[name] - start[name])
                          for name in trained})
        loss = early_stop._loss()
        if loss < best_loss:
            best_share, best_loss = share, loss
    early_stop._load(trained)
    return best_share


def train_adapter(task: TrainableTask, model: Any, train: Sequence[TrainingExample],
                  validation: Sequence[TrainingExample], config: TrainConfig, *,
                  shard: Shard | None = None) -> TrainReport:
    """Train ``model``'s trainable weights in place on ``train``; return what happened.

    Per-example weights scale each example's loss. With ``validation`` examples, the loss on
    them is checked every ``eval_every`` steps; after ``patience`` checks without
    improvement training stops, and the best weights seen are restored. With
    ``interpolation`` below 1 the result keeps only that share of the change (WiSE-FT).
    With a ``shard`` this is one process of a data-parallel update
    (:mod:`.data_parallel`): it trains on its slice of every batch and takes the step of
    the whole batch.
    """
    if not train:
        raise TrainingRequestError("no training examples left after the held-out split")
    params = trainable_parameters(model)
    if not params:
        raise TrainingRequestError("the model has no trainable parameters")
    generator = seed_everything(config.seed)
    start = ({name: p.detach().clone() for name, p in params}
             if config.interpolation < 1 or config.interpolation_choices else {})
    optimizer = _Optimizer(task, params, config, shard)
    report = TrainReport()
    started = time.perf_counter()
    total_steps = config.steps_for(len(train))
    early_stop = _EarlyStop(task, model, params, validation, config, report, shard)
    running = 0.0
    for picked in _picks(len(train), config, generator,
                         easy_first(train) if config.curriculum else None):
        loss = optimizer.step(model, [train[i] for i in picked])
        report.steps += 1
        report.examples_seen += len(picked)
        early_stop.average()
        running = loss if report.steps == 1 else 0.9 * running + 0.1 * loss
        if early_stop.should_stop(total_steps):
            report.stopped = "early_stop"
            break
    early_stop.restore_best()
    if start:  # WiSE-FT: part of the way from where the update started
        share = (_chosen_share(early_stop, start, config) if config.interpolation_choices
                 else config.interpolation)
        report.interpolation = share
        with torch.no_grad():
            for name, p in params:
                p.copy_(start[name] + share * (p - start[name]))
    report.train_loss = running
    report.seconds = time.perf_counter() - started
    model.eval()
    return report
