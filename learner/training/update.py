"""One training request in, one gated, stored model version out (no Kafka here).

:meth:`IncrementalUpdater.update` is a short sequence of named steps: plan the update
(:mod:`.plan`: split, lineage, parent, the gate pool's share), fetch where it starts (the
parent's adapter, the resident base model, a new domain's closest head by
:mod:`.transfer`), build the task model and the trainable copy, score the parent, train
(:mod:`.loop`, with a teacher by :mod:`.distill`), score the candidate on the same texts
(:mod:`driftloop.learner.gate.evidence`), apply the gate rule, store the adapter by sha256
and return the :class:`~driftloop.schemas.ModelVersion` event to publish (:mod:`.record`).
"""

from __future__ import annotations

import copy
import logging
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

from ...schemas.enums import ExampleOrigin, TaskKind, VersionStatus
from ...schemas.events import ModelVersion, TrainingExample, TrainingRequest
from ...schemas.settings import Settings
from ..errors import FederationError, TrainingRequestError
from ..gate.challenges import ChallengeCase, ChallengeSuite
from ..gate.cross_fit import Fold, folds_for
from ..gate.evidence import Answerer, Metrics, Outcomes, parent_misses, score_for_gate
from ..gate.paired import PairedComparison, compare, pool, stratify_weights
from ..gate.parent_scores import ParentScores
from ..gate.perturb import robustness_suite
from ..gate.pool import GatePool
from ..gate.pool_file import GatePoolFile, TaskGatePools
from ..gate.rule import GateDecision, GateRule
from ..gate.second_look import Ledger, SecondLooks, digests, second_look
from ..gate.slices import slice_metrics
from ..gate.split import RequestSplit
from ..gate.stability import stability_metrics
from ..models.adapters import AdapterMetadata, LoraSpec, read_metadata, save_adapter
from ..models.classification import ClassificationTask
from ..models.device import ComputeDevice, select_device
from ..models.generation import GenerationTask
from ..models.memory import release_free_memory
from ..models.prompt_policy import PromptPolicy
from ..models.prompts import normalize_answer
from ..models.resident import BaseModel, ResidentModels, default_base_model, strip_adapters
from ..models.retrieval import RetrievalBank, RetrievalClassifier
from ..models.task_model import Evaluation, TaskModel, task_model_for
from ..registry.examples import with_referenced_examples
from ..registry.store import ArtifactStore, StoredArtifact
from ..registry.version_log import VersionLog
from ..trust import Trust
from .arms import (
    RETRIEVAL_KEY,
    bank_of,
    choose_arm,
    new_bank,
    retrieval_view,
    save_retrieval_candidate,
)
from .challenger import challenger_for
from .data_parallel import RankPool, check_devices, data_parallel_processes
from .distill import Distillation, KeptTeacher, distillation_for
from .domain_merge import merge_adapter_folders
from .keep_parent import KeepingParent, parent_logits
from .loop import TrainConfig, TrainReport, seed_everything, train_adapter
from .plan import UpdatePlan, labels_for, plan_update
from .prompt_arm import (
    PromptCandidate,
    PromptSearch,
    prompted,
    revisions,
    save_prompt_candidate,
    search_prompt,
    worked_examples,
)
from .record import pool_metadata, update_metadata, version_event
from .synthesis import (
    SynthesisPlan,
    SynthesisReport,
    TextWriter,
    failed_probes,
    paraphraser,
    synthesize,
)
from .transfer import DomainStart, plan_domain_start

__all__ = ["IncrementalUpdater", "UpdateResult", "store_from_settings"]

log = logging.getLogger(__name__)


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
    also: list[ModelVersion] = field(default_factory=list)
    """Events to publish after :attr:`event`: an earlier candidate of the same parent that
    its second look promoted (:mod:`driftloop.learner.gate.second_look`)."""
    request: TrainingRequest | None = None
    """The request as trained: the examples it named by reference read in (checked)."""

    @property
    def events(self) -> list[ModelVersion]:
        """Every event of the update, in the order they are published."""
        return [self.event, *self.also]


@dataclass(slots=True)
class _Start:
    """Where the candidate starts: the adapter folder it continues, and the base model."""

    base: BaseModel
    adapter_dir: Path | None = None
    adapter_meta: AdapterMetadata | None = None
    adapter_version: str | None = None
    """The version whose adapter :attr:`adapter_dir` holds (None: an untrained start)."""
    domain_start: DomainStart | None = None
    parent_dir: Path | None = None
    """The served parent's adapter, when the start is a challenger (:mod:`.challenger`), or
    the incumbent's."""
    challenger: ModelVersion | None = None
    incumbent: ModelVersion | None = None
    """What serves a new domain's traffic now (the task's latest promotion), when a domain's
    first version is judged against it rather than its start
    (``learner.gate_domain_incumbent``)."""


@dataclass(slots=True)
class _Look:
    """A second look due in this update: the earlier candidate's ledger, the request's texts
    that are new evidence about it, and the parent's results on them."""

    ledger: Ledger
    fresh: list[TrainingExample]
    parent: Evaluation | None = None


def _same_answer(given: str, target: str) -> bool:
    """A generated answer says the target (case, spaces and final punctuation aside)."""
    return normalize_answer(given) == normalize_answer(target)


def store_from_settings(settings: Settings) -> ArtifactStore:
    """The artifact store the settings name."""
    artifacts = settings.artifacts
    return ArtifactStore(artifacts.store_url, allowed_schemes=artifacts.allowed_schemes,
                         max_bytes=artifacts.max_artifact_bytes)


@contextmanager
def _phase(timings: dict[str, float], name: str) -> Iterator[None]:
    """Add the seconds the block takes to ``timings[name]``."""
    mark = time.perf_counter()
    try:
        yield
    finally:
        timings[name] = timings.get(name, 0.0) + time.perf_counter() - mark


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
    device
        Where to compute (from the settings by default: CUDA when present).
    """

    def __init__(self, settings: Settings, *, models: ResidentModels | None = None,
                 store: ArtifactStore | None = None,
                 device: ComputeDevice | None = None) -> None:
        cfg = settings.learner
        self.settings = settings
        self.device = device or select_device(cfg.device, cfg.torch_threads)
        self.models = models or ResidentModels.for_learner(cfg)
        self.store = store or store_from_settings(settings)
        self.gate = GateRule(cfg.min_improvement, cfg.replay_tolerance, cfg.challenge_tolerance,
                             min_stability=cfg.min_prompt_stability, alpha=cfg.gate_alpha,
                             evidence=cfg.gate_evidence, robust_tolerance=cfg.robust_tolerance,
                             slice_tolerance=cfg.slice_tolerance)
        # learner.promotion = "canary": a gate-passing version is a candidate that serving
        # canaries and the worker's A/B test promotes or rejects on live feedback.
        self.passed_status = (VersionStatus.CANDIDATE if cfg.promotion == "canary"
                              else VersionStatus.PROMOTED)
        self.train_config = TrainConfig(
            learning_rate=cfg.learning_rate, weight_decay=cfg.weight_decay,
            batch_size=cfg.batch_size, epochs=cfg.epochs, max_steps=cfg.max_steps,
            min_steps=cfg.min_steps, eval_every=cfg.eval_every, patience=cfg.patience,
            l2_to_parent=cfg.l2_to_parent,
            interpolation=cfg.interpolation,
            interpolation_choices=tuple(cfg.interpolation_choices),
            warmup_steps=cfg.warmup_steps,
            averaging=cfg.averaging, curriculum=cfg.curriculum, seed=cfg.seed)
        self.trust = Trust(settings)
        self.parent_scores = ParentScores()
        """The gate's results of recent parents, per example (scored once per parent)."""
        self.second_looks = SecondLooks()
        """Rejected candidates' evidence, for their second look (``gate_second_look``)."""
        # More processes than GPUs fails every update: say so at start, not per request.
        check_devices(data_parallel_processes(cfg.data_parallel), self.device)
        self._said_one_process = False
        self._ranks: RankPool | None = None
        """The processes of data-parallel updates (``learner.data_parallel``), once started."""
        self.pools = TaskGatePools(
            GatePoolFile(self.store.fs, self.store.root, deployment=settings.deployment_id),
            capacity=cfg.gate_pool_size,
            max_bytes=cfg.gate_pool_max_bytes, holdout_fraction=cfg.holdout_fraction,
            seed=cfg.seed)

    def close(self) -> None:
        """Stop the processes of data-parallel updates, if any run (a later update starts
        them again)."""
        if self._ranks is not None:
            self._ranks.close()
            self._ranks = None

    def start_processes(self) -> bool:
        """Start the processes of data-parallel updates now instead of at the first update,
        which would wait seconds for their imports (the learner calls it at boot); True when
        the settings spread updates over processes."""
        ranks = self._rank_pool()
        if ranks is None:
            return False
        ranks.start()
        return True

    def _rank_pool(self) -> RankPool | None:
        """The kept processes of data-parallel updates (made, not started, when missing; a
        pool that failed starts again at its next job), or None when the settings train in
        this process: ``data_parallel`` 1, or gradient checkpointing, whose hooks on the
        base do not cross to another process."""
        cfg = self.settings.learner
        processes = data_parallel_processes(cfg.data_parallel)
        if processes < 2 or cfg.base_quantization is not None or cfg.gradient_checkpointing:
            return None
        if self._ranks is None:
            self._ranks = RankPool(processes, self.device, torch_threads=cfg.torch_threads)
        return self._ranks

    def _train(self, trainable: Any, model: Any, plan: UpdatePlan,
               config: TrainConfig) -> TrainReport:
        """Train the candidate in place: in this process, or spread over
        ``learner.data_parallel`` processes (:mod:`.data_parallel`) when the trainable is
        a plain task model on an unquantized base without gradient checkpointing (its hooks
        do not cross to another process). A teacher's or the parent's soft answers
        (distillation, ``keep_parent``) train in this process too, said once per process."""
        cfg = self.settings.learner
        train, validation = list(plan.split.train), list(plan.split.validation)
        if data_parallel_processes(cfg.data_parallel) > 1:
            ranks = self._rank_pool()
            if ranks is not None and isinstance(trainable, (ClassificationTask, GenerationTask)):
                return ranks.train(trainable, model, train, validation, config)
            if not self._said_one_process:
                self._said_one_process = True
                log.warning("learner.data_parallel = %d: %s trains in this process (data "
                            "parallel takes a plain task model on an unquantized base, "
                            "without gradient checkpointing)",
                            cfg.data_parallel, plan.request.id)
        return train_adapter(trainable, model, train, validation, config)

    def train_config_for(self, *, first: bool) -> TrainConfig:
        """The optimizer's rules for an update; ``first``: from an untrained start, which is
        nothing to stay near nor to protect from a fresh optimizer's first steps (no
        interpolation, no warm-up) and may have a step floor of its own."""
        if not first:
            return self.train_config
        return replace(self.train_config, interpolation=1.0, interpolation_choices=(),
                       warmup_steps=0,
                       min_steps=max(self.train_config.min_steps,
                                     self.settings.learner.first_min_steps))

    def gate_pool(self, task: str) -> GatePool:
        """The task's pool of earlier held-out examples (read from the store on first use)."""
        return self.pools.pool(task)

    def clear_gate_pool(self, task: str) -> None:
        """Empty the task's gate pool, in memory and in the store (a fresh experiment)."""
        self.pools.clear(task)

    def update(self, request: TrainingRequest, versions: VersionLog, *,
               batch_size: int | None = None) -> UpdateResult:
        """Train, gate and store one request; return the event (not yet published).

        ``batch_size`` overrides the settings' for this update (the learner halves it to
        retry a request that ran out of memory).
        """
        timings: dict[str, float] = {}
        started = time.perf_counter()
        referenced = request.examples_ref  # examples kept in the store: read and checked
        request = with_referenced_examples(
            request, self.store, max_bytes=self.settings.learner.examples_ref_max_bytes)
        plan = plan_update(request, versions, self.settings, self.pools.pool(request.task))
        # The parent's (and a registry teacher's) base model is what an event on
        # model-versions says: checked before anything reaches from_pretrained.
        self.trust.check_base_model(plan.base_model)
        for teacher in (plan.task.teacher, plan.task.synthetic_teacher):
            if teacher is not None and teacher in versions:
                self.trust.check_base_model(versions.get(teacher).base_model)
        workdir = Path(tempfile.mkdtemp(prefix="driftloop-update-"))
        lending = ExitStack()  # the resident base weights the candidate is built on
        try:
            start = self._start(plan, versions, workdir, timings)
            self._domain_incumbent(plan, versions, start, workdir)
            task_model = self._task_model(plan, start)
            suite = ChallengeSuite.load(plan.task.challenge_suite)
            # Built before the seeded trainable copy: loading draws random numbers.
            served = (task_model.build(start.base.fresh_copy(), self._lora_spec(),
                                       start.parent_dir)
                      if start.challenger is not None or start.incumbent is not None
                      else None)
            # Before the base is lent: a paraphrase check's writer may be that very base.
            robust = self._robustness(plan)
            model = self._trainable(start, task_model, lending)
            kept = KeptTeacher(versions, models=self.models, store=self.store,
                               workdir=workdir / "teacher")
            with _phase(timings, "synthesis_seconds"):
                plan, synthetic = self._synthesize(plan, task_model,
                                                   model if served is None else served,
                                                   start.adapter_dir is not None, suite=suite,
                                                   kept=kept)
            if kept.ref != plan.task.teacher:
                kept.release()
            if synthetic is None:  # a phase only when variants were written
                timings.pop("synthesis_seconds")
            elif synthetic.trained_probes:  # a regression check on the probes not trained
                suite = suite.without(synthetic.trained_probes)
            # After the student's seeded initialisation: loading a teacher draws random
            # numbers. The teacher reads the variants too.
            distillation = distillation_for(plan.task, plan.kind, plan.gate_split, task_model,
                                            versions, models=self.models, store=self.store,
                                            workdir=workdir, kept=kept)
            parent_hits: Outcomes = {}
            judged = self._paired_gate(plan, start)
            folds = self._folds(plan, judged)
            look = self._look_due(plan, versions)
            with _phase(timings, "score_parent_seconds"):
                parent_folder = start.parent_dir if served is not None else start.adapter_dir
                parent_bank, parent_model = self._with_bank(plan, task_model, parent_folder,
                                                            served if served is not None
                                                            else model)
                scored_as = (plan.parent.version_id if served is not None and plan.parent
                             else start.incumbent.version_id if start.incumbent is not None
                             else start.adapter_version)
                # A version served under a prompt policy answers under it (prompt_arm.py).
                parent_policy = (PromptPolicy.load(parent_folder)
                                 if parent_folder is not None
                                 and plan.kind is TaskKind.GENERATION else None)
                parent_task = prompted(task_model, parent_policy, parent_model)
                key = self._parent_key(scored_as, parent_task)
                evaluate = self._parent_evaluator(key, parent_task, parent_model)
                before = score_for_gate(
                    parent_task, parent_model, plan.gate_split, suite, parent_hits,
                    evaluate=evaluate,
                    answer=self._parent_answerer(key, parent_task, parent_model), robust=robust)
                misses = self._parent_misses(plan, parent_task, parent_model, parent_hits)
                score_parent = evaluate or partial(task_model.evaluate_each, parent_model)
                fold_parent = (score_parent([e for fold in folds for e in fold.scored])
                               if folds else None)
                if look is not None:  # before the start's weights are trained in place
                    look.parent = score_parent(look.fresh)
            retrieval = share = None
            if self._retrieval(plan) and parent_folder is not None:
                with _phase(timings, "retrieval_seconds"):
                    retrieval, share = self._retrieval_candidate(
                        plan, task_model, parent_model, parent_bank, suite, robust)
            prompt: PromptCandidate | None = None
            search: PromptSearch | None = None
            if self._prompt_arm(plan) and parent_folder is not None:
                with _phase(timings, "prompt_arm_seconds"):  # before the weights train
                    prompt, search = self._prompt_candidate(
                        plan, task_model, parent_model, parent_policy, suite, robust)
            if isinstance(parent_model, RetrievalClassifier):
                parent_model.close()
            del served, parent_model
            config = self.train_config_for(first=start.adapter_dir is None)
            if batch_size is not None:
                config = replace(config, batch_size=batch_size)
            trainable = self._keeping_parent(plan, start, task_model, distillation, model)
            cross_fit = None
            if fold_parent is not None:
                with _phase(timings, "cross_fit_seconds"):
                    cross_fit = self._cross_fit(folds, fold_parent, trainable, task_model, model,
                                                config)
            report = self._train(trainable, model, plan, config)
            timings["train_seconds"] = report.seconds
            candidate_hits: Outcomes = {}
            with _phase(timings, "score_candidate_seconds"):
                trained_bank, candidate = self._trained_bank(plan, task_model, model, share)
                after = self._score_candidate(plan, task_model, candidate, suite, distillation,
                                              candidate_hits, robust)
                if isinstance(candidate, RetrievalClassifier):
                    candidate.close()
            before |= self._slices(plan, parent_hits)
            arm: dict[str, Any] = {}
            other = (("retrieval", retrieval) if retrieval is not None
                     else ("prompt", prompt) if prompt is not None else None)
            if other is None:
                decision, after = self._judge(plan, self.gate, before, after, parent_hits,
                                              candidate_hits, distillation, cross_fit, len(folds),
                                              paired_gate=judged)
            else:
                # Two candidates, two shots at the gate: each at half the level (a union
                # bound keeps the update's false-promotion rate at gate_alpha).
                name, rival = other
                half = replace(self.gate, alpha=self.gate.alpha / 2)
                trained = self._judge(plan, half, before, after, parent_hits, candidate_hits,
                                      distillation, cross_fit, len(folds), paired_gate=judged)
                cheap = self._judge(plan, half, before, rival.metrics | distillation.metrics,
                                    parent_hits, rival.outcomes, distillation, None, 0,
                                    paired_gate=judged)
                choice = choose_arm(candidate_hits, rival.outcomes, self.gate.alpha,
                                    passed=(trained[0].promote, cheap[0].promote), cheap=name)
                arm = choice.metadata(rival.metrics, after)
                decision, after = cheap if choice.arm == name else trained
            if search is not None:
                arm["prompt_search"] = search.metadata()
            for metrics in (before, after):  # how much of the holdout came from the pool
                metrics["holdout_pooled_count"] = float(len(plan.pooled))
            also: list[ModelVersion] = []
            looked: dict[str, Any] = {}
            if look is not None and not decision.promote:
                with _phase(timings, "second_look_seconds"):
                    looked, also = self._second_look(plan, versions, look, task_model, start,
                                                     workdir)
            # A promoted earlier candidate is the next parent: nothing left to look at.
            self._keep_ledger(plan, decision, before, after, parent_hits, candidate_hits,
                              eligible=not arm and not also)
            base_digest = self.trust.weights_digest(plan.base_model)
            template_ref = _template_ref(task_model)
            with _phase(timings, "store_seconds"):
                if arm.get("arm") == "retrieval":
                    assert retrieval is not None and parent_folder is not None
                    stored = self._store(plan, task_model, model, workdir, base_digest,
                                         bank=retrieval.bank, weights_from=parent_folder)
                elif arm.get("arm") == "prompt":
                    assert prompt is not None and parent_folder is not None
                    template_ref = prompt.policy.template_ref
                    arm["prompt_policy"] = prompt.policy.metadata()
                    stored = self._store(plan, task_model, model, workdir, base_digest,
                                         policy=prompt.policy, weights_from=parent_folder)
                else:
                    stored = self._store(plan, task_model, model, workdir, base_digest,
                                         bank=trained_bank)
            timings["update_seconds"] = time.perf_counter() - started
        finally:
            lending.close()  # the base's weights without the candidate's layers, for the next
            shutil.rmtree(workdir, ignore_errors=True)
            release_free_memory()  # what the update freed goes back to the system
        lineage = start.domain_start.metadata() if start.domain_start is not None else {}
        if start.challenger is not None:
            lineage = {**lineage, "continued_from": start.challenger.version_id}
        if start.incumbent is not None:
            lineage = {**lineage, "judged_against": start.incumbent.version_id}
        event = version_event(
            plan, stored, before=before, after=after, decision=decision,
            passed=self.passed_status, prompt_template_id=template_ref,
            labels=task_model.labels, max_length=self.settings.learner.max_length,
            metadata=(update_metadata(task_model, plan, report, timings, self.device.type)
                      | {"batch_size": config.batch_size,
                         "deployment": self.settings.deployment_id}
                      | ({"base_weights_sha256": base_digest} if base_digest else {})
                      | pool_metadata(plan.pooled) | arm
                      | ({"keep_parent": {"weight": trainable.keep,
                                          "replayed": len(trainable.parent)}}
                         if isinstance(trainable, KeepingParent) else {})
                      | ({"synthetic": synthetic.metadata()} if synthetic else {})
                      | distillation.lineage | lineage
                      | ({"second_look": looked} if looked else {})
                      | ({"examples_ref": {"sha256": referenced.sha256,
                                           "count": referenced.count}}
                         if referenced is not None else {})))
        self.pools.after_update(request.task, trained=(*plan.split.train,
                                                       *plan.split.validation),
                                holdout=plan.split.holdout_new)
        log.info("%s %s: %s (gate on %d held-out, %d of them pooled)", event.version_id,
                 event.status, decision.summary, len(plan.gate_split.holdout_new),
                 len(plan.pooled))
        return UpdateResult(event, decision, report, plan.split, timings,
                            misses if decision.promote else [], also, request)

    # -- the steps ----------------------------------------------------------------------------

    def _start(self, plan: UpdatePlan, versions: VersionLog, workdir: Path,
               timings: dict[str, float]) -> _Start:
        """The parent's adapter (verified), the base model, and a new domain's donor head."""
        folder = meta = None
        if plan.parent is not None:
            with _phase(timings, "fetch_parent_seconds"):
                folder, meta = self._fetch_adapter(plan.parent, plan.kind, workdir)
        with _phase(timings, "base_model_seconds"):
            base = self.models.get(plan.base_model, plan.kind)
        start = _Start(base, folder, meta, plan.parent.version_id if plan.parent else None)
        if plan.domain is None:
            self._continue_challenger(plan, versions, start, workdir)
            return start
        cfg = self.settings.learner
        # Cross-domain transfer: a new domain starts from the closest domain's head.
        start.domain_start = plan_domain_start(
            plan.request, versions, domain=plan.domain, parent=plan.parent, base=base,
            transfer=plan.task.domain_transfer, device=self.device.device,
            max_length=cfg.max_length, merge=plan.task.domain_start == "merge")
        timings["centroid_seconds"] = start.domain_start.seconds
        if merged := start.domain_start.merged_from:
            try:
                with _phase(timings, "merge_start_seconds"):
                    heads = [self._fetch_adapter(h, plan.kind, workdir)[0] for h in merged]
                    start.adapter_dir = merge_adapter_folders(heads, workdir / "merged-start")
            except FederationError as exc:  # heads of other LoRA shapes: the nearest one
                log.warning("request %s: the heads of %s cannot be averaged (%s); starting "
                            "from the closest", plan.request.id, plan.request.task, exc)
                start.domain_start = start.domain_start.nearest_only()
            else:
                start.adapter_meta = read_metadata(start.adapter_dir)
                start.adapter_version = "average of " + " ".join(h.version_id for h in merged)
                return start
        donor = start.domain_start.start
        if donor is not None and donor is not plan.parent:
            start.adapter_dir, start.adapter_meta = self._fetch_adapter(donor, plan.kind,
                                                                        workdir)
            start.adapter_version = donor.version_id
        return start

    def _domain_incumbent(self, plan: UpdatePlan, versions: VersionLog, start: _Start,
                          workdir: Path) -> None:
        """Under ``learner.gate_domain_incumbent``, a domain's first version (no head of its
        own yet) is scored against the version serving that domain's traffic now, the task's
        latest promotion, when it is not the start itself: a head that beats only its start
        could serve the domain worse than before."""
        if (not self.settings.learner.gate_domain_incumbent or plan.parent is not None
                or plan.domain is None or start.adapter_dir is None):
            return
        current = versions.head(plan.request.task)
        if current is None or current.version_id == start.adapter_version:
            return
        start.parent_dir, _ = self._fetch_adapter(current, plan.kind, workdir / "incumbent")
        start.incumbent = current

    def _continue_challenger(self, plan: UpdatePlan, versions: VersionLog, start: _Start,
                             workdir: Path) -> None:
        """Start from the parent's challenger when there is one (the gate still scores the
        served parent)."""
        cfg = self.settings.learner
        if not cfg.continue_rejected or plan.parent is None:
            return
        challenger = challenger_for(versions, plan.parent, alpha=cfg.gate_alpha,
                                    challenge_tolerance=self.gate.challenge_tolerance)
        if challenger is None:
            return
        start.parent_dir = start.adapter_dir
        start.adapter_dir, start.adapter_meta = self._fetch_adapter(
            challenger, plan.kind, workdir / "challenger")
        start.adapter_version = challenger.version_id
        start.challenger = challenger

    def _look_due(self, plan: UpdatePlan, versions: VersionLog) -> _Look | None:
        """The second look this update owes the parent's latest candidate, when it was
        rejected for want of evidence and its ledger is kept (``gate_second_look``)."""
        if not self.settings.learner.gate_second_look or plan.parent is None:
            return None
        challenger = challenger_for(versions, plan.parent, alpha=self.gate.alpha,
                                    challenge_tolerance=self.gate.challenge_tolerance)
        if challenger is None:
            return None
        ledger = self.second_looks.get(plan.request.task, plan.parent.version_id,
                                       challenger.version_id)
        if ledger is None:
            return None
        fresh = ledger.fresh([*plan.gate_split.holdout_new, *plan.split.train,
                              *plan.split.validation])
        return _Look(ledger, fresh) if fresh else None

    def _second_look(self, plan: UpdatePlan, versions: VersionLog, look: _Look,
                     task_model: TaskModel, start: _Start, workdir: Path
                     ) -> tuple[dict[str, Any], list[ModelVersion]]:
        """Score the earlier candidate on the request's new texts, pool them into its
        ledger and judge it again: what the look found (for this update's event), and the
        earlier candidate's promotion event when it passed."""
        assert plan.parent is not None and look.parent is not None
        task = plan.request.task
        self.second_looks.close(task, plan.parent.version_id)  # one more look, not more
        earlier = versions.get(look.ledger.version_id)
        folder, _ = self._fetch_adapter(earlier, plan.kind, workdir / "second-look")
        weights = start.base.fresh_copy()
        strip_adapters(weights)  # the lent base holds this update's candidate's layers
        model = task_model.build(weights, self._lora_spec(), folder)
        _, model = self._with_bank(plan, task_model, folder, model)
        try:
            result = task_model.evaluate_each(model, look.fresh)
        finally:
            if isinstance(model, RetrievalClassifier):
                model.close()
        ledger = look.ledger.add([e.input for e in look.fresh], compare(
            result.hits, look.parent.hits, candidate_scores=result.scores,
            parent_scores=look.parent.scores))
        decision = second_look(self.gate, ledger)
        log.info("%s: %s", earlier.version_id, decision.summary)
        recent = ledger.recent
        looked = {"of": earlier.version_id, "new_texts": len(look.fresh), "texts": recent.n,
                  "effect": round(recent.effect, 4), "p_better": round(recent.p_better, 6),
                  "promoted": decision.promote}
        if not decision.promote:
            return looked, []
        metrics = {**earlier.metrics_after, "second_look_count": float(recent.n),
                   "second_look_effect": recent.effect, "second_look_p_better": recent.p_better}
        return looked, [earlier.with_status(self.passed_status, ts=time.time(),
                                            reason=decision.summary).model_copy(
            update={"metrics_after": metrics,
                    "metadata": {**earlier.metadata, "second_look_by": plan.request.id}})]

    def _keep_ledger(self, plan: UpdatePlan, decision: GateDecision, before: Metrics,
                     after: Metrics, parent_hits: Outcomes, candidate_hits: Outcomes, *,
                     eligible: bool) -> None:
        """After a decision: a rejected candidate's evidence is kept for its second look; a
        promotion ends the parent's ledger."""
        cfg, task = self.settings.learner, plan.request.task
        if not cfg.gate_second_look or plan.parent is None:
            return
        if decision.promote or not eligible or plan.kind is not TaskKind.CLASSIFICATION:
            self.second_looks.close(task, plan.parent.version_id)
            return
        if "holdout" not in parent_hits:
            return
        paired = {part: compare(candidate_hits[part].hits, parent_hits[part].hits,
                                candidate_scores=candidate_hits[part].scores,
                                parent_scores=parent_hits[part].scores)
                  for part in parent_hits}
        trained = (*plan.split.train, *plan.split.validation)
        self.second_looks.open(task, Ledger(
            plan.version_id, plan.parent.version_id, trained=digests(e.input for e in trained),
            counted=digests(e.input for e in plan.gate_split.holdout_new),
            recent=paired["holdout"], old=paired.get("replay"), before=dict(before),
            after=dict(after)))

    def _task_model(self, plan: UpdatePlan, start: _Start) -> TaskModel:
        """The task model of the plan's kind, checked against the request's examples."""
        cfg, meta = self.settings.learner, start.adapter_meta
        labels = (labels_for(plan.request, plan.task, meta.labels if meta else ())
                  if plan.kind is TaskKind.CLASSIFICATION else ())
        template = (plan.request.prompt_template_id or plan.task.prompt_template_id
                    or (meta.prompt_template_id if meta else None))
        model = task_model_for(plan.kind, start.base.tokenizer, self.device, labels=labels,
                               template_ref=template, max_length=cfg.max_length,
                               max_new_tokens=cfg.max_new_tokens)
        model.check(plan.request.examples)
        return model

    def _lora_spec(self) -> LoraSpec:
        cfg = self.settings.learner
        return LoraSpec(cfg.lora_r, cfg.lora_alpha, cfg.lora_dropout)

    def _trainable(self, start: _Start, task_model: TaskModel, lending: ExitStack) -> Any:
        """The start adapter on the resident base (lent until ``lending`` closes: no copy of
        the base weights)."""
        seed_everything(self.settings.learner.seed)  # the untrained head's initialisation
        weights = lending.enter_context(start.base.lent())
        if self.settings.learner.gradient_checkpointing and hasattr(
                weights, "gradient_checkpointing_enable"):
            # Activations recomputed in the backward pass instead of kept (undone on return).
            weights.gradient_checkpointing_enable(
                gradient_checkpointing_kwargs={"use_reentrant": False})
        return task_model.build(weights, self._lora_spec(), start.adapter_dir)

    def _keeping_parent(self, plan: UpdatePlan, start: _Start, task_model: TaskModel,
                        distillation: Distillation, model: Any) -> Any:
        """The task the candidate trains under: with ``learner.keep_parent``, one whose
        replayed examples also learn the parent's soft answers (:mod:`.keep_parent`, taken
        from ``model`` before it trains); else the task (a teacher's, when distilling). A
        first version, a generation task and a task with a teacher keep the labels alone."""
        keep = self.settings.learner.keep_parent
        if (not keep or start.adapter_dir is None or distillation.spec is not None
                or not isinstance(task_model, ClassificationTask)):
            return distillation.wrap(task_model)
        replay = [e for e in (*plan.split.train, *plan.split.validation)
                  if e.origin == ExampleOrigin.REPLAY]
        if not replay:
            return task_model
        return KeepingParent(task_model, parent_logits(task_model, model, replay), keep=keep)

    def _synthesize(self, plan: UpdatePlan, task_model: TaskModel, current: Any,
                    trained: bool, *, suite: ChallengeSuite,
                    kept: KeptTeacher) -> tuple[UpdatePlan, SynthesisReport | None]:
        """The plan with model-written variants of its short domains' training examples
        (and, with the task's ``synthetic_probes``, of the challenge probes ``current``
        fails) in its training part (``learner.synthetic_share``; :mod:`.synthesis`).
        ``current`` is the model the update starts from, which must give each variant of
        an example the label asked for, and so must the task's ``synthetic_teacher``; an
        untrained start (``trained`` False) has no labels to give, so a first version
        trains on real examples only."""
        cfg = self.settings.learner
        spec = SynthesisPlan(share=cfg.synthetic_share, below=cfg.synthetic_below,
                             per_example=cfg.synthetic_per_example,
                             contrast=cfg.synthetic_contrast)
        if not trained or spec.limit(len(plan.split.train)) == 0:
            return plan, None
        probes = []
        if plan.task.synthetic_probes and len(suite):
            newest = [e for e in plan.split.train if e.origin is ExampleOrigin.NEW]
            probes = failed_probes(suite, task_model.predict(current, [c.input for c in suite]),
                                   labels=task_model.labels,
                                   domain=newest[-1].domain if newest else "default")
        if not probes and not spec.sources(plan.split.train):
            return plan, None
        generator = cfg.synthetic_generator or default_base_model(TaskKind.GENERATION)
        self.trust.check_base_model(generator)
        if plan.kind is TaskKind.CLASSIFICATION:
            answer, same = partial(task_model.predict, current), str.__eq__
        else:
            answer, same = partial(task_model.generate, current), _same_answer
        gate = plan.gate_split
        known = [e.input for part in (gate.holdout_new, gate.holdout_replay, gate.validation)
                 for e in part] + [case.input for case in suite]  # no variant is a probe
        teacher = None
        if plan.task.synthetic_teacher is not None:  # kept for distillation if it is its too
            teacher = kept.load(plan.task.synthetic_teacher, device=task_model.device,
                                max_length=task_model.max_length)
        base = self.models.get(generator, TaskKind.GENERATION)
        with base.lent() as weights:  # a private copy when the task trains this very base
            writer = TextWriter(weights, base.tokenizer, self.device.device)
            report = synthesize(plan.split.train, plan=spec, writer=writer, answer=answer,
                                labels=task_model.labels, same=same, known=known,
                                seed=cfg.seed, probes=probes,
                                teacher=None if teacher is None else partial(
                                    teacher.predict, labels=task_model.labels))
        del teacher
        report.generator, report.teacher = generator, plan.task.synthetic_teacher
        if report.trained_probes:
            log.info("request %s: variants of %d failed challenge probes train; the "
                     "challenge check leaves them out", plan.request.id,
                     len(report.trained_probes))
        log.info("request %s: %d of %d model-written variants kept (%s)", plan.request.id,
                 len(report.examples), report.asked, report.dropped)
        split = replace(plan.split, train=plan.split.train + tuple(report.examples))
        return replace(plan, split=split), report

    def _paired_gate(self, plan: UpdatePlan, start: _Start) -> bool:
        """Whether the paired rule judges the candidate: against a served parent always;
        a domain's first version (``adapter_per_domain``, started from other domains'
        heads) under ``learner.gate_domain_start = "paired"``, against that start. Else the
        start is untrained and the scores decide."""
        if plan.parent is not None:
            return True
        return (self.settings.learner.gate_domain_start != "score"
                and plan.domain is not None and start.adapter_dir is not None)

    def _folds(self, plan: UpdatePlan, paired_gate: bool) -> list[Fold]:
        """The fold candidates' data under ``learner.gate_cross_fit`` (and for a domain's
        first version under ``gate_domain_start = "cross-fit"``, two folds at least): only
        for a paired gate whose recent slice is short of ``gate_recent_examples`` texts."""
        cfg = self.settings.learner
        k = cfg.gate_cross_fit
        if plan.parent is None and cfg.gate_domain_start == "cross-fit":
            k = max(k, 2)
        if (k < 2 or not paired_gate
                or len(plan.gate_split.holdout_new) >= cfg.gate_recent_examples):
            return []
        return folds_for(plan.split, k, seed=cfg.seed)

    def _slices(self, plan: UpdatePlan, outcomes: Outcomes) -> Metrics:
        """One version's accuracy per slice of the gate's held-out texts, recent and older
        together (:mod:`driftloop.learner.gate.slices`)."""
        split = plan.gate_split
        examples, hits = [], []
        for part, held in (("holdout", split.holdout_new), ("replay", split.holdout_replay)):
            if part in outcomes:
                examples += held
                hits += outcomes[part].hits
        return slice_metrics(examples, hits, min_examples=self.settings.learner.slice_min_examples)

    def _judge(self, plan: UpdatePlan, rule: GateRule, before: Metrics, after: Metrics,
               parent_hits: Outcomes, candidate_hits: Outcomes, distillation: Distillation,
               cross_fit: PairedComparison | None, folds: int, *,
               paired_gate: bool) -> tuple[GateDecision, Metrics]:
        """The gate's decision on one candidate, and its metrics with the tests' figures."""
        after = after | self._slices(plan, candidate_hits)
        cfg = self.settings.learner
        if paired_gate and plan.parent is None:  # a domain's first version, against its start
            if cfg.gate_domain_start_alpha is not None:
                rule = replace(rule, alpha=cfg.gate_domain_start_alpha * rule.alpha
                               / self.gate.alpha)
            if cfg.gate_domain_start == "paired-scores":
                rule = replace(rule, evidence="scores")
        weights = self._stratified(plan)
        paired = {part: compare(candidate_hits[part].hits, parent_hits[part].hits,
                                candidate_scores=candidate_hits[part].scores,
                                parent_scores=parent_hits[part].scores,
                                weights=weights if part == "holdout" else ())
                  for part in parent_hits}
        if cross_fit is not None:
            paired["holdout"] = pool(paired["holdout"], cross_fit)
        # A first version has no served parent to beat with evidence, only an untrained
        # start (or, for a domain's, other domains' heads under gate_domain_start "score"):
        # the scores decide (better held-out score, or the same and a lower loss).
        decision = distillation.gate(rule.decide(
            before, after, paired if paired_gate else None), after)
        if cross_fit is not None:
            decision = replace(decision, reasons=(
                f"cross-fit: {folds} fold candidates on the {cross_fit.n} new texts "
                f"the candidate trains on: {cross_fit.describe()} (in 'recent')",
                *decision.reasons))
            after["holdout_cross_fit_count"] = float(cross_fit.n)
        for part, comparison in paired.items():  # the tests' figures, with the event
            after |= {f"{part}_effect": comparison.effect,
                      f"{part}_p_better": comparison.p_better,
                      f"{part}_p_worse": comparison.p_worse,
                      f"{part}_score_effect": comparison.score_effect,
                      f"{part}_p_better_scores": comparison.p_better_scores}
        return decision, after

    def _retrieval(self, plan: UpdatePlan) -> bool:
        """Whether this update builds retrieval banks (``learner.retrieval``, classifiers)."""
        return self.settings.learner.retrieval and plan.kind is TaskKind.CLASSIFICATION

    def _with_bank(self, plan: UpdatePlan, task_model: TaskModel, folder: Path | None,
                   model: Any) -> tuple[RetrievalBank | None, Any]:
        """The bank of the adapter at ``folder`` and the model answering as that version
        serves (with the bank's votes); the model alone when neither has a use for one."""
        if plan.kind is not TaskKind.CLASSIFICATION:
            return None, model
        bank = bank_of(folder, task_model)
        if bank is None and not self._retrieval(plan):
            return None, model
        return bank, retrieval_view(model, bank)

    def _retrieval_candidate(self, plan: UpdatePlan, task_model: TaskModel,
                             parent: RetrievalClassifier, bank: RetrievalBank | None,
                             suite: ChallengeSuite, robust: list[tuple[str, TrainingExample]]
                             ) -> tuple[_RetrievalCandidate | None, float]:
        """The parent's adapter with the request's training texts added to its bank, scored
        on the gate's texts (before the parent's weights are trained in place), and the
        neighbours' share fitted on the parent's answers to the request's new texts. No
        candidate when that share is 0 (they do not help the parent there) or when
        ``learner.retrieval_arm`` is off (the share then goes to the trained candidate)."""
        new = {e.input for e in (*plan.split.train, *plan.split.validation)
               if e.origin is ExampleOrigin.NEW}  # replayed ones the parent trained on
        grown = self._bank(plan, task_model, parent, base=bank, fit_on=new)
        if grown.weight == 0.0 or not self.settings.learner.retrieval_arm:
            return None, grown.weight
        parent.bank = grown
        try:
            outcomes: Outcomes = {}
            metrics = score_for_gate(task_model, parent, plan.gate_split, suite, outcomes,
                                     robust=robust)
        finally:
            parent.bank = bank
        return _RetrievalCandidate(grown, outcomes, metrics), grown.weight

    def _prompt_arm(self, plan: UpdatePlan) -> bool:
        """Whether this update builds a prompt candidate (``learner.prompt_arm``, generation
        tasks)."""
        return self.settings.learner.prompt_arm and plan.kind is TaskKind.GENERATION

    def _prompt_candidate(self, plan: UpdatePlan, task_model: TaskModel, parent: Any,
                          policy: PromptPolicy | None, suite: ChallengeSuite,
                          robust: list[tuple[str, TrainingExample]]
                          ) -> tuple[PromptCandidate | None, PromptSearch | None]:
        """The parent's adapter under the revised prompt that answers most of the request's
        new training texts right, scored on the gate's texts (before the parent's weights
        are trained in place); None when no revision beats the parent's prompt there."""
        assert isinstance(task_model, GenerationTask)
        cfg = self.settings.learner
        training = (*plan.split.train, *plan.split.validation)
        texts = [e for e in training if e.origin is ExampleOrigin.NEW][-cfg.prompt_arm_texts:]
        if not texts:
            return None, None
        own = policy or PromptPolicy(task_model.template.ref)
        examples = worked_examples(training, policy, limit=cfg.prompt_arm_examples)
        search = search_prompt(task_model, parent, own, revisions(
            own, task_model.template, shots=cfg.prompt_arm_shots, examples=examples), texts)
        log.info("request %s: prompt search on %d texts: parent %.3f, %s", plan.request.id,
                 search.texts, search.parent, search.tried)
        if search.chosen is None:
            return None, search
        candidate = PromptCandidate(search.chosen)
        candidate.metrics = score_for_gate(prompted(task_model, search.chosen, parent), parent,
                                           plan.gate_split, suite, candidate.outcomes,
                                           robust=robust)
        return candidate, search

    def _trained_bank(self, plan: UpdatePlan, task_model: TaskModel, model: Any,
                      share: float | None) -> tuple[RetrievalBank | None, Any]:
        """With ``learner.retrieval``: the trained candidate's bank (the request's training
        texts under its own encoder) and the candidate answering with it; no bank when the
        neighbours' share is 0. The share is fitted on the early-stop texts, or, without a
        retrieval arm, is the one fitted on the parent's answers (``share``)."""
        if not self._retrieval(plan):
            return None, model
        view = retrieval_view(model, None)
        if self.settings.learner.retrieval_arm or share is None:
            bank = self._bank(plan, task_model, view, base=None,
                              fit_on={e.input for e in plan.split.validation})
        else:
            bank = self._bank(plan, task_model, view, base=None, fit_on=set(), weight=share)
        if bank.weight == 0.0:
            view.close()
            return None, model
        view.bank = bank
        return bank, view

    def _bank(self, plan: UpdatePlan, task_model: TaskModel, view: RetrievalClassifier, *,
              base: RetrievalBank | None, fit_on: set[str],
              weight: float | None = None) -> RetrievalBank:
        """``base`` and the request's training texts embedded by ``view``'s encoder, under
        the settings' ``retrieval_*`` (``weight``, else the setting's, else fitted on
        ``fit_on`` and kept when significant at the gate's level)."""
        cfg = self.settings.learner
        real = [e for e in (*plan.split.train, *plan.split.validation)
                if e.origin is not ExampleOrigin.SYNTHETIC]
        return new_bank(view, task_model, real,
                        base=base, k=cfg.retrieval_k,
                        weight=weight if weight is not None else cfg.retrieval_weight,
                        limit=cfg.retrieval_bank_size, fit_on=fit_on, alpha=cfg.gate_alpha)

    def _robustness(self, plan: UpdatePlan) -> list[tuple[str, TrainingExample]]:
        """The task's robustness checks: the gate's held-out texts (recent and older),
        perturbed; empty when the task asks for none."""
        if not plan.task.robustness:
            return []
        cfg, split = self.settings.learner, plan.gate_split
        writer = None
        if "paraphrase" in plan.task.robustness:  # rewritten by the generation model
            generator = cfg.synthetic_generator or default_base_model(TaskKind.GENERATION)
            self.trust.check_base_model(generator)
            base = self.models.get(generator, TaskKind.GENERATION)
            writer = TextWriter(base.model, base.tokenizer, self.device.device)
        return robustness_suite([*split.holdout_new, *split.holdout_replay],
                                plan.task.robustness, negation=plan.task.negation_labels,
                                limit=cfg.robust_examples, seed=cfg.seed,
                                paraphrase=(paraphraser(writer, seed=cfg.seed)
                                            if writer is not None else None),
                                paraphrase_limit=cfg.robust_paraphrases)

    def _cross_fit(self, folds: list[Fold], parent: Evaluation, trainable: Any,
                   task_model: TaskModel, model: Any, config: TrainConfig) -> PairedComparison:
        """Train a copy of the start per fold on the rest, score it on its fold; compare the
        fold texts' outcomes with the parent's (``parent``: on every fold's texts, in order).

        The copies are taken before the candidate trains (``model`` is still the start), and
        training reseeds, so the stored candidate is the same with or without them.
        """
        hits: list[bool] = []
        scores: list[float] = []
        for fold in folds:
            candidate = copy.deepcopy(model)
            train_adapter(trainable, candidate, list(fold.train), list(fold.validation), config)
            result = task_model.evaluate_each(candidate, list(fold.scored))
            hits += result.hits
            scores += result.scores
            del candidate
        return compare(hits, parent.hits, candidate_scores=scores, parent_scores=parent.scores)

    def _stratified(self, plan: UpdatePlan) -> list[float]:
        """With ``learner.gate_stratify``: the recent slice's weights, post-stratified by the
        label mix of every new example the request carries; else none (all weigh 1)."""
        if not self.settings.learner.gate_stratify:
            return []
        return stratify_weights([e.target for e in plan.gate_split.holdout_new],
                                [e.target for e in plan.request.examples
                                 if e.origin is ExampleOrigin.NEW])

    def _parent_key(self, version_id: str | None, task_model: TaskModel) -> tuple[Any, ...] | None:
        """What the parent's kept results are filed under: its version and what else decides
        its answers (its prompt too); None for an untrained start (nothing to keep)."""
        if version_id is None:
            return None
        template = task_model.template.ref if task_model.template is not None else None
        shots = getattr(task_model, "shots", None)
        return (version_id, tuple(task_model.labels), self.settings.learner.max_length,
                self.settings.learner.max_new_tokens, template,
                shots.policy.digest if shots is not None else None)

    def _parent_evaluator(self, key: tuple[Any, ...] | None, task_model: TaskModel,
                          model: Any) -> Callable[[list[TrainingExample]], Evaluation] | None:
        """Scoring of the parent's weights on held-out texts through the kept results of
        :attr:`parent_scores`; None without a key."""
        if key is None:
            return None
        return lambda examples: self.parent_scores.evaluate(
            key, examples, lambda missing: task_model.evaluate_each(model, missing))

    def _parent_answerer(self, key: tuple[Any, ...] | None, task_model: TaskModel,
                         model: Any) -> Answerer | None:
        """The parent's challenge answers through the kept results; None without a key."""
        if key is None:
            return None
        return lambda prompts, expected: self.parent_scores.answers(
            key, prompts, expected, lambda p, e: task_model.score_answers(model, p, e))

    def _parent_misses(self, plan: UpdatePlan, task_model: TaskModel, model: Any,
                       hits: Outcomes) -> list[ChallengeCase]:
        """The parent's errors on the request's held-out examples, for the challenge suite
        (its answers on them are the first of the gate's recent slice)."""
        if plan.task.challenge_suite is None:
            return []
        holdout = hits.get("holdout")
        return parent_misses(task_model, model, plan.split, source=plan.request.id,
                             limit=plan.task.challenge_growth,
                             hits=holdout.hits if holdout is not None else None)

    def _score_candidate(self, plan: UpdatePlan, task_model: TaskModel, model: Any,
                         suite: ChallengeSuite, distillation: Distillation,
                         outcomes: Outcomes,
                         robust: list[tuple[str, TrainingExample]]) -> Metrics:
        """The candidate on the parent's texts (and their perturbations), its teacher's,
        and its prompt's stability."""
        said: dict[str, str] = {}
        after = score_for_gate(task_model, model, plan.gate_split, suite, outcomes,
                               answer=_recording_answers(task_model, model, said),
                               robust=robust) | distillation.metrics
        # Prompts in the loop: the candidate's probes under paraphrases of its template
        # (under the template itself it has just answered them).
        return after | stability_metrics(task_model, model, suite,
                                         self.settings.learner.prompt_stability_probes,
                                         known=said)

    def _store(self, plan: UpdatePlan, task_model: TaskModel, model: Any, workdir: Path,
               base_digest: str | None = None, *, bank: RetrievalBank | None = None,
               policy: PromptPolicy | None = None,
               weights_from: Path | None = None) -> StoredArtifact:
        """Save the candidate in PEFT's layout with driftloop's metadata (and the sha256 of
        the base weights it was trained on, when local), with its retrieval bank or prompt
        policy if any; store it by sha256. ``weights_from``: a retrieval or prompt
        candidate's adapter folder (the parent's weights, copied as they are) instead of
        ``model``'s weights."""
        extra: dict[str, Any] = {"base_weights_sha256": base_digest} if base_digest else {}
        if bank is not None:
            extra[RETRIEVAL_KEY] = bank.settings()
        template = policy.template_ref if policy is not None else _template_ref(task_model)
        metadata = AdapterMetadata(plan.kind, plan.base_model, plan.version_id,
                                   task_model.labels, template, extra=extra)
        folder = workdir / "candidate"
        if weights_from is not None and policy is not None:
            return self.store.put(save_prompt_candidate(weights_from, folder, metadata, policy))
        if weights_from is not None and bank is not None:
            return self.store.put(save_retrieval_candidate(weights_from, folder, metadata, bank))
        save_adapter(model, folder, metadata)
        if bank is not None:
            bank.save(folder)
        return self.store.put(folder)

    def _fetch_adapter(self, version: ModelVersion, kind: TaskKind,
                       workdir: Path) -> tuple[Path, AdapterMetadata]:
        """The adapter an update continues from, verified, and its driftloop metadata."""
        folder = self.store.fetch(version.adapter_uri, version.sha256, workdir)
        meta = read_metadata(folder)
        if meta.task_kind is not kind:
            raise TrainingRequestError(f"parent {version.version_id} is a "
                                       f"{meta.task_kind} adapter, not {kind}")
        return folder, meta


@dataclass(slots=True)
class _RetrievalCandidate:
    """The retrieval arm of an update: its bank, and its results on the gate's texts."""

    bank: RetrievalBank
    outcomes: Outcomes
    metrics: Metrics


def _template_ref(task_model: TaskModel) -> str | None:
    return task_model.template.ref if task_model.template is not None else None


def _recording_answers(task_model: TaskModel, model: Any, said: dict[str, str]
                       ) -> Answerer | None:
    """A generator's challenge answers, scored as usual and kept by prompt in ``said`` (the
    stability check asks the newest probes again under the same template); None for a
    classifier, whose answers cost one forward pass."""
    if not isinstance(task_model, GenerationTask):
        return None

    def answer(prompts: list[str], expected: list[str]) -> list[bool]:
        answers = task_model.generate(model, prompts)
        said.update(zip(prompts, answers, strict=True))
        return task_model.match_answers(answers, expected)

    return answer
