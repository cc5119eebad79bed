"""The versions of a task as a tree: who descends from whom, how each ended (promoted,
rejected, rolled back), and why candidates were turned down, grouped so a run of rejections
reads as one sentence instead of seven paragraphs of p-values."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from ....schemas import ModelVersion, TrainingRequest, VersionStatus

__all__ = ["RejectionRun", "VersionNode", "build_lineage", "reason_gists", "rejection_runs"]

_FAILING = ("not ", "forgetting", "worse", "below", "fail", "refus", "unstable", "exceed",
            "too ", "no ")
_FIGURE = re.compile(r"p\(\w+\)\s*=?|\[[^\]]*\]")  # p(worse)=0.3, [-0.1, +0.2]
_NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?")


@dataclass(slots=True)
class VersionNode:
    """One version: its latest event (status, reason, metrics) and every status it had."""

    event: ModelVersion
    first_ts: float
    statuses: list[tuple[float, VersionStatus]] = field(default_factory=list)
    request: TrainingRequest | None = None

    @property
    def version_id(self) -> str:
        return self.event.version_id

    @property
    def parent(self) -> str | None:
        return self.event.parent_version

    @property
    def status(self) -> VersionStatus:
        return self.event.status

    @property
    def decided_ts(self) -> float:
        """When the gate decided (the first status other than candidate)."""
        return next((ts for ts, s in self.statuses if s is not VersionStatus.CANDIDATE),
                    self.event.ts)

    @property
    def update_latency_s(self) -> float | None:
        """From the training request to the gate's decision: the learner's whole update."""
        return None if self.request is None else max(0.0, self.decided_ts - self.request.ts)


def build_lineage(versions: Iterable[ModelVersion],
                  requests: Iterable[TrainingRequest] = ()) -> dict[str, list[VersionNode]]:
    """Nodes per task in order of first appearance; a version's later events (promoted,
    then rolled back) update its node.

    >>> def event(vid, status, ts, parent=None):
    ...     return ModelVersion(version_id=vid, ts=ts, task="t", base_model="m",
    ...                         parent_version=parent, adapter_uri="file:///a",
    ...                         sha256="0" * 64, size_bytes=1, status=status)
    >>> tree = build_lineage([event("v1", "promoted", 1.0), event("v2", "rejected", 2.0, "v1"),
    ...                       event("v1", "rolled_back", 3.0)])
    >>> [(n.version_id, n.parent, n.status.value) for n in tree["t"]]
    [('v1', None, 'rolled_back'), ('v2', 'v1', 'rejected')]
    """
    by_request = {r.id: r for r in requests}
    nodes: dict[str, VersionNode] = {}
    for version in sorted(versions, key=lambda v: v.ts):
        node = nodes.get(version.version_id)
        if node is None:
            node = nodes[version.version_id] = VersionNode(
                version, version.ts, request=by_request.get(version.training_request_id or ""))
        node.event = version
        node.statuses.append((version.ts, version.status))
    tree: dict[str, list[VersionNode]] = {}
    for node in sorted(nodes.values(), key=lambda n: n.first_ts):
        tree.setdefault(node.event.task, []).append(node)
    return tree


def reason_gists(reason: str) -> list[str]:
    """The failing clauses of a gate reason without their figures, so that rejections for
    the same cause group together.

    >>> reason_gists("recent: 0.600 vs 0.550 on 20: +0.050 [-0.1, +0.2], 3 won 2 lost, "
    ...              "p(better)=0.5 >= 0.05: not shown better; older: 0.9 vs 0.9 on 10: "
    ...              "+0.000 [-0.1, +0.1], 0 won 0 lost, p(better)=1, p(worse)=1")
    ['recent: not shown better']
    >>> reason_gists("holdout: 0.800 > 0.700; replay: 0.500 < 0.900 - 0.05 (forgetting)")
    ['replay: forgetting']
    """
    gists = []
    for clause in (c.strip() for c in reason.split(";")):
        if not clause:
            continue
        head, colon, rest = clause.partition(":")
        if not colon:
            head, rest = "", clause
        tail = rest.strip()
        parenthesised = re.search(r"\(([^()]*)\)\s*$", tail)
        if parenthesised and not _NUMBER.fullmatch(parenthesised.group(1).strip()):
            gist = parenthesised.group(1)
        elif ":" in tail:
            gist = tail.rsplit(":", 1)[1]
        else:
            gist = tail
        gist = _FIGURE.sub("", gist)
        gist = " ".join(_NUMBER.sub("", gist).replace("+", " ").split()).strip(" ,.-<>=")
        if any(word in f"{gist.lower()} " for word in _FAILING):
            gists.append(f"{head.strip()}: {gist}" if head.strip() else gist)
    return gists


@dataclass(frozen=True, slots=True)
class RejectionRun:
    """Consecutive rejected candidates of one task, and their causes counted."""

    versions: tuple[str, ...]
    start: float
    end: float
    causes: tuple[tuple[str, int], ...]

    def sentence(self) -> str:
        """
        >>> RejectionRun(("a", "b", "c"), 0.0, 60.0, (("recent: not shown better", 3),)
        ...              ).sentence()
        '3 candidates in a row were rejected: recent: not shown better (3 of 3).'
        """
        n = len(self.versions)
        causes = ", ".join(f"{cause} ({count} of {n})" for cause, count in self.causes)
        return (f"{n} candidates in a row were rejected: "
                f"{causes or 'the gate gave no reason'}.")


def rejection_runs(nodes: list[VersionNode], *, at_least: int = 2) -> list[RejectionRun]:
    """Runs of ``at_least`` or more rejected candidates in a row (in time order), with the
    causes of their rejections counted, most frequent first.

    >>> def event(vid, status, reason=""):
    ...     return ModelVersion(version_id=vid, ts=float(vid[1:]), task="t", base_model="m",
    ...                         adapter_uri="file:///a", sha256="0" * 64, size_bytes=1,
    ...                         status=status, reason=reason)
    >>> tree = build_lineage([event("v1", "promoted"),
    ...                       event("v2", "rejected", "holdout: 0.5 not better than 0.6"),
    ...                       event("v3", "rejected", "holdout: 0.4 not better than 0.6")])
    >>> [run.sentence() for run in rejection_runs(tree["t"])]
    ['2 candidates in a row were rejected: holdout: not better than (2 of 2).']
    """
    runs: list[RejectionRun] = []
    current: list[VersionNode] = []

    def close() -> None:
        if len(current) >= at_least:
            causes: Counter[str] = Counter()
            for node in current:
                causes.update(set(reason_gists(node.event.reason)))
            runs.append(RejectionRun(tuple(n.version_id for n in current), current[0].first_ts,
                                     current[-1].event.ts, tuple(causes.most_common())))
        current.clear()

    for node in nodes:
        if node.status is VersionStatus.REJECTED:
            current.append(node)
        elif node.status is not VersionStatus.CANDIDATE:
            close()
    close()
    return runs
