"""The registry of model versions: a fold over the append-only ``model-versions`` log.

Every status change is one :class:`~driftloop.schemas.ModelVersion` event; the latest event of
a version is its state, and a task's promoted head is the version of its latest ``promoted``
event. Version ids derive from training request ids, so a learner that re-reads a request
finds its version here and does not train or publish it twice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field

from ...schemas.enums import VersionStatus
from ...schemas.events import ModelVersion
from ..errors import RegistryError

__all__ = ["DOMAIN_METADATA_KEY", "RECEIVED_METADATA_KEY", "REGIME_METADATA_KEY",
           "SUPERSEDED_METADATA_KEY", "VersionLog", "trained_requests", "version_id_for"]

# The metadata key of a version trained on one domain's lineage
# (see driftloop.learner.training.transfer).
DOMAIN_METADATA_KEY = "domain"
# The metadata key of a version trained on a coalesced backlog: ids of the requests it
# superseded (see driftloop.learner.coalesce).
SUPERSEDED_METADATA_KEY = "superseded"
# The metadata key of when the learner received the version's request (seconds since the
# epoch), set by the learner service.
RECEIVED_METADATA_KEY = "received_ts"
# The metadata key of the worker's regime of the newest examples a version trained on (see
# driftloop.learner.training.plan.recent_since).
REGIME_METADATA_KEY = "regime"


def trained_requests(event: ModelVersion) -> set[str]:
    """Ids of the training requests a version answers: its own and those it superseded.

    >>> event = ModelVersion(version_id="t-v3", task="t", base_model="m", adapter_uri="file:///a",
    ...                      sha256="0" * 64, size_bytes=1, status="promoted", ts=1.0,
    ...                      training_request_id="r3", metadata={"superseded": ["r1", "r2"]})
    >>> sorted(trained_requests(event))
    ['r1', 'r2', 'r3']
    """
    answered = {event.training_request_id} if event.training_request_id else set()
    superseded = event.metadata.get(SUPERSEDED_METADATA_KEY)
    if isinstance(superseded, list):
        answered.update(str(i) for i in superseded)
    return answered


def version_id_for(task: str, training_request_id: str, *, deployment: str) -> str:
    """The version id a training request produces in a deployment: stable across reads,
    restarts and replays, and another in another deployment (request ids like
    ``tr-sentiment-000001`` repeat across deployments).

    >>> version_id_for("sentiment", "req-1", deployment="eu")
    'sentiment-a5b872abeed92790'
    >>> version_id_for("sentiment", "req-1", deployment="us")
    'sentiment-185418dd483b250b'
    """
    key = f"{deployment}\0{task}\0{training_request_id}"
    digest = hashlib.sha256(key.encode()).hexdigest()
    return f"{task}-{digest[:16]}"


@dataclass(slots=True)
class VersionLog:
    """Versions, heads and lineage, rebuilt by applying the log's events in order.

    Examples
    --------
    >>> def event(v, status, parent=None):
    ...     return ModelVersion(version_id=v, ts=1.0, task="t", base_model="m",
    ...                         parent_version=parent, adapter_uri="file:///x/" + v,
    ...                         sha256="0" * 64, size_bytes=1, status=status)
    >>> log = VersionLog().extend([event("v1", "promoted"), event("v2", "promoted", "v1"),
    ...                            event("v3", "rejected", "v2")])
    >>> log.head("t").version_id, [v.version_id for v in log.lineage("v3")]
    ('v2', ['v3', 'v2', 'v1'])
    >>> log.rollback_events("t", ts=2.0)[1].version_id
    'v1'
    """

    _latest: dict[str, ModelVersion] = field(default_factory=dict)
    _order: list[str] = field(default_factory=list)
    _heads: dict[str, str] = field(default_factory=dict)
    _domain_heads: dict[tuple[str, str], str] = field(default_factory=dict)
    events_seen: int = 0
    unreadable: int = 0
    """Records of the log that were no ModelVersion, skipped by :func:`read_version_log`."""
    untrusted: int = 0
    """Events skipped by :func:`read_version_log` for a missing or wrong signature."""

    def apply(self, event: ModelVersion) -> VersionLog:
        if event.version_id not in self._latest:
            self._order.append(event.version_id)
        self._latest[event.version_id] = event
        if event.status is VersionStatus.PROMOTED:
            self._heads[event.task] = event.version_id
        elif (event.status is VersionStatus.ROLLED_BACK
              and self._heads.get(event.task) == event.version_id):
            del self._heads[event.task]
        domain = event.metadata.get(DOMAIN_METADATA_KEY)
        if isinstance(domain, str):
            if event.status is VersionStatus.PROMOTED:
                self._domain_heads[(event.task, domain)] = event.version_id
            elif (event.status is VersionStatus.ROLLED_BACK
                  and self._domain_heads.get((event.task, domain)) == event.version_id):
                del self._domain_heads[(event.task, domain)]
        self.events_seen += 1
        return self

    def extend(self, events: Iterable[ModelVersion]) -> VersionLog:
        for event in events:
            self.apply(event)
        return self

    def __contains__(self, version_id: object) -> bool:
        return version_id in self._latest

    def get(self, version_id: str) -> ModelVersion:
        """The latest event of a version."""
        try:
            return self._latest[version_id]
        except KeyError:
            raise RegistryError(f"unknown model version {version_id!r}") from None

    def versions(self, task: str | None = None) -> list[ModelVersion]:
        """Latest state of each version, in order of first appearance."""
        found = (self._latest[v] for v in self._order)
        return [v for v in found if task is None or v.task == task]

    def head(self, task: str) -> ModelVersion | None:
        """The promoted version serving ``task``, if any."""
        version_id = self._heads.get(task)
        return self._latest[version_id] if version_id else None

    def domain_head(self, task: str, domain: str) -> ModelVersion | None:
        """The promoted version of one domain's lineage (tasks with an adapter per domain).

        The task's :meth:`head` is the latest promotion of any of its domains.
        """
        version_id = self._domain_heads.get((task, domain))
        return self._latest[version_id] if version_id else None

    def domain_heads(self, task: str) -> dict[str, ModelVersion]:
        """The promoted head of each domain of ``task``, by domain."""
        return {d: self._latest[v] for (t, d), v in self._domain_heads.items() if t == task}

    def lineage(self, version_id: str) -> list[ModelVersion]:
        """The version, its parent, and so on up to the first version."""
        chain: list[ModelVersion] = []
        current: str | None = version_id
        while current is not None and current not in {v.version_id for v in chain}:
            chain.append(self.get(current))
            current = chain[-1].parent_version
        return chain

    def status_event(self, version_id: str, status: VersionStatus, *, ts: float,
                     reason: str = "") -> ModelVersion:
        """A copy of the version's latest event with a new status (for promote, rollback)."""
        return self.get(version_id).with_status(status, ts=ts, reason=reason)

    def rollback_events(self, task: str, *, ts: float) -> list[ModelVersion]:
        """Events that roll ``task`` back: the head rolled back, its parent promoted again."""
        head = self.head(task)
        if head is None:
            raise RegistryError(f"task {task!r} has no promoted version to roll back")
        if head.parent_version is None:
            raise RegistryError(f"{head.version_id} has no parent to roll back to")
        return [
            self.status_event(head.version_id, VersionStatus.ROLLED_BACK, ts=ts,
                              reason=f"rolled back to {head.parent_version}"),
            self.status_event(head.parent_version, VersionStatus.PROMOTED, ts=ts,
                              reason=f"re-promoted by rollback of {head.version_id}"),
        ]
