"""Helpers of the gate pool tests: texts the split holds out, examples, pools."""

from __future__ import annotations

from driftloop.learner.gate.pool import GatePool
from driftloop.learner.gate.split import held_out
from driftloop.schemas.events import TrainingExample

FRACTION = 0.25


def held_texts(n: int, prefix: str = "text") -> list[str]:
    """``n`` texts that the split holds out under FRACTION and seed 0."""
    texts = (f"{prefix} {i}" for i in range(100_000))
    return [t for t in texts if held_out(t, FRACTION)][:n]


def examples(texts: list[str], domain: str = "movies") -> list[TrainingExample]:
    return [TrainingExample(input=t, target="positive", domain=domain) for t in texts]


def pool(capacity: int = 10, max_bytes: int = 100_000, **kw: float) -> GatePool:
    return GatePool(capacity=capacity, max_bytes=max_bytes,
                    holdout_fraction=kw.get("fraction", FRACTION), seed=int(kw.get("seed", 0)))
