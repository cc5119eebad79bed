"""How a training request's examples are divided: train, early-stop validation, gate holdout.

The division depends only on the request id and the seed, so the learner, a replay of the
request and an outside checker (a test in a fresh process) agree on which examples were held
out. New and replayed examples are held out separately: the gate scores improvement on the
new ones and forgetting on the old ones.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass

from ..schemas.enums import ExampleOrigin
from ..schemas.events import TrainingExample, TrainingRequest

__all__ = ["MIN_VALIDATION", "RequestSplit", "split_request"]

# An early-stop slice smaller than this chooses weights by noise: on the demo's requests
# (~6 validation examples) it often judged the parent's own weights best, so the "candidate"
# was the parent and the gate saw a tie. Without a slice, training runs its step budget.
MIN_VALIDATION = 16


@dataclass(frozen=True, slots=True)
class RequestSplit:
    """The four disjoint parts of a request's examples."""

    train: tuple[TrainingExample, ...]
    validation: tuple[TrainingExample, ...]
    holdout_new: tuple[TrainingExample, ...]
    holdout_replay: tuple[TrainingExample, ...]


def _take(examples: Sequence[TrainingExample], fraction: float,
          rng: random.Random) -> tuple[list[TrainingExample], list[TrainingExample]]:
    """``(kept, held)``: about ``fraction`` held out, at least one when there are two or more."""
    order = list(examples)
    rng.shuffle(order)
    n_held = round(len(order) * fraction)
    if len(order) >= 2:
        n_held = min(max(n_held, 1), len(order) - 1)
    else:
        n_held = 0
    return order[n_held:], order[:n_held]


def split_request(request: TrainingRequest, *, holdout_fraction: float = 0.25,
                  validation_fraction: float = 0.1, seed: int = 0) -> RequestSplit:
    """Divide a request deterministically.

    Examples
    --------
    >>> request = TrainingRequest(id="r", ts=0, task="t", trigger="manual", examples=[
    ...     {"input": str(i), "target": "a", "origin": "new" if i < 8 else "replay"}
    ...     for i in range(12)])
    >>> parts = split_request(request, holdout_fraction=0.25)
    >>> len(parts.train), len(parts.holdout_new), len(parts.holdout_replay)
    (9, 2, 1)
    >>> split_request(request) == parts
    True
    """
    if not 0 < holdout_fraction < 1:
        raise ValueError(f"holdout_fraction must be in (0, 1), got {holdout_fraction}")
    if not 0 <= validation_fraction < 1:
        raise ValueError(f"validation_fraction must be in [0, 1), got {validation_fraction}")
    key = hashlib.sha256(f"{seed}\0{request.id}".encode()).digest()
    rng = random.Random(int.from_bytes(key[:8], "big"))
    new = [e for e in request.examples if e.origin is ExampleOrigin.NEW]
    replay = [e for e in request.examples if e.origin is ExampleOrigin.REPLAY]
    train_new, holdout_new = _take(new, holdout_fraction, rng)
    train_replay, holdout_replay = _take(replay, holdout_fraction, rng)
    train = train_new + train_replay
    validation: list[TrainingExample] = []
    if round(len(train) * validation_fraction) >= MIN_VALIDATION:
        train, validation = _take(train, validation_fraction, rng)
    return RequestSplit(tuple(train), tuple(validation), tuple(holdout_new),
                        tuple(holdout_replay))
