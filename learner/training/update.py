"""One training request in, one gated, stored model version out (no Kafka here).

:class:`IncrementalUpdater` resolves the parent (the request's, else the task's promoted
head, else the untrained adapter), copies the resident base model, continues training from
the parent adapter, scores parent and candidate for the gate, stores the candidate's adapter
by sha256 and returns the :class:`~driftloop.schemas.ModelVersion` event to publish.
The gate scores on the request's held-out new examples plus the task's gate pool of earlier
held-out examples of the same domains (:mod:`driftloop.learner.gate.pool`).
Under a task's ``adapter_per_domain`` the head is the request's domain's, and a domain
without one starts from the closest domain's head (:mod:`driftloop.learner.training.transfer`).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ...schemas.enums import ExampleOrigin, TaskKind, VersionStatus
from ...schemas.events import ModelVersion, TrainingExample, TrainingRequest
from ...schemas.settings import Settings, TaskSettings
from ..errors import TrainingRequestError
from ..gate.challenges import ChallengeCase, ChallengeSuite, cases_from_errors
from ..gate.pool import GatePool, GatePoolFile
from ..gate.rule import GateDecision, GateRule
from ..gate.split import RequestSplit, held_out, split_request
from ..gate.stability import prompt_record, stability_metrics
from ..models.adapters import AdapterMetadata, LoraSpec, read_metadata, save_adapter
from ..models.classification import ClassificationTask
from ..models.device import ComputeDevice, select_device
from ..models.generation import GenerationTask
from ..models.prompts import get_template
from ..models.resident import ResidentModels, default_base_model
from ..registry.store import ArtifactStore
from ..registry.version_log import VersionLog, version_id_for
from .distill import distillation_for
from .loop import TrainConfig, TrainReport, seed_everything, train_adapter
from .transfer import plan_domain_start, request_domain

__all__ = ["IncrementalUpdater", "UpdateResult", "store_from_settings"]

log = logging.getLogger(__name__)
Metrics = dict[str, float]


@dataclass(slots=True)
class UpdateResult:
    """The event to publish and how it came about."""

    event: ModelVersion
    decision: GateDecision
    train_report: TrainReport
    split: RequestSplit
    timings: dict[str, float] = field(default_factory=dict)
    # Held-out examples the parent got wrong, for the challenge suite once published.
    challenge_additions: list[ChallengeCase] = field(default_factory=list)


def store_from_settings(settings: Settings) -> ArtifactStore:
    """The artifact store the settings name."""
    artifacts = settings.artifacts
    return ArtifactStore(artifacts.store_url, allowed_schemes=artifacts.allowed_schemes,
                         max_bytes=artifacts.max_artifact_bytes)


class IncrementalUpdater:
    """Turns training requests into model versions, keeping base models resident.

    Parameters
    ----------
    settings
        Learner hyperparameters, task settings and the artifact store.
    models
        The resident base models (shared between updates; a fresh LRU by default).
    store
        Where adapters go (from the settings by default).
    """

    def __init__(self, settings: Settings, *, models: ResidentModels | None = None,
                 store: ArtifactStore | None = None,
                 device: ComputeDevice | None = None) -> None:
        cfg = settings.learner
        self.settings = settings
        self.device = device or select_device(cfg.device, cfg.torch_threads)
        self.models = models or ResidentModels(capacity=cfg.resident_models)
        self.store = store or store_from_settings(settings)
        self.gate = GateRule(cfg.min_improvement, cfg.replay_tolerance, cfg.challenge_tolerance,
                             min_stability=cfg.min_prompt_stability)
        # learner.promotion = "canary": a gate-passing version is a candidate that serving
        # canaries and the worker's A/B test promotes or rejects on live feedback.
        self.passed_status = (VersionStatus.CANDIDATE if cfg.promotion == "canary"
                              else VersionStatus.PROMOTED)
        self.train_config = TrainConfig(
            learning_rate=cfg.learning_rate, weight_decay=cfg.weight_decay,
            batch_size=cfg.batch_size, epochs=cfg.epochs, max_steps=cfg.max_steps,
            eval_every=cfg.eval_every, patience=cfg.patience, l2_to_parent=cfg.l2_to_parent,
            seed=cfg.seed)
        self._pool_file = GatePoolFile(self.store.fs, self.store.root)
        self._gate_pools: dict[str, GatePool] = {}

    # -- the gate pool ----------------------------------------------------------------------

    def gate_pool(self, task: str) -> GatePool:
        """The task's pool of earlier held-out examples (read from the store on first use)."""
        if task not in self._gate_pools:
            cfg = self.settings.learner
            pool = GatePool(capacity=cfg.gate_pool_size, max_bytes=cfg.gate_pool_max_bytes,
                            holdout_fraction=cfg.holdout_fraction, seed=cfg.seed)
            if cfg.gate_pool_size:
                self._pool_file.load(task, pool)
            self._gate_pools[task] = pool
        return self._gate_pools[task]

    def clear_gate_pool(self, task: str) -> None:
        """Empty the task's gate pool, in memory and in the store (a fresh experiment)."""
        self.gate_pool(task).clear()
        self._save_pool(task)

    def _save_pool(self, task: str) -> None:
        if not self.settings.learner.gate_pool_size:
            return
        try:
            self._pool_file.save(task, self.gate_pool(task))
        except OSError as exc:  # the next restart starts from the last saved pool
            log.warning("gate pool of %s not saved to %s: %s", task,
                        self._pool_file.path(task), exc)

    def _pool_after(self, task: str, split: RequestSplit) -> None:
        """Pool the request's held-out new examples; drop any pooled text it trained on."""
        cfg = self.settings.learner
        pool = self.gate_pool(task)
        # Held out by content but trained on: a request whose every new example hashed to
        # the holdout lent one to training (split._take_by_content).
        pool.withdraw(e.input for e in (*split.train, *split.validation)
                      if held_out(e.input, cfg.holdout_fraction, cfg.seed))
        pool.admit(split.holdout_new)
        self._save_pool(task)

    # -- resolution -------------------------------------------------------------------------

    def _kind(self, request: TrainingRequest, task: TaskSettings) -> TaskKind:
        """The settings choose a configured task's kind; the request's serves the others.

        A request cannot say whether its ``task_kind`` was chosen or defaulted (encoders
        write defaults), so a disagreement is logged rather than refused.
        """
        if request.task not in self.settings.tasks:
            return request.task_kind
        if request.task_kind is not task.kind:
            log.info("request %s says %s; task %s is configured as %s: using %s", request.id,
                     request.task_kind, request.task, task.kind, task.kind)
        return task.kind

    def _parent(self, request: TrainingRequest, versions: VersionLog,
                domain: str | None = None) -> ModelVersion | None:
        if request.parent_version is None:
            # With an adapter per domain (``domain`` given) the domain's own head continues.
            return (versions.head(request.task) if domain is None
                    else versions.domain_head(request.task, domain))
        if request.parent_version not in versions:
            raise TrainingRequestError(f"request {request.id}: parent version "
                                       f"{request.parent_version!r} is not in the registry")
        parent = versions.get(request.parent_version)
        if parent.task != request.task:
            raise TrainingRequestError(f"request {request.id}: parent {parent.version_id} "
                                       f"belongs to task {parent.task}, not {request.task}")
        return parent

    @staticmethod
    def _labels(request: TrainingRequest, task: TaskSettings,
                parent_labels: tuple[str, ...]) -> tuple[str, ...]:
        asked = tuple(request.labels or ())
        if parent_labels:
            if asked and asked != parent_labels:
                raise TrainingRequestError(f"request {request.id}: labels {list(asked)} differ "
                                           f"from the parent's {list(parent_labels)}")
            return parent_labels
        return asked or tuple(task.labels) or tuple(sorted({e.target for e in request.examples}))

    def _task_model(self, kind: TaskKind, base: Any, request: TrainingRequest,
                    task: TaskSettings, parent_meta: AdapterMetadata | None) -> Any:
        cfg = self.settings.learner
        if kind is TaskKind.CLASSIFICATION:
            labels = self._labels(request, task, parent_meta.labels if parent_meta else ())
            model = ClassificationTask(base.tokenizer, labels, self.device,
                                       max_length=cfg.max_length)
        else:
            ref = (request.prompt_template_id or task.prompt_template_id
                   or (parent_meta.prompt_template_id if parent_meta else None))
            model = GenerationTask(base.tokenizer, get_template(ref), self.device,
                                   max_length=cfg.max_length, max_new_tokens=cfg.max_new_tokens)
        model.check(request.examples)
        return model

    # -- scoring ----------------------------------------------------------------------------

    def _score(self, task_model: Any, model: Any, split: RequestSplit,
               suite: ChallengeSuite) -> Metrics:
        metrics: Metrics = {}
        for part, examples in (("holdout", split.holdout_new), ("replay", split.holdout_replay)):
            if examples:
                score, loss = task_model.evaluate(model, list(examples))
                metrics[f"{part}_score"], metrics[f"{part}_loss"] = score, loss
                metrics[f"{part}_count"] = float(len(examples))  # the gate's resolution
        if len(suite):
            hits = task_model.score_answers(model, [c.input for c in suite],
                                            [c.expected for c in suite])
            metrics["challenge_score"] = sum(hits) / len(hits)
            metrics["challenge_count"] = float(len(hits))
            for tag in suite.tags():
                tagged = [h for h, c in zip(hits, suite, strict=True) if tag in c.tags]
                metrics[f"challenge.{tag}"] = sum(tagged) / len(tagged)
        return metrics

    # -- the update -------------------------------------------------------------------------

    def update(self, request: TrainingRequest, versions: VersionLog) -> UpdateResult:
        """Train, gate and store one request; return the event (not yet published)."""
        timings: dict[str, float] = {}
        started = time.perf_counter()
        cfg = self.settings.learner
        task = self.settings.task(request.task)
        kind = self._kind(request, task)
        version_id = version_id_for(request.task, request.id)
        split = split_request(request, holdout_fraction=cfg.holdout_fraction,
                              validation_fraction=cfg.validation_fraction, seed=cfg.seed)
        if not split.holdout_new:
            raise TrainingRequestError(f"request {request.id} needs at least two new examples "
                                       "(one to train on, one for the gate)")
        domain = request_domain(request) if task.adapter_per_domain else None
        parent = self._parent(request, versions, domain)
        # Evidence across updates: the pooled held-out examples of the new examples' domains.
        pooled = tuple(self.gate_pool(request.task).examples(
            {e.domain for e in request.examples if e.origin is ExampleOrigin.NEW},
            exclude=[e.input for e in request.examples]))
        gate_split = replace(split, holdout_new=split.holdout_new + pooled)
        workdir = Path(tempfile.mkdtemp(prefix="driftloop-update-"))
        try:
            parent_dir = parent_meta = None
            if parent is not None:
                parent_dir, parent_meta = self._fetch_start(parent, kind, workdir)
            base_id = parent.base_model if parent else (task.base_model
                                                        or default_base_model(kind))
            mark = time.perf_counter()
            base = self.models.get(base_id, kind)
            timings["base_model_seconds"] = time.perf_counter() - mark
            # Cross-domain transfer: a new domain starts from the closest domain's head.
            domain_start = None if domain is None else plan_domain_start(
                request, versions, domain=domain, parent=parent, base=base,
                transfer=task.domain_transfer, device=self.device.device,
                max_length=cfg.max_length)
            if domain_start is not None:
                timings["centroid_seconds"] = domain_start.seconds
                if domain_start.start is not None and domain_start.start is not parent:
                    parent_dir, parent_meta = self._fetch_start(domain_start.start, kind, workdir)
            task_model = self._task_model(kind, base, request, task, parent_meta)
            suite = ChallengeSuite.load(task.challenge_suite)
            spec = LoraSpec(cfg.lora_r, cfg.lora_alpha, cfg.lora_dropout)
            seed_everything(cfg.seed)  # the untrained head's initialisation
            model = task_model.build(base.fresh_copy(), spec, parent_dir)
            # After the student's seeded initialisation: loading a teacher draws random numbers.
            distillation = distillation_for(task, kind, gate_split, task_model, versions,
                                            models=self.models, store=self.store, workdir=workdir)

            mark = time.perf_counter()
            before = self._score(task_model, model, gate_split, suite)
            parent_misses: list[ChallengeCase] = []
            if task.challenge_suite is not None and task.challenge_growth > 0:
                inputs = [e.input for e in split.holdout_new]
                targets = [e.target for e in split.holdout_new]
                parent_misses = cases_from_errors(
                    inputs, targets, task_model.score_answers(model, inputs, targets),
                    source=request.id, limit=task.challenge_growth)
            timings["score_parent_seconds"] = time.perf_counter() - mark
            report = train_adapter(distillation.wrap(task_model), model, list(split.train),
                                   list(split.validation), self.train_config)
            timings["train_seconds"] = report.seconds
            mark = time.perf_counter()
            after = self._score(task_model, model, gate_split, suite) | distillation.metrics
            # Prompts in the loop: the candidate's probes under paraphrases of its template.
            after |= stability_metrics(task_model, model, suite, cfg.prompt_stability_probes)
            timings["score_candidate_seconds"] = time.perf_counter() - mark
            decision = distillation.gate(self.gate.decide(before, after), after)
            for metrics in (before, after):  # how much of the holdout came from the pool
                metrics["holdout_pooled_count"] = float(len(pooled))

            mark = time.perf_counter()
            metadata = AdapterMetadata(
                kind, base_id, version_id, tuple(getattr(task_model, "labels", ())),
                task_model.template.ref if kind is TaskKind.GENERATION else None)
            stored = self.store.put(save_adapter(model, workdir / "candidate", metadata))
            timings["store_seconds"] = time.perf_counter() - mark
            timings["update_seconds"] = time.perf_counter() - started
            del model
            event = ModelVersion(
                version_id=version_id, ts=time.time(), task=request.task, base_model=base_id,
                parent_version=parent.version_id if parent else None,
                adapter_uri=stored.uri, sha256=stored.sha256, size_bytes=stored.size_bytes,
                training_request_id=request.id, prompt_template_id=metadata.prompt_template_id,
                metrics_before=before, metrics_after=after,
                status=self.passed_status if decision.promote else VersionStatus.REJECTED,
                reason=decision.summary,
                metadata=self._metadata(task_model, kind, split, report, timings)
                | _pool_metadata(pooled) | distillation.lineage,
            )
            if domain_start is not None:  # the lineage's domain, centroid and donor
                event = event.model_copy(
                    update={"metadata": event.metadata | domain_start.metadata()})
            self._pool_after(request.task, split)
            log.info("%s %s: %s (gate on %d held-out, %d of them pooled)", event.version_id,
                     event.status, decision.summary, len(gate_split.holdout_new), len(pooled))
            return UpdateResult(event, decision, report, split, timings,
                                parent_misses if decision.promote else [])
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    def _fetch_start(self, version: ModelVersion, kind: TaskKind,
                     workdir: Path) -> tuple[Path, AdapterMetadata]:
        """The adapter an update continues from, verified, and its driftloop metadata."""
        folder = self.store.fetch(version.adapter_uri, version.sha256, workdir)
        meta = read_metadata(folder)
        if meta.task_kind is not kind:
            raise TrainingRequestError(f"parent {version.version_id} is a "
                                       f"{meta.task_kind} adapter, not {kind}")
        return folder, meta

    def _metadata(self, task_model: Any, kind: TaskKind, split: RequestSplit,
                  report: TrainReport, timings: dict[str, float]) -> dict[str, Any]:
        counts = {name: len(getattr(split, name))
                  for name in ("train", "validation", "holdout_new", "holdout_replay")}
        return {
            "task_kind": kind.value,
            "score_metric": task_model.score_name,
            "labels": list(getattr(task_model, "labels", ())),
            "examples": counts,
            "steps": report.steps,
            "stopped": report.stopped,
            "examples_per_second": round(report.examples_per_second, 3),
            "device": self.device.type,
            "timings": {k: round(v, 4) for k, v in timings.items()},
            **prompt_record(task_model),
        }


def _pool_metadata(pooled: Sequence[TrainingExample]) -> dict[str, Any]:
    """The gate pool's share of the holdout, per domain, for the version's metadata.

    >>> _pool_metadata([TrainingExample(input="x", target="a", domain="nyt")])
    {'gate_pool': {'pooled': 1, 'domains': {'nyt': 1}}}
    """
    domains: dict[str, int] = {}
    for example in pooled:
        domains[example.domain] = domains.get(example.domain, 0) + 1
    return {"gate_pool": {"pooled": len(pooled), "domains": dict(sorted(domains.items()))}}


def examples_of(pairs: Sequence[tuple[str, str]], **fields: Any) -> list[TrainingExample]:
    """Training examples from ``(input, target)`` pairs (a convenience for tools and tests)."""
    return [TrainingExample(input=i, target=t, **fields) for i, t in pairs]
