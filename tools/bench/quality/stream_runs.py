"""One run of the continual-learning experiment: the stream played through the loop's parts.

:class:`LoopParts` is the learner and serving side every run shares (the updaters, the
artifact store, the resident models, the serving host). :func:`play_run` plays the whole
stream for one run and reads as its steps: serve a batch with the head version and score it
before its labels are learnt, hand the labels to the run's replay buffer, train when the
schedule trigger fires (and serve the version if its gate promotes it), score every domain
on held-out text at the end of its segment. See :mod:`~driftloop.tools.bench.quality.continual`
for what the runs compare.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ....schemas.enums import ExampleOrigin, TriggerKind, VersionStatus
from ....schemas.events import ModelVersion, TrainingExample, TrainingRequest
from ....schemas.settings import BufferSettings, Settings, WorkerSettings
from ....streams.buffer import LabeledExample, ReplayBuffer
from ....streams.pipeline import new_buffer
from ....streams.triggers import SchedulePolicy, TaskSignals, TriggerGate
from ...demo.traffic import LABELS, DemoData, StreamItem
from .prequential import RunResult

if TYPE_CHECKING:
    from ....learner.registry.version_log import VersionLog

__all__ = ["TASK", "LoopParts", "labelled", "play_run", "schedule_request"]

TASK = "bench-quality"


class LoopParts:
    """The learner and serving side shared by every run: updaters, store, models, host."""

    def __init__(self, store_dir: Path, *, epochs: int, retrain_epochs: int,
                 torch_threads: int | None) -> None:
        from ....learner.serving.model_host import ModelHost
        from ....learner.training.update import IncrementalUpdater

        base = Settings(artifacts={"store_url": str(store_dir)})
        learner = base.learner.model_copy(update={"epochs": epochs,
                                                  "torch_threads": torch_threads})
        self.settings = base.model_copy(update={"learner": learner})
        self.updater = IncrementalUpdater(self.settings)
        # The reference trains on everything: no step cap, a small gate slice, one pass, and
        # no gate pool (it is served whatever its gate says).
        retrain = learner.model_copy(update={"epochs": retrain_epochs,
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


def schedule_request(request_id: str, examples: list[TrainingExample], parent: str | None,
                     reason: str) -> TrainingRequest:
    """A training request of the bench's task, fired by the schedule trigger.

    >>> example = TrainingExample(input="fine", target="positive")
    >>> schedule_request("replay-000", [example], "v1", "32 new labels").trigger
    <TriggerKind.SCHEDULE: 'schedule'>
    """
    return TrainingRequest(id=request_id, ts=time.time(), task=TASK, trigger=TriggerKind.SCHEDULE,
                           reason=reason, parent_version=parent, labels=list(LABELS),
                           examples=examples)


def labelled(item: StreamItem, confidence: float | None = None) -> LabeledExample:
    """A stream item with its true label, as the worker's buffer holds it.

    The model's confidence makes the difficulty the curriculum orders by.

    >>> labelled(StreamItem("i-1", "tweets", "so good", "positive"), 0.75).difficulty
    0.25
    """
    return LabeledExample(input=item.text, target=item.label, domain=item.domain,
                          difficulty=None if confidence is None else round(1 - confidence, 6),
                          interaction_id=item.id)


@dataclass(slots=True)
class _RunState:
    """One run's moving parts: its buffer, the labels seen, its trigger, registry and head."""

    buffer: ReplayBuffer
    buffer_settings: BufferSettings
    replay_ratio: float
    seen: list[LabeledExample]
    gate: TriggerGate
    versions: VersionLog
    head: ModelVersion


def play_run(loop: LoopParts, name: str, label: str, data: DemoData, bootstrap: ModelVersion,
             *, every_examples: int, batch_events: int,
             progress: Callable[[int], None] | None = None) -> RunResult:
    """Play the whole stream for run ``name`` (``none``, ``replay``, ``no_replay``, ``retrain``).

    ``progress`` is called with the number of events of each batch served.
    """
    result = RunResult(name, label)
    run = _start(loop, name, data, bootstrap, every_examples, result)
    boundaries = {end: domain for domain, _, end in data.boundaries()}
    served = 0
    while served < len(data.stream):
        # A batch never straddles two domains, so every domain ends on a scored boundary.
        end = min(min(e for e in boundaries if e > served), served + batch_events)
        items = data.stream[served:end]
        _serve(loop, name, run, items, batch_events, result)
        served += len(items)
        if progress is not None:
            progress(len(items))
        if name != "none" and run.gate.decide(TaskSignals(now=float(served),
                                                          new_examples=run.buffer.new_count)):
            _update(loop, name, run, served, result)
        if served in boundaries:
            started = time.perf_counter()
            result.after_domain[boundaries[served]] = loop.heldout(
                name, run.head.version_id, data, batch_events)
            result.predict_seconds += time.perf_counter() - started
    return result


def _start(loop: LoopParts, name: str, data: DemoData, bootstrap: ModelVersion,
           every_examples: int, result: RunResult) -> _RunState:
    """The run's own buffer, trigger and registry, the bootstrap version served."""
    from ....learner.registry.version_log import VersionLog

    # A run's gates see the bootstrap's holdout and the run's own, never another run's.
    loop.updater.clear_gate_pool(TASK)
    loop.updater.gate_pool(TASK).admit(loop.bootstrap_holdout)
    worker = WorkerSettings()
    buffer: ReplayBuffer = new_buffer(worker)
    buffer.extend(labelled(item) for item in data.bootstrap)
    buffer.commit()  # the bootstrap request carried them: they are old knowledge now
    gate = TriggerGate([SchedulePolicy(every_examples=every_examples)],
                       min_examples=every_examples, cooldown_seconds=0.0)
    run = _RunState(buffer=buffer, buffer_settings=worker.buffer,
                    replay_ratio=0.0 if name == "no_replay" else worker.buffer.replay_ratio,
                    seen=[labelled(item) for item in data.bootstrap], gate=gate,
                    versions=VersionLog().apply(bootstrap), head=bootstrap)
    result.spent(*loop.serve(name, bootstrap))
    return run


def _serve(loop: LoopParts, name: str, run: _RunState, items: Sequence[StreamItem],
           batch: int, result: RunResult) -> None:
    """Answer a batch with the head version, score it, then hand its labels to the run."""
    started = time.perf_counter()
    answers = loop.predict(name, run.head.version_id, items, batch)
    result.predict_seconds += time.perf_counter() - started
    for item, (label, confidence) in zip(items, answers, strict=True):
        result.correct.append(label == item.label)
        result.domains.append(item.domain)
        if name != "none":
            run.buffer.add(labelled(item, confidence))
            run.seen.append(labelled(item, confidence))


def _update(loop: LoopParts, name: str, run: _RunState, served: int,
            result: RunResult) -> None:
    """Train once (the trigger fired); the version serves if its gate promotes it."""
    request_id = f"{name}-{result.updates:03d}"
    train = _retrain if name == "retrain" else _incremental
    update, wall, cpu = train(loop, run, request_id)
    result.spent(wall, cpu)
    result.updates += 1
    result.examples_trained += update.train_report.examples_seen
    run.buffer.commit()
    run.gate.fired(now=float(served), examples=run.buffer.new_count)
    run.versions.apply(update.event)
    if update.event.status is VersionStatus.PROMOTED:
        result.promoted += 1
        run.head = update.event
        result.spent(*loop.serve(name, run.head))


def _retrain(loop: LoopParts, run: _RunState, request_id: str) -> tuple[Any, float, float]:
    """A fresh adapter on every label seen so far; the reference always serves."""
    from ....learner.registry.version_log import VersionLog

    request = schedule_request(request_id,
                               [e.to_training(ExampleOrigin.NEW) for e in run.seen], None,
                               f"retrain on {len(run.seen)} labels")
    update, wall, cpu = loop.train(loop.retrainer, request, VersionLog())
    update.event = update.event.model_copy(update={"status": VersionStatus.PROMOTED})
    return update, wall, cpu


def _incremental(loop: LoopParts, run: _RunState, request_id: str) -> tuple[Any, float, float]:
    """The worker's batch (new and replayed examples at the run's ratio) on the head."""
    b = run.buffer_settings
    examples = run.buffer.build_batch(size=b.batch_size, replay_ratio=run.replay_ratio,
                                      balance=b.balance, curriculum=b.curriculum,
                                      max_bytes=b.batch_max_bytes)
    request = schedule_request(request_id, examples, run.head.version_id,
                               f"{run.buffer.new_count} new labels")
    return loop.train(loop.updater, request, run.versions)
