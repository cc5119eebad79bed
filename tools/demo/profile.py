"""The size and pace of a demo run, and the settings its children read from the environment.

A :class:`DemoProfile` (``quick`` or the default, for the classifier or the generator) fixes
how long the stream is, how fast it goes and how the worker's detectors and triggers are
tuned for it; :func:`child_env` turns it into the ``DRIFTLOOP_*`` variables the worker, the
learner and the service start with, the way an operator would configure them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ...schemas import TaskKind
from ...schemas.errors import SettingsError
from ...schemas.settings import Settings
from .processes import driftloop_env

__all__ = ["LABELS", "TASK", "TASK_KINDS", "DemoProfile", "child_env"]

TASK = "sentiment"
LABELS = ("negative", "positive")
TASK_KINDS = {"classify": TaskKind.CLASSIFICATION, "generate": TaskKind.GENERATION}


@dataclass(frozen=True, slots=True)
class DemoProfile:
    """Sizes and pace of one demo (``quick`` or ``default``)."""

    per_domain: int
    heldout: int
    bootstrap: int
    rate: float  # predictions per second: the stream must be slow enough for the loop to react
    block_size: int
    warmup_blocks: int
    # Page-Hinkley on z-scores of blocks of 8: on the static model's embeddings of the VADER
    # stream these alerted 16-68 events after each domain change, with no alarm inside tweets
    # (the worker's defaults, tuned for long production streams, need ~1,000 events to warm up).
    threshold: float
    delta: float
    settle_s: float
    label_budget: int
    epochs: int
    min_examples: int  # new labelled examples per training request
    cooldown_s: float
    # A schedule beside drift and metric triggers: every N new labels. Without it a quick run
    # under load sometimes asked for only two updates, and two coin-toss gates decide nothing.
    every_examples: int
    # At each domain change the stream waits (up to this long) until the worker has every
    # label of the last domain and the learner has answered every training request: on a
    # slow or busy machine the updates otherwise arrive after the stream has moved on, and
    # live traffic never meets them (seen: a loaded quick run decided 2 of 6 requests).
    pause_s: float = 60.0  # 0: never wait
    # ``generate``: the same stream through SmolLM2-135M-Instruct under the ``sentiment``
    # prompt template, the class read from the generated answer.
    task: str = "classify"

    @classmethod
    def named(cls, quick: bool, task: str = "classify") -> DemoProfile:
        """The profile of a run.

        >>> DemoProfile.named(quick=True).per_domain, DemoProfile.named(False, "generate").task
        (125, 'generate')
        """
        if task not in TASK_KINDS:
            raise SettingsError(f"--task must be one of {sorted(TASK_KINDS)}, got {task!r}")
        if task == "generate":
            # A causal LM answers ~10x slower than the encoder classifies and an update costs
            # a minute on CPU: a slower, shorter stream; no embeddings or confidence reach
            # the worker, so drift comes from the error rate of the feedback.
            if quick:
                return cls(per_domain=30, heldout=24, bootstrap=48, rate=1.5, block_size=4,
                           warmup_blocks=3, threshold=6.0, delta=0.5, settle_s=150.0,
                           label_budget=8, epochs=2, min_examples=24, cooldown_s=20.0,
                           every_examples=32, task=task)
            return cls(per_domain=80, heldout=40, bootstrap=64, rate=1.5, block_size=4,
                       warmup_blocks=4, threshold=6.0, delta=0.5, settle_s=240.0,
                       label_budget=16, epochs=2, min_examples=32, cooldown_s=30.0,
                       every_examples=48, task=task)
        if quick:
            return cls(per_domain=125, heldout=50, bootstrap=128, rate=8.0, block_size=8,
                       warmup_blocks=4, threshold=8.0, delta=1.0, settle_s=20.0, label_budget=20,
                       epochs=2, min_examples=64, cooldown_s=12.0, every_examples=80)
        return cls(per_domain=400, heldout=150, bootstrap=256, rate=6.0, block_size=8,
                   warmup_blocks=4, threshold=8.0, delta=1.0, settle_s=45.0, label_budget=60,
                   epochs=3, min_examples=128, cooldown_s=20.0, every_examples=160)

    def task_settings(self) -> dict[str, object]:
        """The demo task's ``[tasks.sentiment]`` table for the children."""
        if self.task == "generate":
            return {"kind": TaskKind.GENERATION, "prompt_template_id": "sentiment"}
        return {"kind": TaskKind.CLASSIFICATION, "labels": list(LABELS)}


def child_env(settings: Settings, run_dir: Path, profile: DemoProfile, *, run_id: str,
              serve_port: int, worker_port: int) -> dict[str, str]:
    """DRIFTLOOP_* variables shared by the three children (each reads what it needs)."""
    d = "DRIFTLOOP_"
    return {
        **driftloop_env(settings, {TASK: profile.task_settings()}),
        # worker: its own consumer group and state per run; a short stream needs small blocks
        f"{d}WORKER__APP_ID": f"driftloop-{run_id}",
        f"{d}WORKER__WEB_PORT": str(worker_port),
        f"{d}WORKER__DATA_DIR": str(run_dir / "worker"),
        f"{d}WORKER__COMMIT_INTERVAL_S": "0.5",
        f"{d}WORKER__SESSION_TIMEOUT_S": "6",
        f"{d}WORKER__DRIFT__BLOCK_SIZE": str(profile.block_size),
        f"{d}WORKER__DRIFT__WARMUP_BLOCKS": str(profile.warmup_blocks),
        f"{d}WORKER__DRIFT__THRESHOLD": str(profile.threshold),
        f"{d}WORKER__DRIFT__DELTA": str(profile.delta),
        f"{d}WORKER__DRIFT__COOLDOWN_BLOCKS": "2",
        f"{d}WORKER__DRIFT__CENTROID_EVENTS": str(profile.block_size * profile.warmup_blocks),
        # fewer, larger updates: a gate judging 10 held-out examples is a coin toss
        f"{d}WORKER__TRIGGERS__MIN_EXAMPLES": str(profile.min_examples),
        f"{d}WORKER__TRIGGERS__COOLDOWN_S": str(profile.cooldown_s),
        f"{d}WORKER__TRIGGERS__EVERY_EXAMPLES": str(profile.every_examples),
        f"{d}WORKER__TRIGGERS__METRIC_MIN_OUTCOMES": "40",
        f"{d}WORKER__TRIGGERS__QUALITY_WINDOW": "60",
        f"{d}WORKER__ACTIVE__BUDGET": str(profile.label_budget),
        f"{d}WORKER__BUFFER__BATCH_SIZE": "128",
        # learner and service: one torch thread each on a small machine
        f"{d}LEARNER__GROUP_ID": f"driftloop-learner-{run_id}",
        f"{d}LEARNER__TORCH_THREADS": "1",
        f"{d}LEARNER__CACHE_DIR": str(run_dir / "learner"),
        f"{d}LEARNER__HOLDOUT_FRACTION": "0.3",
        # a request of ~100 examples is ~9 steps per epoch: one epoch barely moves the adapter
        f"{d}LEARNER__EPOCHS": str(profile.epochs),
        # The replay slice of a request's holdout is 8-16 examples: one miss costs 0.06-0.12,
        # so the default 0.02 rejected nearly every update of the default demo as forgetting
        # (11 of 13). The verdict measures forgetting on 150 held-out tweets instead.
        f"{d}LEARNER__REPLAY_TOLERANCE": "0.1",
        # generation: short prompts and one-word answers keep a CPU update near a minute
        **({f"{d}LEARNER__MAX_LENGTH": "64", f"{d}LEARNER__MAX_NEW_TOKENS": "3"}
           if profile.task == "generate" else {}),
        f"{d}SERVING__PORT": str(serve_port),
        f"{d}SERVING__REPLICA_ID": "demo-replica",
        f"{d}SERVING__CACHE_DIR": str(run_dir / "serving"),
        f"{d}SERVING__TORCH_THREADS": "1",
    }
