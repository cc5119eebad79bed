"""Helpers of the canary tests: model-versions events, the commands the worker makes of them,
and outcomes as serving and feedback would make them. (Kept out of conftest.py: test modules
import these by a unique module name.)"""

from __future__ import annotations

import numpy as np

from driftloop.schemas import ModelVersion
from driftloop.streams.canary import CanaryComparison
from driftloop.streams.commands import commands_from_version


def version(version_id: str, status: str, task: str = "t", **fields) -> ModelVersion:
    return ModelVersion(version_id=version_id, ts=1.0, task=task, base_model="m",
                        adapter_uri=f"file:///store/{version_id}", sha256="ab" * 32,
                        size_bytes=10, status=status, metrics_after={"holdout_score": 0.8},
                        metadata={"steps": 3}, **fields)


def apply(ab: CanaryComparison, *events: ModelVersion, now: float = 2.0) -> list[ModelVersion]:
    """What the worker does with model-versions entries: commands, then the A/B state."""
    out = []
    for event in events:
        for command in commands_from_version(event, challenge_min_score=None, candidates=True):
            out += ab.on_command(command, now=now)
    return out


def traffic(n: int, p_candidate: float, p_head: float, *, share: float = 0.5, seed: int = 0,
            start: int = 0, candidate: str = "v2", head: str = "v1", domain: str = "news"):
    """Outcomes as serving + feedback would make them: a canary share answered by the
    candidate, each right with its version's accuracy."""
    rng = np.random.default_rng([seed, start])
    out = []
    for n_ in range(start, start + n):
        canary = rng.random() < share
        p = p_candidate if canary else p_head
        out.append((f"i{n_}", domain, candidate if canary else head, bool(rng.random() < p)))
    return out


def started(**params) -> CanaryComparison:
    ab = CanaryComparison("t", **params)
    assert apply(ab, version("v1", "promoted"), version("v2", "candidate")) == []
    return ab
