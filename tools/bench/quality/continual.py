"""Continual learning on a text stream that moves between domains, with the real loop's parts.

The VADER stream (tweets, then movie reviews, Amazon reviews, NYT editorials; see
:func:`~driftloop.tools.demo.traffic.build_demo_data`) is served in batches by
:class:`~driftloop.learner.serving.model_host.ModelHost` (the serving code) with the current
head version. Every prediction is scored against the true label *before* that label is
learnt (prequential accuracy); the labels then go where the run sends them:

* ``no updates``: nowhere; the bootstrap version serves the whole stream;
* ``driftloop, replay``: the worker's :class:`~driftloop.streams.buffer.ReplayBuffer`; when
  the worker's :class:`~driftloop.streams.triggers.TriggerGate` (a schedule of
  ``every_examples`` labels) fires, ``build_batch`` mixes new and replayed examples at the
  worker's ratio, and :class:`~driftloop.learner.training.update.IncrementalUpdater` trains,
  gates and stores a version that serves only if the gate promotes it;
* ``driftloop, no replay``: the same with a replay ratio of 0;
* ``full retraining``: at the same trigger points, a fresh adapter trained on every label
  seen so far (the bootstrap included), always served: the expensive upper reference.

After each domain's segment every run is scored on held-out texts of every domain, which
gives forgetting: accuracy on a domain right after its segment minus accuracy at the end.
Compute is the wall time of the updates (training, scoring for the gate, storing, loading
the new version), measured per run; serving the predictions is the same work in every run
and is reported apart.

One run's play through the loop's parts is :mod:`.stream_runs`; what a run did to accuracy
is :mod:`.prequential`.

This lives in tools/ because it drives streams/ and learner/ code together (DESIGN.md: the two
packages meet only through schemas/ and Kafka).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ....schemas.enums import ExampleOrigin, VersionStatus
from ....schemas.events import ModelVersion
from ....schemas.settings import WorkerSettings
from ...demo.traffic import build_demo_data
from .prequential import RunResult
from .stream_runs import LoopParts, labelled, play_run, schedule_request

__all__ = ["RUNS", "ContinualConfig", "ContinualExperiment", "run_continual"]

RUNS: dict[str, str] = {
    "none": "no updates",
    "replay": "driftloop, replay",
    "no_replay": "driftloop, no replay",
    "retrain": "full retraining",
}


@dataclass(frozen=True, slots=True)
class ContinualConfig:
    """Sizes of the experiment.

    Examples
    --------
    >>> ContinualConfig.named(quick=True).domains
    ('tweets', 'movies')
    >>> ContinualConfig(every_examples=1)
    Traceback (most recent call last):
    ...
    ValueError: every_examples must be >= 8, got 1
    """

    domains: tuple[str, ...] = ("tweets", "movies", "amazon", "nyt")
    per_domain: int = 320
    heldout: int = 100
    bootstrap: int = 128
    batch_events: int = 32  # texts per /predict batch
    every_examples: int = 160  # labels between two training requests (the schedule trigger)
    epochs: int = 2
    retrain_epochs: int = 1
    torch_threads: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.every_examples < 8:
            raise ValueError(f"every_examples must be >= 8, got {self.every_examples}")
        for name in ("per_domain", "heldout", "batch_events", "epochs", "retrain_epochs"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.bootstrap < 8 or len(self.domains) < 2:
            raise ValueError("bootstrap must be >= 8 and there must be at least two domains")

    @classmethod
    def named(cls, *, quick: bool, seed: int = 0, torch_threads: int | None = None
              ) -> ContinualConfig:
        if quick:
            return cls(domains=("tweets", "movies"), per_domain=64, heldout=40, bootstrap=48,
                       every_examples=32, seed=seed, torch_threads=torch_threads)
        return cls(seed=seed, torch_threads=torch_threads)


class ContinualExperiment:
    """The stream, the shared learner and serving parts, and the bootstrap version.

    ``start()`` trains the bootstrap version; ``run(name)`` plays the stream for one run;
    ``embed(texts)`` gives the bootstrap version's pooled sentence embeddings (what the
    serving layer reports with each interaction); ``close()`` frees the models and the store.
    """

    def __init__(self, config: ContinualConfig) -> None:
        import torch

        self.config = config
        if config.torch_threads:
            torch.set_num_threads(config.torch_threads)
        self.data = build_demo_data(per_domain=config.per_domain, heldout=config.heldout,
                                    bootstrap=config.bootstrap, seed=config.seed,
                                    domains=config.domains)
        self._store_dir = Path(tempfile.mkdtemp(prefix="driftloop-bench-quality-"))
        self.loop = LoopParts(self._store_dir, epochs=config.epochs,
                              retrain_epochs=config.retrain_epochs,
                              torch_threads=config.torch_threads)
        self.bootstrap: ModelVersion | None = None
        self.bootstrap_seconds = 0.0

    def start(self) -> ModelVersion:
        from ....learner.registry.version_log import VersionLog

        started = time.perf_counter()
        examples = [labelled(i).to_training(ExampleOrigin.NEW) for i in self.data.bootstrap]
        update, _, _ = self.loop.train(self.loop.updater,
                                       schedule_request("bootstrap", examples, None, "bootstrap"),
                                       VersionLog())
        self.loop.bootstrap_holdout = update.split.holdout_new
        # The deployed starting point serves whatever the gate said of it against an
        # untrained head (every run starts from it).
        self.bootstrap = update.event.model_copy(update={"status": VersionStatus.PROMOTED})
        self.loop.serve("bootstrap", self.bootstrap)
        self.bootstrap_seconds = time.perf_counter() - started
        return self.bootstrap

    def run(self, name: str, progress: Callable[[int], None] | None = None) -> RunResult:
        if name not in RUNS:
            raise ValueError(f"unknown run {name!r}; valid: {sorted(RUNS)}")
        if self.bootstrap is None:
            raise RuntimeError("start() first: every run begins from the bootstrap version")
        return play_run(self.loop, name, RUNS[name], self.data, self.bootstrap,
                        every_examples=self.config.every_examples,
                        batch_events=self.config.batch_events, progress=progress)

    def embed(self, texts: Sequence[str]) -> Any:
        """Pooled embeddings of ``texts`` under the bootstrap version, an (n, dim) array."""
        import numpy as np

        if self.bootstrap is None:
            raise RuntimeError("start() first")
        rows: list[list[float]] = []
        for start in range(0, len(texts), self.config.batch_events):
            chunk = list(texts[start:start + self.config.batch_events])
            rows += [p.embedding for p in self.loop.host.predict(
                "bootstrap", self.bootstrap.version_id, chunk)]
        return np.asarray(rows, dtype=np.float32)

    def summary(self, results: Sequence[RunResult]) -> dict[str, Any]:
        import torch

        config = self.config
        buffer = WorkerSettings().buffer
        return {
            "config": {"domains": list(config.domains), "per_domain": config.per_domain,
                       "heldout_per_domain": config.heldout, "bootstrap": config.bootstrap,
                       "every_examples": config.every_examples, "epochs": config.epochs,
                       "retrain_epochs": config.retrain_epochs, "seed": config.seed,
                       "torch_threads": torch.get_num_threads(),
                       "replay_ratio": buffer.replay_ratio, "request_size": buffer.batch_size},
            "bootstrap_seconds": round(self.bootstrap_seconds, 2),
            "runs": [r.to_dict(config.every_examples) for r in results],
        }

    def close(self) -> None:
        self.loop.host.close()
        shutil.rmtree(self._store_dir, ignore_errors=True)


def run_continual(config: ContinualConfig, *, runs: Sequence[str] = tuple(RUNS),
                  progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Train the bootstrap version, then play the stream once per run; a JSON-ready summary.

    ``progress`` is called with the number of events served (``len(runs)`` times the stream).
    """
    unknown = sorted(set(runs) - set(RUNS))
    if unknown:
        raise ValueError(f"unknown runs {unknown}; valid: {sorted(RUNS)}")
    experiment = ContinualExperiment(config)
    try:
        experiment.start()
        return experiment.summary([experiment.run(name, progress) for name in runs])
    finally:
        experiment.close()
