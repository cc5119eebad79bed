"""Helpers of the task-state tests: interactions, their feedback and a fresh task state with
small trigger and active-learning settings. (Kept out of conftest.py: test modules import
these by a unique module name.)"""

from __future__ import annotations

import numpy as np

from driftloop.schemas import Feedback, Interaction
from driftloop.schemas.settings import TaskSettings, WorkerSettings
from driftloop.streams.pipeline import TaskState, new_buffer, new_join_window

WORKER = WorkerSettings(triggers={"min_examples": 4, "cooldown_s": 0, "regime_growth": None,
                                  "metric_threshold": None, "metric_max_drop": None},
                        active={"threshold": 0.5, "budget": 3})


def items(n: int, start: int = 0, domain: str = "a") -> list[Interaction]:
    rng = np.random.default_rng(start)
    return [Interaction(id=f"i{start + k}", ts=float(start + k), task="t", domain=domain,
                        model_version="v1", input=f"in {start + k}", prediction="pos",
                        output="pos", scores={"confidence": float(rng.uniform(0.5, 1.0))})
            for k in range(n)]


def labels(xs: list[Interaction], value: str = "neg", kind: str = "label") -> list[Feedback]:
    return [Feedback(id=f"f-{x.id}-{kind}", interaction_id=x.id, ts=x.ts + 1, task="t",
                     kind=kind, value=value if kind != "rating" else 3.0) for x in xs]


def fresh() -> tuple[TaskState, object, object]:
    return TaskState("t", WORKER, TaskSettings()), new_join_window(WORKER), new_buffer(WORKER)
