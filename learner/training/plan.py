"""What an update starts from, decided before any model loads.

The task's kind, the request's split and the gate's share of it, the domain lineage, the
parent version and the label set are functions of the request, the settings and the
registry: a request that cannot be trained is refused here in milliseconds, with a reason.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

from ...schemas.enums import ExampleOrigin, TaskKind
from ...schemas.events import ModelVersion, TrainingExample, TrainingRequest
from ...schemas.settings import Settings, TaskSettings
from ..errors import TrainingRequestError
from ..gate.pool import GatePool
from ..gate.split import RequestSplit, split_request
from ..models.resident import default_base_model
from ..registry.version_log import REGIME_METADATA_KEY, VersionLog, version_id_for
from .transfer import request_domain

__all__ = ["UpdatePlan", "labels_for", "plan_update", "recent_since", "resolve_parent",
           "task_kind"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class UpdatePlan:
    """One request's update, before training: what it trains on, from where, judged on what.

    Examples
    --------
    >>> from driftloop.learner.gate.split import RequestSplit
    >>> example = TrainingExample(input="fine", target="positive", domain="tweets")
    >>> request = TrainingRequest(id="r1", ts=0.0, task="t", trigger="manual", examples=[example])
    >>> plan = UpdatePlan(request=request, task=TaskSettings(), kind=TaskKind.CLASSIFICATION,
    ...                   version_id="t-1", split=RequestSplit((), (), (example,), ()),
    ...                   pooled=(example,), domain=None, parent=None)
    >>> len(plan.gate_split.holdout_new), plan.parent_id
    (2, None)
    """

    request: TrainingRequest
    task: TaskSettings
    kind: TaskKind
    version_id: str
    split: RequestSplit
    pooled: tuple[TrainingExample, ...]
    """Held-out examples of earlier requests of the same domains and regime (recent)."""
    domain: str | None
    """The lineage's domain under ``adapter_per_domain``, else None (one lineage per task)."""
    parent: ModelVersion | None
    older: tuple[TrainingExample, ...] = ()
    """Held-out examples of earlier regimes, every domain (what must not be forgotten)."""
    regime: int = 0
    """The worker's regime of the request's new examples (the newest they carry)."""

    @property
    def gate_split(self) -> RequestSplit:
        """The split the gate scores on: recent traffic (the request's held-out new examples
        and the pooled ones of their regime) and older traffic (its held-out replayed ones
        and the pooled ones of earlier regimes)."""
        return replace(self.split, holdout_new=self.split.holdout_new + self.pooled,
                       holdout_replay=self.split.holdout_replay + self.older)

    @property
    def parent_id(self) -> str | None:
        return self.parent.version_id if self.parent else None

    @property
    def base_model(self) -> str:
        """The parent's base model, else the task's, else the default of its kind."""
        if self.parent is not None:
            return self.parent.base_model
        return self.task.base_model or default_base_model(self.kind)


def task_kind(request: TrainingRequest, settings: Settings) -> TaskKind:
    """The settings choose a configured task's kind; the request's serves the others.

    A request cannot say whether its ``task_kind`` was chosen or defaulted (encoders write
    defaults), so a disagreement is logged rather than refused.
    """
    if request.task not in settings.tasks:
        return request.task_kind
    kind = settings.task(request.task).kind
    if request.task_kind is not kind:
        log.info("request %s says %s; task %s is configured as %s: using %s", request.id,
                 request.task_kind, request.task, kind, kind)
    return kind


def resolve_parent(request: TrainingRequest, versions: VersionLog,
                   domain: str | None = None) -> ModelVersion | None:
    """The version the update continues: the request's, else the (domain's) promoted head."""
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


def labels_for(request: TrainingRequest, task: TaskSettings,
               parent_labels: tuple[str, ...]) -> tuple[str, ...]:
    """The label set in head order: the parent's, else the request's, the task's or the
    targets seen (sorted); a request that names other labels than its parent is refused."""
    asked = tuple(request.labels or ())
    if parent_labels:
        if asked and asked != parent_labels:
            raise TrainingRequestError(f"request {request.id}: labels {list(asked)} differ "
                                       f"from the parent's {list(parent_labels)}")
        return parent_labels
    return asked or tuple(task.labels) or tuple(sorted({e.target for e in request.examples}))


def recent_since(parent: ModelVersion | None, regime: int) -> int:
    """The first regime of a gate's "recent" traffic: the first one after the newest regime
    the parent trained on (its ``metadata.regime``), at most the request's own ``regime``.

    Each drift alert opens a regime, and one shift often sets off two or three signals a
    hundred labels apart: a "recent" slice of the current regime alone then held 24 texts,
    on which a candidate 33 points better than its parent (true labels) was not shown
    better. Every regime since the parent's is traffic the parent never trained on and was
    never chosen on, so the slice keeps all of it. A parent without the key (a version of
    an older learner), or one trained in the current regime, gives the current regime.

    >>> recent_since(None, 3)
    3
    >>> parent = ModelVersion(version_id="v", ts=0, task="t", base_model="m",
    ...                       adapter_uri="file:///a",
    ...                       sha256="0" * 64, size_bytes=1, status="promoted",
    ...                       metadata={"regime": 1})
    >>> recent_since(parent, 3), recent_since(parent, 1), recent_since(parent, 0)
    (2, 1, 0)
    """
    trained = parent.metadata.get(REGIME_METADATA_KEY) if parent is not None else None
    if not isinstance(trained, int) or isinstance(trained, bool):
        return regime
    return min(regime, trained + 1)


def plan_update(request: TrainingRequest, versions: VersionLog, settings: Settings,
                pool: GatePool) -> UpdatePlan:
    """Split the request, find its lineage and parent, and take the pool's share."""
    cfg = settings.learner
    task = settings.task(request.task)
    split = split_request(request, holdout_fraction=cfg.holdout_fraction,
                          validation_fraction=cfg.validation_fraction, seed=cfg.seed)
    if not split.holdout_new:
        raise TrainingRequestError(f"request {request.id} needs at least two new examples "
                                   "(one to train on, one for the gate)")
    domain = request_domain(request) if task.adapter_per_domain else None
    parent = resolve_parent(request, versions, domain)
    new = [e for e in request.examples if e.origin is ExampleOrigin.NEW]
    regime = max((e.regime for e in new), default=0)
    first = recent_since(parent, regime)
    # Evidence across updates: the pooled held-out examples of the new examples' domains and
    # of the regimes the parent never trained on (the newest, up to the bound), and of every
    # earlier regime.
    inputs = [e.input for e in request.examples]
    room = max(cfg.gate_recent_examples - len(split.holdout_new), 0)
    recent = pool.examples({e.domain for e in new}, exclude=inputs, regime=regime, since=first)
    pooled = tuple(recent[len(recent) - room:]) if room else ()
    # With an adapter per domain the candidate serves its domain alone: the older traffic
    # it must not forget is that domain's. Other domains' replayed examples still train it;
    # held out, they judge nothing (each domain's own head answers them).
    older = tuple(pool.older(first, exclude=inputs, limit=cfg.gate_old_examples,
                             domains=None if domain is None else {domain}))
    if domain is not None:
        split = replace(split, holdout_replay=tuple(
            e for e in split.holdout_replay if e.domain == domain))
    return UpdatePlan(request=request, task=task, kind=task_kind(request, settings),
                      version_id=version_id_for(request.task, request.id,
                                                deployment=settings.deployment_id),
                      split=split,
                      pooled=pooled, domain=domain, parent=parent, older=older,
                      regime=regime)
