"""Federated aggregation: merge site adapters of one task, gate the merge, store it.

Sites offer promoted adapters on ``site-adapters`` (:mod:`..topics.sites`,
:mod:`.offers`): references and example counts, never examples. :class:`FederatedAggregator`
takes each site's latest offer for a task and checks it in two steps. First the event: same
base model, LoRA rank and alpha as the federation's settings, a positive example count.
Then the files: fetched from the store and verified against their sha256, the same PEFT
config (targets, saved modules), task kind, labels and tensor shapes as the other sites. A
refused offer says why (the round turns it into a dead letter) and the rest go on; fewer
than ``min_sites`` is an error.

The merge averages the sites' dense LoRA updates weighted by example counts and factorises
the average back to rank r (:mod:`.lora_merge` says why not average ``A`` and ``B``); heads
saved whole are averaged directly. The merged adapter is then gated like any candidate
(:mod:`.scoring`): against the task's promoted head (or the untrained adapter) on the
aggregator's evaluation set (:mod:`.eval_set`) and the task's challenge suite. It is stored
content-addressed and described by a :class:`~driftloop.schemas.ModelVersion` whose
metadata records every site, version, example count, weight and score. Its id derives from
the set of offers, so a round run twice publishes one version.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...schemas.enums import TaskKind, VersionStatus
from ...schemas.events import ModelVersion, SiteAdapter, TrainingExample
from ...schemas.settings import Settings
from ..errors import ArtifactError, FederationError
from ..gate.challenges import ChallengeSuite
from ..gate.rule import GateDecision, GateRule
from ..models.adapters import (
    ADAPTER_WEIGHTS_FILE,
    AdapterMetadata,
    LoraSpec,
    check_safetensors_only,
    read_metadata,
    save_adapter,
)
from ..models.device import ComputeDevice, select_device
from ..models.portable import to_internal
from ..models.resident import ResidentModels, default_base_model
from ..models.task_model import TaskModel, task_model_for
from ..registry.store import ArtifactStore, StoredArtifact
from ..registry.version_log import VersionLog, version_id_for
from ..topics.sites import LORA_CONFIG_FILE, read_lora_config
from ..training.loop import seed_everything
from .lora_merge import MergeReport, merge_lora_states, merge_report, normalised_weights
from .offers import Offer, Refusal, SiteInputs, latest_offers
from .scoring import GateScorer, Metrics

__all__ = ["FederatedAggregator", "FederatedResult"]

log = logging.getLogger(__name__)
# PEFT config fields that change what the tensors mean: sites must agree on all of them.
_SHAPE_FIELDS = ("r", "lora_alpha", "target_modules", "modules_to_save", "use_dora",
                 "use_rslora", "bias", "fan_in_fan_out", "peft_type")


@dataclass(slots=True)
class FederatedResult:
    """The event to publish and how it came about."""

    event: ModelVersion
    decision: GateDecision
    report: MergeReport
    site_metrics: dict[str, Metrics]


class FederatedAggregator:
    """Checks, merges and gates site adapters (no Kafka here; see :mod:`.round`).

    Parameters
    ----------
    settings
        The federation's task settings (kind, base model, challenge suite), its LoRA shape
        (``learner.lora_r`` / ``lora_alpha``), gate tolerances and artifact store.
    min_sites
        Fewest accepted site adapters worth a merge.

    Examples
    --------
    >>> from driftloop.schemas.settings import Settings
    >>> import tempfile
    >>> settings = Settings(artifacts={"store_url": tempfile.mkdtemp()},
    ...                     tasks={"sentiment": {"kind": "classification"}})
    >>> aggregator = FederatedAggregator(settings, device=object())
    >>> bad = SiteAdapter(ts=1.0, site="eu", task="sentiment", version_id="v",
    ...     base_model="another-model", adapter_uri="file:///s/" + "0" * 64,
    ...     sha256="0" * 64, size_bytes=1, examples=0, lora_r=4, lora_alpha=16)
    >>> inputs = aggregator.collect("sentiment", [Offer(bad)], Path(tempfile.mkdtemp()))
    >>> for problem in inputs.refused[0].reason.split("; "):
    ...     print(problem)
    site eu: base model 'another-model', the federation's is 'sentence-transformers/...'
    LoRA rank 4, the federation's is 8
    example count 0 (nothing to weigh)
    """

    def __init__(self, settings: Settings, *, models: ResidentModels | None = None,
                 store: ArtifactStore | None = None, device: ComputeDevice | Any = None,
                 min_sites: int = 2) -> None:
        from ..training.update import store_from_settings

        if min_sites < 1:
            raise ValueError(f"min_sites must be >= 1, got {min_sites}")
        cfg = settings.learner
        self.settings = settings
        self.min_sites = min_sites
        self.device = device or select_device(cfg.device, cfg.torch_threads)
        self.models = models or ResidentModels.for_learner(cfg)
        self.store = store or store_from_settings(settings)
        self.gate = GateRule(cfg.min_improvement, cfg.replay_tolerance, cfg.challenge_tolerance)

    # -- checks -----------------------------------------------------------------------------

    def _event_problems(self, adapter: SiteAdapter, base_model: str) -> list[str]:
        cfg = self.settings.learner
        problems = []
        if adapter.base_model != base_model:
            problems.append(f"base model {adapter.base_model!r}, the federation's is "
                            f"{base_model!r}")
        if adapter.lora_r != cfg.lora_r:
            problems.append(f"LoRA rank {adapter.lora_r}, the federation's is {cfg.lora_r}")
        if adapter.lora_alpha != cfg.lora_alpha:
            problems.append(f"LoRA alpha {adapter.lora_alpha:g}, the federation's is "
                            f"{cfg.lora_alpha}")
        if adapter.examples <= 0:
            problems.append(f"example count {adapter.examples} (nothing to weigh)")
        return problems

    def collect(self, task: str, offers: Sequence[Offer], workdir: Path) -> SiteInputs:
        """Each site's latest offer for ``task``, checked, fetched into ``workdir``, verified."""
        settings = self.settings.task(task)
        kind = settings.kind
        base_model = settings.base_model or default_base_model(kind)
        inputs = SiteInputs(task, kind, base_model)
        reference: dict[str, Any] | None = None
        reference_meta: AdapterMetadata | None = None
        reference_shapes: dict[str, tuple[int, ...]] | None = None
        for offer in latest_offers(offers, task):
            adapter = offer.adapter
            problems = self._event_problems(adapter, base_model)
            if problems:
                inputs.refused.append(Refusal(offer, f"site {adapter.site}: "
                                              + "; ".join(problems)))
                continue
            try:
                folder = to_internal(self.store.fetch(  # averaged in the in-memory form
                    adapter.adapter_uri, adapter.sha256, workdir / f"site-{len(inputs.folders)}"))
                check_safetensors_only(folder)
                config, meta = read_lora_config(folder), read_metadata(folder)
                shapes = _tensor_shapes(folder)
            except (ArtifactError, FederationError) as exc:
                inputs.refused.append(Refusal(offer, f"site {adapter.site}: {exc}"))
                continue
            if reference is None:
                reference, reference_meta, reference_shapes = config, meta, shapes
            problem = _layout_problem(config, meta, shapes, reference, reference_meta,
                                      reference_shapes, kind)
            if problem:
                inputs.refused.append(Refusal(offer, f"site {adapter.site}: {problem}"))
                continue
            inputs.accepted.append(offer)
            inputs.folders.append(folder)
        return inputs

    # -- merge and gate ---------------------------------------------------------------------

    def merge(self, inputs: SiteInputs, eval_examples: Sequence[TrainingExample],
              versions: VersionLog, workdir: Path) -> FederatedResult:
        """Merge the accepted adapters, gate the merge against the head, store it."""
        self._require_sites(inputs)
        merged = _write_merge(inputs, workdir / "merged")
        meta = read_metadata(inputs.folders[0])
        scorer = self._scorer(inputs, meta, merged.spec, eval_examples)
        head = versions.head(inputs.task)
        head_dir = self._fetch_head(inputs, head, workdir)
        seed_everything(self.settings.learner.seed)  # an untrained head's initialisation
        before = scorer.score(scorer.build(head_dir))
        site_metrics = {o.adapter.site: scorer.score(scorer.build(folder), with_suite=False)
                        for o, folder in zip(inputs.accepted, inputs.folders, strict=True)}
        model = scorer.build(merged.folder)
        after = scorer.score(model)
        decision = self.gate.decide(before, after)
        version_id = version_id_for(inputs.task, inputs.round_id,
                                    deployment=self.settings.deployment_id)
        metadata = AdapterMetadata(inputs.kind, inputs.base_model, version_id, meta.labels,
                                   meta.prompt_template_id,
                                   extra={"federated_round": inputs.round_id})
        stored = self.store.put(save_adapter(model, workdir / "candidate", metadata))
        del model
        event = _version_event(inputs, metadata, stored, parent=head, before=before,
                               after=after, decision=decision, scorer=scorer,
                               site_metrics=site_metrics, report=merged.report)
        log.info("%s %s from %d sites: %s", version_id, event.status, len(inputs.accepted),
                 decision.summary)
        return FederatedResult(event, decision, merged.report, site_metrics)

    def _require_sites(self, inputs: SiteInputs) -> None:
        if len(inputs.accepted) < self.min_sites:
            why = "".join(f"\n  {r.reason}" for r in inputs.refused)
            raise FederationError(f"task {inputs.task}: {len(inputs.accepted)} site adapter(s) "
                                  f"accepted, at least {self.min_sites} needed{why}")

    def _scorer(self, inputs: SiteInputs, meta: AdapterMetadata, spec: LoraSpec,
                eval_examples: Sequence[TrainingExample]) -> GateScorer:
        """The gate's scorer of the task, its evaluation set checked."""
        base = self.models.get(inputs.base_model, inputs.kind)
        task_model = self._task_model(inputs.kind, base, meta)
        task_model.check(eval_examples)
        suite = ChallengeSuite.load(self.settings.task(inputs.task).challenge_suite)
        return GateScorer(task_model, base, spec, eval_examples, suite)

    def _fetch_head(self, inputs: SiteInputs, head: ModelVersion | None,
                    workdir: Path) -> Path | None:
        """The promoted head's adapter, verified (None: the merge is gated against an
        untrained adapter)."""
        if head is None:
            return None
        if head.base_model != inputs.base_model:
            raise FederationError(f"task {inputs.task}: the head {head.version_id} is on "
                                  f"{head.base_model}, the sites on {inputs.base_model}")
        return to_internal(self.store.fetch(head.adapter_uri, head.sha256, workdir / "head"))

    def _task_model(self, kind: TaskKind, base: Any, meta: AdapterMetadata) -> TaskModel:
        cfg = self.settings.learner
        return task_model_for(kind, base.tokenizer, self.device, labels=meta.labels,
                              template_ref=meta.prompt_template_id, max_length=cfg.max_length,
                              max_new_tokens=cfg.max_new_tokens)


@dataclass(frozen=True, slots=True)
class _Merged:
    """The merged adapter's folder, its LoRA shape and the merge's report."""

    folder: Path
    spec: LoraSpec
    report: MergeReport


def _write_merge(inputs: SiteInputs, staging: Path) -> _Merged:
    """Average the sites' LoRA updates by example count into an adapter folder at ``staging``
    (the first site's PEFT config, the merged weights)."""
    from safetensors.torch import load_file, save_file

    counts = [o.adapter.examples for o in inputs.accepted]
    config = read_lora_config(inputs.folders[0])
    scaling = float(config["lora_alpha"]) / int(config["r"])
    states = [load_file(str(folder / ADAPTER_WEIGHTS_FILE)) for folder in inputs.folders]
    merged = merge_lora_states(states, counts, scaling=scaling)
    report = merge_report(states, counts, merged)
    del states
    staging.mkdir()
    shutil.copy(inputs.folders[0] / LORA_CONFIG_FILE, staging / LORA_CONFIG_FILE)
    save_file(merged, str(staging / ADAPTER_WEIGHTS_FILE), metadata={"format": "pt"})
    return _Merged(staging, LoraSpec(int(config["r"]), int(config["lora_alpha"])), report)


def _version_event(inputs: SiteInputs, metadata: AdapterMetadata, stored: StoredArtifact, *,
                   parent: ModelVersion | None, before: Metrics, after: Metrics,
                   decision: GateDecision, scorer: GateScorer, site_metrics: dict[str, Metrics],
                   report: MergeReport) -> ModelVersion:
    """The merge's version event: promoted or rejected, with every site in its lineage."""
    counts = [o.adapter.examples for o in inputs.accepted]
    lineage = [{"site": o.adapter.site, "version_id": o.adapter.version_id,
                "sha256": o.adapter.sha256, "examples": o.adapter.examples,
                "weight": round(w, 6), "metrics": site_metrics[o.adapter.site]}
               for o, w in zip(inputs.accepted, normalised_weights(counts), strict=True)]
    return ModelVersion(
        version_id=metadata.version_id, ts=time.time(), task=inputs.task,
        base_model=inputs.base_model, parent_version=parent.version_id if parent else None,
        adapter_uri=stored.uri, sha256=stored.sha256, size_bytes=stored.size_bytes,
        training_request_id=inputs.round_id, prompt_template_id=metadata.prompt_template_id,
        labels=list(metadata.labels) or None,
        max_length=getattr(scorer.task_model, "max_length", None),
        metrics_before=before, metrics_after=after,
        status=VersionStatus.PROMOTED if decision.promote else VersionStatus.REJECTED,
        reason=decision.summary,
        metadata={"task_kind": inputs.kind.value, "score_metric": scorer.task_model.score_name,
                  "labels": list(metadata.labels), "examples": {"train": sum(counts)},
                  "federated": {"round": inputs.round_id, "sites": lineage,
                                "merge": "example-weighted dense LoRA updates, "
                                         "truncated SVD to rank r; heads averaged",
                                "eval_examples": len(scorer.examples),
                                **report.as_metadata()}})


def _tensor_shapes(folder: Path) -> dict[str, tuple[int, ...]]:
    """Tensor names and shapes from the safetensors header (no weights read)."""
    from safetensors import safe_open

    try:
        with safe_open(str(folder / ADAPTER_WEIGHTS_FILE), framework="pt") as weights:
            return {key: tuple(weights.get_slice(key).get_shape()) for key in weights.keys()}
    except Exception as exc:  # safetensors raises its own SafetensorError or OSError
        raise FederationError(f"unreadable {ADAPTER_WEIGHTS_FILE}: {exc}") from None


def _layout_problem(config: dict[str, Any], meta: AdapterMetadata,
                    shapes: dict[str, tuple[int, ...]], ref_config: dict[str, Any],
                    ref_meta: AdapterMetadata | None,
                    ref_shapes: dict[str, tuple[int, ...]] | None, kind: TaskKind) -> str:
    """Why an adapter cannot be averaged with the reference one ("" when it can)."""
    if meta.task_kind is not kind:
        return f"a {meta.task_kind} adapter, the task is {kind}"
    for name in _SHAPE_FIELDS:
        mine, theirs = config.get(name), ref_config.get(name)
        if isinstance(mine, list) and isinstance(theirs, list):
            mine, theirs = sorted(mine), sorted(theirs)
        if mine != theirs:
            return f"PEFT config {name}={mine!r}, the other sites have {theirs!r}"
    if ref_meta is not None and meta.labels != ref_meta.labels:
        return f"labels {list(meta.labels)}, the other sites have {list(ref_meta.labels)}"
    if ref_shapes is not None and shapes != ref_shapes:
        diff = sorted(k for k in set(shapes) | set(ref_shapes)
                      if shapes.get(k) != ref_shapes.get(k))
        return (f"tensor shapes differ from the other sites' at {len(diff)} tensor(s), e.g. "
                f"{diff[0]}: {shapes.get(diff[0])} vs {ref_shapes.get(diff[0])}")
    return ""
