"""How a training request's examples are divided: train, early-stop validation, gate holdout.

Whether an example is held out for the gate depends on its input text and the seed only
(:func:`held_out`), not on the request: the worker's replay buffer re-sends old examples, and
an example held out once stays held out in every later request that carries it, so it is
never trained on and the learner can keep it for later gates
(:mod:`driftloop.learner.gate.pool`). The learner, a replay of the request and an outside
checker (a test in a fresh process) agree on the division. New and replayed examples are
held out separately: the gate scores improvement on the new ones and forgetting on the old.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass

from ...schemas.enums import ExampleOrigin
from ...schemas.events import TrainingExample, TrainingRequest

__all__ = ["MIN_VALIDATION", "RequestSplit", "held_out", "split_request"]

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


def held_out(text: str, fraction: float, seed: int = 0) -> bool:
    """Whether an example with this input is held out for the gate, in any request.

    A stable hash of the seed and the text, read as a number in [0, 1), compared with
    ``fraction``: about that share of texts is held out, always the same ones.

    >>> held_out("great film", 0.25) == held_out("great film", 0.25)
    True
    >>> sum(held_out(f"text {i}", 0.25) for i in range(1000))
    256
    """
    return _position(text, seed) < fraction


def _position(text: str, seed: int) -> float:
    digest = hashlib.sha256(f"{seed}\0{text}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0 ** 64


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


def _take_by_content(examples: Sequence[TrainingExample], fraction: float,
                     seed: int) -> tuple[list[TrainingExample], list[TrainingExample]]:
    """``(kept, held)``: every text :func:`held_out` holds out, topped up per target.

    The hash alone gives each label a binomial share of the holdout: on a request of 64
    balanced tweets it held out 10 positive and 3 negative ones, and a head that answers
    "positive" beat every candidate. So each target also gets at least ``round(n * fraction)``
    of its ``n`` examples, the texts nearest the threshold first. Two or more texts always
    give at least one of each side. Texts moved this way are not held out by content: the
    learner never pools them, and withdraws from its pool a held-out text lent to training.
    Duplicates of a text stay on one side; the order is the request's.
    """
    texts = list(dict.fromkeys(e.input for e in examples))
    if len(texts) < 2:
        return list(examples), []
    position = {text: _position(text, seed) for text in texts}
    held = {text for text in texts if position[text] < fraction}
    for target in dict.fromkeys(e.target for e in examples):
        group = list(dict.fromkeys(e.input for e in examples if e.target == target))
        count = sum(1 for e in examples if e.target == target)
        need = round(count * fraction) - sum(1 for e in examples
                                             if e.target == target and e.input in held)
        held.update(sorted((t for t in group if t not in held), key=position.get)[:max(need, 0)])
    if not held:
        held.add(min(texts, key=position.get))
    elif len(held) == len(texts):
        held.discard(max(texts, key=position.get))
    return ([e for e in examples if e.input not in held],
            [e for e in examples if e.input in held])


def _content_rng(examples: Sequence[TrainingExample], seed: int) -> random.Random:
    """A generator seeded by the seed and the examples' texts, not the request's id: the same
    examples draw the same early-stop slice (a replayed or re-sent request trains the same
    adapter), and other examples another, as a fresh draw per request did.

    >>> a = [TrainingExample(input=t, target="x") for t in ("one", "two")]
    >>> _content_rng(a, 0).random() == _content_rng(list(a), 0).random()
    True
    >>> _content_rng(a, 0).random() == _content_rng(a[:1], 0).random()
    False
    """
    digest = hashlib.sha256(f"{seed}\0".encode())
    for example in examples:
        digest.update(example.input.encode())
        digest.update(b"\0")
    return random.Random(int.from_bytes(digest.digest()[:8], "big"))


def split_request(request: TrainingRequest, *, holdout_fraction: float = 0.25,
                  validation_fraction: float = 0.1, seed: int = 0) -> RequestSplit:
    """Divide a request deterministically.

    The gate's holdout is chosen by content (:func:`held_out`) and topped up so that each
    target has at least ``holdout_fraction`` of its new (and of its replayed) examples there
    (``synthetic`` examples, written by a model, only ever train):
    a little more than the fraction, never less. The early-stop slice is drawn from the
    training part by the seed and the examples' texts (the same examples, the same slice,
    whatever the request id).

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
    >>> other = TrainingRequest(id="later", ts=1, task="t", trigger="manual",
    ...                         examples=request.examples[:6])
    >>> {e.input for e in split_request(other).holdout_new} <= {
    ...     e.input for e in parts.holdout_new}  # held out once, held out again
    True
    """
    if not 0 < holdout_fraction < 1:
        raise ValueError(f"holdout_fraction must be in (0, 1), got {holdout_fraction}")
    if not 0 <= validation_fraction < 1:
        raise ValueError(f"validation_fraction must be in [0, 1), got {validation_fraction}")
    new = [e for e in request.examples if e.origin is ExampleOrigin.NEW]
    replay = [e for e in request.examples if e.origin is ExampleOrigin.REPLAY]
    real = [e for e in request.examples if e.origin is not ExampleOrigin.SYNTHETIC]
    rng = _content_rng(real, seed)  # model-written texts change no real example's side
    train_new, holdout_new = _take_by_content(new, holdout_fraction, seed)
    train_replay, holdout_replay = _take_by_content(replay, holdout_fraction, seed)
    train = train_new + train_replay
    validation: list[TrainingExample] = []
    if round(len(train) * validation_fraction) >= MIN_VALIDATION:
        train, validation = _take(train, validation_fraction, rng)
    # Written by a model: trained on, never a held-out or early-stop text.
    train += [e for e in request.examples if e.origin is ExampleOrigin.SYNTHETIC]
    return RequestSplit(tuple(train), tuple(validation), tuple(holdout_new),
                        tuple(holdout_replay))
