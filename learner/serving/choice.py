"""What a replica should serve for a task, chosen from the folded ``model-versions`` log.

The served version follows the log's promoted head. A head the replica refused is not a
target (the current version stays). When the head is rolled back and nothing else is
re-promoted, the log has no head; a replica then falls back to the newest version still
promoted rather than keep serving the rolled-back one. The canary candidate is the newest
version of the task still in ``candidate`` status.
"""

from __future__ import annotations

from ...schemas.enums import VersionStatus
from ...schemas.events import ModelVersion
from ..registry.version_log import VersionLog
from .refusals import RefusedVersions

__all__ = ["newest_candidate", "served_target"]


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
