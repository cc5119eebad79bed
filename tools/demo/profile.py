"""The size and pace of a demo run, and the settings its children read from the environment.

A :class:`DemoProfile` (``quick`` or the default, for the classifier or the generator) fixes
how long the stream is and how fast it goes; :func:`child_env` turns it into the
``DRIFTLOOP_*`` variables the worker, the learner and the service start with, the way an
operator would configure them. Drift detection, triggers, the learner's hyperparameters and
its gate stay at driftloop's defaults: only ports, folders, group names and thread counts
are the run's own.
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
    """Size and pace of one demo (``quick`` or the default). The loop itself runs at
    driftloop's default settings: a setting tuned to this stream would prove nothing."""

    per_domain: int
    heldout: int
    bootstrap: int
    rate: float  # predictions per second: the stream must be slow enough for the loop to react
    settle_s: float
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
        (400, 'generate')
        """
        if task not in TASK_KINDS:
            raise SettingsError(f"--task must be one of {sorted(TASK_KINDS)}, got {task!r}")
        if task == "generate":
            # A causal LM answers ~10x slower than the encoder classifies and an update costs
            # a minute on CPU: a slower, shorter stream.
            if quick:
                return cls(per_domain=30, heldout=24, bootstrap=48, rate=1.5, settle_s=150.0,
                           task=task)
            return cls(per_domain=80, heldout=40, bootstrap=64, rate=1.5, settle_s=240.0,
                       task=task)
        if quick:
            # 400 texts a domain, as bench quality's live loop: with 200 (160 labels) the
            # default gate rarely had the evidence to promote before the domain ended.
            return cls(per_domain=400, heldout=80, bootstrap=128, rate=10.0, settle_s=20.0)
        return cls(per_domain=400, heldout=150, bootstrap=256, rate=6.0, settle_s=45.0)

    def task_settings(self) -> dict[str, object]:
        """The demo task's ``[tasks.sentiment]`` table for the children."""
        if self.task == "generate":
            return {"kind": TaskKind.GENERATION, "prompt_template_id": "sentiment"}
        return {"kind": TaskKind.CLASSIFICATION, "labels": list(LABELS)}


def child_env(settings: Settings, run_dir: Path, profile: DemoProfile, *, run_id: str,
              serve_port: int, worker_port: int, review_port: int | None = None,
              review_token: str | None = None) -> dict[str, str]:
    """DRIFTLOOP_* variables shared by the children (each reads what it needs)."""
    d = "DRIFTLOOP_"
    return {
        **driftloop_env(settings, {TASK: profile.task_settings()}),
        # worker: its own consumer group and state per run
        f"{d}WORKER__APP_ID": f"driftloop-{run_id}",
        f"{d}WORKER__WEB_PORT": str(worker_port),
        f"{d}WORKER__DATA_DIR": str(run_dir / "worker"),
        f"{d}WORKER__COMMIT_INTERVAL_S": "0.5",
        f"{d}WORKER__SESSION_TIMEOUT_S": "6",
        f"{d}LEARNER__GROUP_ID": f"driftloop-learner-{run_id}",
        f"{d}LEARNER__TORCH_THREADS": "1",
        f"{d}LEARNER__CACHE_DIR": str(run_dir / "learner"),
        # generation: short prompts and one-word answers keep a CPU update near a minute
        **({f"{d}LEARNER__MAX_LENGTH": "64", f"{d}LEARNER__MAX_NEW_TOKENS": "3"}
           if profile.task == "generate" else {}),
        f"{d}SERVING__PORT": str(serve_port),
        f"{d}SERVING__REPLICA_ID": "demo-replica",
        f"{d}SERVING__CACHE_DIR": str(run_dir / "serving"),
        f"{d}SERVING__TORCH_THREADS": "1",
        # the review page the simulated reviewer answers through, as a person would; a
        # short undo window keeps the held answers from lagging the stream
        **({f"{d}REVIEW__PORT": str(review_port), f"{d}REVIEW__TOKEN": review_token,
            f"{d}REVIEW__UNDO_WINDOW_S": "1"} if review_port and review_token else {}),
    }
