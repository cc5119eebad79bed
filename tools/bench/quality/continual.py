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

This lives in tools/ because it drives streams/ and learner/ code together (DESIGN.md: the two
packages meet only through schemas/ and Kafka).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ....schemas.enums import ExampleOrigin, TriggerKind, VersionStatus
from ....schemas.events import ModelVersion, TrainingExample, TrainingRequest
from ....schemas.settings import Settings, WorkerSettings
from ....streams.buffer import LabeledExample, ReplayBuffer
from ....streams.pipeline import new_buffer
from ....streams.triggers import SchedulePolicy, TaskSignals, TriggerGate
from ...demo.traffic import LABELS, DemoData, StreamItem, build_demo_data

__all__ = ["RUNS", "ContinualConfig", "ContinualExperiment", "RunResult", "forgetting",
           "run_continual"]

TASK = "bench-quality"
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


@dataclass(slots=True)
class RunResult:
    """What one run did to accuracy, and what it cost."""

    name: str
    label: str
    correct: list[bool] = field(default_factory=list)
    domains: list[str] = field(default_factory=list)
    after_domain: dict[str, dict[str, float]] = field(default_factory=dict)
    updates: int = 0
    promoted: int = 0
    examples_trained: int = 0
    update_seconds: float = 0.0
    update_cpu_seconds: float = 0.0
    predict_seconds: float = 0.0

    def spent(self, wall: float, cpu: float) -> None:
        self.update_seconds += wall
        self.update_cpu_seconds += cpu

    def prequential(self, window: int) -> list[dict[str, Any]]:
        """Accuracy over consecutive windows of ``window`` served events."""
        points = []
        for start in range(0, len(self.correct), window):
            part = self.correct[start:start + window]
            points.append({"events": start + len(part), "domain": self.domains[start],
                           "accuracy": round(sum(part) / len(part), 4)})
        return points

    def prequential_by_domain(self) -> dict[str, float]:
        totals: dict[str, list[int]] = {}
        for ok, domain in zip(self.correct, self.domains, strict=True):
            hits = totals.setdefault(domain, [0, 0])
            hits[0] += ok
            hits[1] += 1
        return {d: round(h / n, 4) for d, (h, n) in totals.items()}

    def to_dict(self, window: int) -> dict[str, Any]:
        order = list(self.after_domain)
        final = self.after_domain[order[-1]] if order else {}
        lost = forgetting(self.after_domain)
        return {
            "run": self.name, "label": self.label,
            "prequential_accuracy": round(sum(self.correct) / max(len(self.correct), 1), 4),
            "prequential_by_domain": self.prequential_by_domain(),
            "prequential_curve": self.prequential(window),
            "heldout_after_domain": self.after_domain,
            "final_heldout": final,
            "final_mean_accuracy": round(sum(final.values()) / len(final), 4) if final else None,
            "forgetting": lost,
            "mean_forgetting": round(sum(lost.values()) / len(lost), 4) if lost else None,
            "updates": self.updates, "promoted": self.promoted,
            "examples_trained": self.examples_trained,
            "update_seconds": round(self.update_seconds, 2),
            "update_cpu_seconds": round(self.update_cpu_seconds, 2),
            "predict_seconds": round(self.predict_seconds, 2),
        }


def forgetting(after_domain: dict[str, dict[str, float]]) -> dict[str, float]:
    """Per domain but the last: held-out accuracy right after its own segment minus at the end.

    >>> forgetting({"a": {"a": 0.9, "b": 0.5}, "b": {"a": 0.7, "b": 0.8}})
    {'a': 0.2}
    """
    order = list(after_domain)
    if not order:
        return {}
    final = after_domain[order[-1]]
    return {d: round(after_domain[d][d] - final[d], 4) for d in order[:-1]}


class _Loop:
    """The learner and serving side shared by every run: updaters, store, models, host."""

    def __init__(self, config: ContinualConfig, store_dir: Path) -> None:
        from ....learner.serving.model_host import ModelHost
        from ....learner.training.update import IncrementalUpdater

        base = Settings(artifacts={"store_url": str(store_dir)})
        learner = base.learner.model_copy(update={"epochs": config.epochs,
                                                  "torch_threads": config.torch_threads})
        self.settings = base.model_copy(update={"learner": learner})
        self.updater = IncrementalUpdater(self.settings)
        # The reference trains on everything: no step cap, a small gate slice, one pass, and
        # no gate pool (it is served whatever its gate says).
        retrain = learner.model_copy(update={"epochs": config.retrain_epochs,
                                             "max_steps": 100_000, "holdout_fraction": 0.05,
                                             "gate_pool_size": 0})
        self.retrainer = IncrementalUpdater(
            self.settings.model_copy(update={"learner": retrain}), models=self.updater.models,
            store=self.updater.store, device=self.updater.device)
        self.host = ModelHost(self.updater.models)
        self.workdir = store_dir / "fetched"
        self._scored: dict[str, dict[str, float]] = {}  # version id -> held-out accuracy
        self.bootstrap_holdout: tuple[TrainingExample, ...] = ()

    def train(self, updater: Any, request: TrainingRequest,
              versions: Any) -> tuple[Any, float, float]:
        """``(update result, wall seconds, CPU seconds of this process)``; CPU time moves less
        than wall time when other work shares the machine."""
        started, cpu = time.perf_counter(), time.process_time()
        result = updater.update(request, versions)
        return result, time.perf_counter() - started, time.process_time() - cpu

    def serve(self, run: str, event: ModelVersion) -> tuple[float, float]:
        """Load a version into the host for ``run`` and drop the others; wall and CPU s."""
        started, cpu = time.perf_counter(), time.process_time()
        folder = self.updater.store.fetch(event.adapter_uri, event.sha256, self.workdir)
        self.host.load(run, event.version_id, folder, event.base_model)
        self.host.evict(run, {event.version_id})
        return time.perf_counter() - started, time.process_time() - cpu

    def predict(self, run: str, version_id: str, items: Sequence[StreamItem],
                batch: int) -> list[tuple[str, float]]:
        answers = []
        for start in range(0, len(items), batch):
            chunk = [item.text for item in items[start:start + batch]]
            answers += [(p.label, p.confidence or 0.0)
                        for p in self.host.predict(run, version_id, chunk)]
        return answers

    def heldout(self, run: str, version_id: str, data: DemoData,
                batch: int) -> dict[str, float]:
        if version_id in self._scored:  # the same adapter scores the same
            return dict(self._scored[version_id])
        scores = {}
        for domain, items in data.heldout.items():
            answers = self.predict(run, version_id, items, batch)
            hits = sum(label == item.label for (label, _), item in zip(answers, items,
                                                                       strict=True))
            scores[domain] = round(hits / len(items), 4)
        self._scored[version_id] = scores
        return dict(scores)


def _request(request_id: str, examples: list[TrainingExample], parent: str | None,
             reason: str) -> TrainingRequest:
    return TrainingRequest(id=request_id, ts=time.time(), task=TASK, trigger=TriggerKind.SCHEDULE,
                           reason=reason, parent_version=parent, labels=list(LABELS),
                           examples=examples)


def _labelled(item: StreamItem, confidence: float | None = None) -> LabeledExample:
    return LabeledExample(input=item.text, target=item.label, domain=item.domain,
                          difficulty=None if confidence is None else round(1 - confidence, 6),
                          interaction_id=item.id)


def _run(loop: _Loop, name: str, config: ContinualConfig, data: DemoData,
         bootstrap: ModelVersion, progress: Callable[[int], None] | None) -> RunResult:
    from ....learner.registry.version_log import VersionLog

    result = RunResult(name, RUNS[name])
    # A run's gates see the bootstrap's holdout and the run's own, never another run's.
    loop.updater.clear_gate_pool(TASK)
    loop.updater.gate_pool(TASK).admit(loop.bootstrap_holdout)
    worker = WorkerSettings()
    b = worker.buffer
    replay_ratio = 0.0 if name == "no_replay" else b.replay_ratio
    buffer: ReplayBuffer = new_buffer(worker)
    buffer.extend(_labelled(item) for item in data.bootstrap)
    buffer.commit()  # the bootstrap request carried them: they are old knowledge now
    seen = [_labelled(item) for item in data.bootstrap]
    gate = TriggerGate([SchedulePolicy(every_examples=config.every_examples)],
                       min_examples=config.every_examples, cooldown_seconds=0.0)
    versions = VersionLog().apply(bootstrap)
    head = bootstrap
    result.spent(*loop.serve(name, head))
    boundaries = {end: domain for domain, _, end in data.boundaries()}
    served = 0
    while served < len(data.stream):
        # A batch never straddles two domains, so every domain ends on a scored boundary.
        end = min(min(e for e in boundaries if e > served), served + config.batch_events)
        items = data.stream[served:end]
        started = time.perf_counter()
        answers = loop.predict(name, head.version_id, items, config.batch_events)
        result.predict_seconds += time.perf_counter() - started
        for item, (label, confidence) in zip(items, answers, strict=True):
            result.correct.append(label == item.label)
            result.domains.append(item.domain)
            if name != "none":
                buffer.add(_labelled(item, confidence))
                seen.append(_labelled(item, confidence))
        served += len(items)
        if progress is not None:
            progress(len(items))
        if name != "none" and gate.decide(TaskSignals(now=float(served),
                                                      new_examples=buffer.new_count)):
            request_id = f"{name}-{result.updates:03d}"
            if name == "retrain":
                request = _request(request_id,
                                   [e.to_training(ExampleOrigin.NEW) for e in seen], None,
                                   f"retrain on {len(seen)} labels")
                update, wall, cpu = loop.train(loop.retrainer, request, VersionLog())
                update.event = update.event.model_copy(
                    update={"status": VersionStatus.PROMOTED})  # the reference always serves
            else:
                examples = buffer.build_batch(size=b.batch_size, replay_ratio=replay_ratio,
                                              balance=b.balance, curriculum=b.curriculum,
                                              max_bytes=b.batch_max_bytes)
                request = _request(request_id, examples, head.version_id,
                                   f"{buffer.new_count} new labels")
                update, wall, cpu = loop.train(loop.updater, request, versions)
            result.spent(wall, cpu)
            result.updates += 1
            result.examples_trained += update.train_report.examples_seen
            buffer.commit()
            gate.fired(now=float(served), examples=buffer.new_count)
            versions.apply(update.event)
            if update.event.status is VersionStatus.PROMOTED:
                result.promoted += 1
                head = update.event
                result.spent(*loop.serve(name, head))
        if served in boundaries:
            started = time.perf_counter()
            result.after_domain[boundaries[served]] = loop.heldout(
                name, head.version_id, data, config.batch_events)
            result.predict_seconds += time.perf_counter() - started
    return result


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
        self.loop = _Loop(config, self._store_dir)
        self.bootstrap: ModelVersion | None = None
        self.bootstrap_seconds = 0.0

    def start(self) -> ModelVersion:
        from ....learner.registry.version_log import VersionLog

        started = time.perf_counter()
        examples = [_labelled(i).to_training(ExampleOrigin.NEW) for i in self.data.bootstrap]
        update, _, _ = self.loop.train(self.loop.updater,
                                       _request("bootstrap", examples, None, "bootstrap"),
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
        return _run(self.loop, name, self.config, self.data, self.bootstrap, progress)

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
