"""What a model version records of its update: the event and its metadata.

The lineage (parent, request, base model), both sides' gate metrics, the adapter's address
and digest, and the update's own account in ``metadata``: split sizes, steps, speed, device,
phase timings, the prompt it was trained under and how much of the gate came from the pool.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from ...schemas.enums import VersionStatus
from ...schemas.events import ModelVersion, TrainingExample
from ..gate.evidence import Metrics
from ..gate.rule import GateDecision
from ..gate.split import RequestSplit
from ..gate.stability import prompt_record
from ..models.task_model import TaskModel
from ..registry.store import StoredArtifact
from ..registry.version_log import REGIME_METADATA_KEY
from .loop import TrainReport
from .plan import UpdatePlan

__all__ = ["pool_metadata", "update_metadata", "version_event"]


def update_metadata(task_model: TaskModel, plan: UpdatePlan, report: TrainReport,
                    timings: dict[str, float], device_type: str) -> dict[str, Any]:
    """The update's account of itself, for the version's ``metadata``."""
    return {
        "task_kind": plan.kind.value,
        "score_metric": task_model.score_name,
        "labels": list(task_model.labels),
        "examples": split_counts(plan.split),
        "steps": report.steps,
        "train_processes": report.processes,
        "stopped": report.stopped,
        "interpolation": report.interpolation,
        "examples_per_second": round(report.examples_per_second, 3),
        "device": device_type,
        "timings": {k: round(v, 4) for k, v in timings.items()},
        REGIME_METADATA_KEY: plan.regime,
        **prompt_record(task_model),
    }


def split_counts(split: RequestSplit) -> dict[str, int]:
    """How many examples each part of the split holds.

    >>> split_counts(RequestSplit((), (), (TrainingExample(input="x", target="a"),), ()))
    {'train': 0, 'validation': 0, 'holdout_new': 1, 'holdout_replay': 0}
    """
    return {"train": len(split.train), "validation": len(split.validation),
            "holdout_new": len(split.holdout_new), "holdout_replay": len(split.holdout_replay)}


def pool_metadata(pooled: Sequence[TrainingExample]) -> dict[str, Any]:
    """The gate pool's share of the holdout, per domain, for the version's metadata.

    >>> pool_metadata([TrainingExample(input="x", target="a", domain="nyt")])
    {'gate_pool': {'pooled': 1, 'domains': {'nyt': 1}}}
    """
    domains: dict[str, int] = {}
    for example in pooled:
        domains[example.domain] = domains.get(example.domain, 0) + 1
    return {"gate_pool": {"pooled": len(pooled), "domains": dict(sorted(domains.items()))}}


def version_event(plan: UpdatePlan, stored: StoredArtifact, *, before: Metrics,
                  after: Metrics, decision: GateDecision, passed: VersionStatus,
                  prompt_template_id: str | None, metadata: dict[str, Any],
                  labels: Sequence[str] = (), max_length: int | None = None) -> ModelVersion:
    """The ``model-versions`` event of a gated candidate (``passed`` when the gate let it
    through: promoted, or a candidate for a canary)."""
    return ModelVersion(
        version_id=plan.version_id, ts=time.time(), task=plan.request.task,
        base_model=plan.base_model, parent_version=plan.parent_id,
        adapter_uri=stored.uri, sha256=stored.sha256, size_bytes=stored.size_bytes,
        training_request_id=plan.request.id, prompt_template_id=prompt_template_id,
        labels=list(labels) or None, max_length=max_length,
        metrics_before=before, metrics_after=after,
        status=passed if decision.promote else VersionStatus.REJECTED,
        reason=decision.summary, metadata=metadata)
