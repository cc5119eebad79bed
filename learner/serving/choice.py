"""What a replica should serve for a task, chosen from the folded ``model-versions`` log.

The served version follows the log's promoted head. A head the replica refused is not a
target (the current version stays). When the head is rolled back and nothing else is
re-promoted, the log has no head; a replica then falls back to the newest version still
promoted rather than keep serving the rolled-back one. The canary candidate is the newest
version of the task still in ``candidate`` status. A task with one adapter per domain also
serves each domain's requests with that domain's promoted head (:func:`domain_targets`).
"""

from __future__ import annotations

from ...schemas.enums import VersionStatus
from ...schemas.events import ModelVersion
from ..registry.version_log import VersionLog
from .refusals import RefusedVersions

__all__ = ["domain_targets", "newest_candidate", "served_target"]


def served_target(versions: VersionLog, task: str, current: str | None,
                  refused: RefusedVersions) -> ModelVersion | None:
    """The version ``task`` should be served with; None keeps what is served.

    Examples
    --------
    >>> def event(v, status):
    ...     return ModelVersion(version_id=v, ts=1.0, task="t", base_model="m",
    ...                         adapter_uri="file:///x/" + v, sha256="0" * 64, size_bytes=1,
    ...                         status=status)
    >>> log = VersionLog().extend([event("v1", "promoted"), event("v2", "promoted")])
    >>> served_target(log, "t", None, RefusedVersions()).version_id
    'v2'
    >>> _ = log.apply(event("v2", "rolled_back"))  # nothing re-promoted: back to v1
    >>> served_target(log, "t", "v2", RefusedVersions()).version_id
    'v1'
    """
    head = versions.head(task)
    if head is not None:
        return None if head in refused else head
    if current is not None and versions.get(current).status is VersionStatus.ROLLED_BACK:
        return _last_promoted(versions, task, current, refused)
    return None


def _last_promoted(versions: VersionLog, task: str, current: str,
                   refused: RefusedVersions) -> ModelVersion | None:
    for version in reversed(versions.versions(task)):
        if (version.status is VersionStatus.PROMOTED and version.version_id != current
                and version not in refused):
            return version
    return None


def newest_candidate(versions: VersionLog, task: str) -> ModelVersion | None:
    """The newest version of ``task`` in ``candidate`` status (the canary), if any.

    >>> log = VersionLog().apply(ModelVersion(
    ...     version_id="v3", ts=1.0, task="t", base_model="m", adapter_uri="file:///x/v3",
    ...     sha256="0" * 64, size_bytes=1, status="candidate"))
    >>> newest_candidate(log, "t").version_id, newest_candidate(log, "other")
    ('v3', None)
    """
    return next((v for v in reversed(versions.versions(task))
                 if v.status is VersionStatus.CANDIDATE), None)


def domain_targets(versions: VersionLog, task: str, serving: dict[str, str],
                   refused: RefusedVersions) -> dict[str, ModelVersion | None]:
    """The domains of ``task`` whose own version should change, from ``serving`` (domain to
    the version serving it now): to their lineage's promoted head, or to None when the
    lineage has no head any more (a rollback with nothing re-promoted: the domain falls back
    to the task's version). A refused head changes nothing.

    >>> def event(v, status, domain):
    ...     return ModelVersion(version_id=v, ts=1.0, task="t", base_model="m",
    ...                         adapter_uri="file:///x/" + v, sha256="0" * 64, size_bytes=1,
    ...                         status=status, metadata={"domain": domain})
    >>> log = VersionLog().extend([event("v1", "promoted", "tweets"),
    ...                            event("v2", "promoted", "movies")])
    >>> {d: v.version_id for d, v in domain_targets(log, "t", {"tweets": "v1"},
    ...                                               RefusedVersions()).items()}
    {'movies': 'v2'}
    >>> _ = log.apply(event("v2", "rolled_back", "movies"))
    >>> domain_targets(log, "t", {"tweets": "v1", "movies": "v2"}, RefusedVersions())
    {'movies': None}
    """
    heads = versions.domain_heads(task)
    changes: dict[str, ModelVersion | None] = {
        domain: head for domain, head in heads.items()
        if head.version_id != serving.get(domain) and head not in refused}
    changes |= {domain: None for domain in serving if domain not in heads}
    return changes
