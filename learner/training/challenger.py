"""Where an update starts: the served parent, or the challenger that is still learning.

An update trains from the served parent on the labels that arrived since the last request,
and the gate compares the candidate with that parent. After a shift each candidate moves a
little (a hundred labels of the new traffic), the paired test sees a handful of changed
answers and cannot call it better, and the next update starts again from the parent: the
rejected candidate's learning is lost, and no candidate ever carries enough of it to be
shown better. That is what the live loop measured: on VADER, candidates after a shift
differed from their parent on 4 to 25 of 38-56 held-out texts.

A rejected candidate that only lacked evidence (not behind its parent on the recent
traffic, not shown to forget older traffic, within the challenge-prompt tolerance) is a
*challenger*: the next update for the same parent continues from it, so the challenger
accumulates what every request since the last promotion taught, while the gate still
compares each new candidate with the **served parent** on the same texts. A chain ends when
a candidate is promoted (it becomes the parent) or falls behind (the next update starts
from the parent again). This is champion/challenger with the challenger trained online.

Off by default (``learner.continue_rejected``): in the live loop (5 seeds, 2026-12-04) it
raised VADER's served accuracy on shifted domains from 0.687 to 0.727 and lowered the TREC
questions stream's from 0.544 to 0.503, so no default is better on both streams yet.

Examples
--------
>>> from driftloop.learner.registry.version_log import VersionLog
>>> from driftloop.schemas.events import ModelVersion
>>> def version(vid, status, parent=None, **after):
...     return ModelVersion(version_id=vid, ts=1.0, task="t", base_model="m", status=status,
...                         adapter_uri="file:///s/" + "0" * 64, sha256="0" * 64, size_bytes=1,
...                         parent_version=parent, metrics_after=after)
>>> log = VersionLog().extend([
...     version("v1", "promoted"),
...     version("c1", "rejected", "v1", holdout_effect=0.02, replay_p_worse=0.6)])
>>> challenger_for(log, log.get("v1"), alpha=0.1).version_id
'c1'
>>> _ = log.apply(version("c2", "rejected", "v1", holdout_effect=-0.05))  # fell behind
>>> challenger_for(log, log.get("v1"), alpha=0.1) is None
True
"""

from __future__ import annotations

from ...schemas.enums import VersionStatus
from ...schemas.events import ModelVersion
from ..registry.version_log import VersionLog

__all__ = ["challenger_for"]


def challenger_for(versions: VersionLog, parent: ModelVersion, *, alpha: float,
                   challenge_tolerance: float = 0.02) -> ModelVersion | None:
    """The latest candidate trained for ``parent``, when it was rejected only for want of
    evidence (see the module's docstring); None otherwise."""
    latest = None
    for version in versions.versions(parent.task):
        if version.parent_version == parent.version_id:
            latest = version
    if latest is None or latest.status is not VersionStatus.REJECTED:
        return None
    before, after = latest.metrics_before, latest.metrics_after
    if after.get("holdout_effect", -1.0) < 0.0:  # behind the parent on the recent traffic
        return None
    if after.get("replay_p_worse", 1.0) < alpha:  # shown to forget older traffic
        return None
    if "challenge_score" in after and "challenge_score" in before and (
            after["challenge_score"] < before["challenge_score"] - challenge_tolerance - 1e-9):
        return None
    return latest
