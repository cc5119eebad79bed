"""What a live-loop run achieved, measured against the goals of learning that pays.

From a :class:`~driftloop.tools.bench.quality.live_loop.LiveRecord` and the stream's domain
boundaries: for each shift, how many labels it took until a version better than the one
serving at the shift (on the new domain's held-out texts) was served; the final held-out
accuracy on the shifted domains; forgetting of the first domain; live served accuracy;
false promotions (a promoted version worse than the version it replaced by more than a point
on the held-out texts of the domains seen so far that it serves); and alerts far from any
shift.

Under a task's ``adapter_per_domain`` each domain the producers name is served by its own
lineage's head (the task's latest promotion until it has one): every figure reads the
version serving the domain it scores (:func:`serving_at`), through the names the run's
producers gave each true domain (:attr:`LiveRecord.domain_names`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ....learner.registry.version_log import DOMAIN_METADATA_KEY
from .live_loop import LiveRecord, VersionRecord

__all__ = ["SHIFT_LABELS", "ShiftOutcome", "arm_counts", "false_promotions", "labels_by",
           "lineage_of", "live_metrics", "server", "serving_at", "shift_outcomes",
           "trained_on", "verdict", "worst_slice_change"]

# Labels after a shift within which a better version must serve (issue 20's goal).
SHIFT_LABELS = 240

# Events after a shift within which an alert is the shift's; later ones are false alarms.
ALERT_WINDOW = 400


@dataclass(frozen=True, slots=True)
class ShiftOutcome:
    """One shift: from which domain to which, and when a better version served."""

    to_domain: str
    at_event: int
    before: float
    """Held-out accuracy on the new domain of the version serving at the shift."""
    labels_until_better: int | None
    best_within_segment: float
    candidates: tuple[dict[str, Any], ...] = ()
    """The candidates decided within ``SHIFT_LABELS`` labels of the shift: labels since it,
    the gate's verdict (:func:`verdict`) and its recent slice's size and effect."""

    def to_dict(self) -> dict[str, Any]:
        return {"to": self.to_domain, "at_event": self.at_event, "before": round(self.before, 4),
                "labels_until_better": self.labels_until_better,
                "best": round(self.best_within_segment, 4), "candidates": list(self.candidates)}


def verdict(version: VersionRecord, alpha: float,
            evidence: Literal["answers", "scores"] = "answers") -> str:
    """What the gate made of one candidate, from the figures its event carries:
    ``promoted``; ``forgetting`` (significantly worse on older traffic at ``alpha``);
    ``better, refused`` (better on recent traffic at ``alpha`` by the gate's test, McNemar's
    or with ``evidence="scores"`` the proper scores' sign flips, refused by another check: a
    slice, the challenges, robustness); else ``not shown better``.

    >>> from driftloop.schemas.events import ModelVersion
    >>> event = ModelVersion(version_id="v1", ts=0.0, task="t", base_model="m",
    ...                      adapter_uri="file:///s/" + "0" * 64, sha256="0" * 64,
    ...                      size_bytes=1, status="rejected",
    ...                      metrics_after={"holdout_p_better": 0.04, "replay_p_worse": 0.3})
    >>> verdict(VersionRecord(event, 10, 5), alpha=0.1)
    'better, refused'
    >>> verdict(VersionRecord(event, 10, 5), alpha=0.01)
    'not shown better'
    >>> verdict(VersionRecord(event, 10, 5), alpha=0.1, evidence="scores")  # not measured
    'not shown better'
    """
    after = version.event.metrics_after
    if version.promoted:
        return "promoted"
    if after.get("replay_p_worse", 1.0) < alpha:
        return "forgetting"
    p_better = (after.get("holdout_p_better_scores", 1.0) if evidence == "scores"
                else after.get("holdout_p_better", 1.0))
    if p_better < alpha:
        return "better, refused"
    return "not shown better"


def serving_at(versions: Sequence[VersionRecord], event: int,
               domain: str | None = None) -> VersionRecord:
    """The version serving ``domain`` (a name the producers give) at stream position
    ``event``: the last promoted by then of the domain's lineage, else the last promoted of
    any (one lineage per task, or a domain without a head yet).

    >>> from driftloop.schemas.events import ModelVersion
    >>> def v(vid, at, domain):
    ...     return VersionRecord(ModelVersion(
    ...         version_id=vid, ts=0.0, task="t", base_model="m", adapter_uri="file:///s/x",
    ...         sha256="0" * 64, size_bytes=1, status="promoted",
    ...         metadata={"domain": domain}), at, 0)
    >>> versions = [v("v0", 0, "a"), v("v1", 50, "b"), v("v2", 90, "a")]
    >>> [serving_at(versions, 60, d).event.version_id for d in ("a", "b", "c", None)]
    ['v0', 'v1', 'v1', 'v1']
    """
    return server([v for v in versions if v.at_event <= event], domain)


def server(versions: Sequence[VersionRecord], domain: str | None) -> VersionRecord:
    """Of ``versions`` (in decision order), the one serving ``domain`` after the last."""
    promoted = [v for v in versions if v.promoted]
    own = [v for v in promoted if domain is not None and lineage_of(v) == domain]
    return (own or promoted)[-1]


def lineage_of(version: VersionRecord) -> str | None:
    """The domain whose lineage ``version`` belongs to (None: one lineage per task)."""
    domain = version.event.metadata.get(DOMAIN_METADATA_KEY)
    return domain if isinstance(domain, str) else None


def shift_outcomes(record: LiveRecord, boundaries: Sequence[tuple[str, int, int]],
                   label_marks: Sequence[tuple[int, int]], *, alpha: float,
                   evidence: Literal["answers", "scores"] = "answers") -> list[ShiftOutcome]:
    """Each shift after the first domain, with the labels until a better version served and
    the candidates decided within ``SHIFT_LABELS`` labels of it (``alpha``, ``evidence``: the
    gate's level and test).

    ``label_marks`` are ``(event index, labels received so far)`` pairs in stream order.
    """
    outcomes = []
    for domain, start, end in boundaries[1:]:
        name = record.domain_names.get(domain, domain)
        serving = serving_at(record.versions, start, name)
        before = serving.heldout.get(domain, 0.0)
        during = [v for i, v in enumerate(record.versions)
                  if v.promoted and start <= v.at_event < end
                  and server(record.versions[:i + 1], name) is v]  # it serves the domain
        better = next((v for v in during if v.heldout.get(domain, 0.0) > before), None)
        best = max([before] + [v.heldout.get(domain, 0.0) for v in during])
        at = labels_by(label_marks, start)
        decided = [v for v in record.versions[1:]
                   if start <= v.at_event < end and v.labels_seen - at <= SHIFT_LABELS]
        candidates = tuple(
            {"labels": v.labels_seen - at, "verdict": verdict(v, alpha, evidence),
             "recent": int(v.event.metrics_after.get("holdout_count", 0)),
             "effect": round(v.event.metrics_after.get("holdout_effect", 0.0), 4)}
            for v in decided)
        outcomes.append(ShiftOutcome(
            domain, start, before, None if better is None else better.labels_seen - at,
            best, candidates))
    return outcomes


def labels_by(marks: Sequence[tuple[int, int]], event: int) -> int:
    """Labels received by the time the stream reached ``event``.

    >>> labels_by([(16, 5), (32, 12), (48, 20)], 40)
    12
    """
    seen = 0
    for at, labels in marks:
        if at > event:
            break
        seen = labels
    return seen


def false_promotions(versions: Sequence[VersionRecord], domains_seen: dict[int, list[str]],
                     margin: float = 0.01,
                     names: dict[str, str] | None = None) -> tuple[int, int]:
    """``(promotions after the first, those worse than the version they replaced by >
    margin)`` on the held-out texts of the domains seen when they were promoted that they
    serve (``names``: the name producers give each domain; a domain is its own name)."""
    names = names or {}
    promotions = worse = 0
    for i, child in enumerate(versions):
        if not child.promoted or not any(v.promoted for v in versions[:i]):
            continue
        promotions += 1
        served = [(d, server(versions[:i], names.get(d, d)))
                  for d in domains_seen[child.at_event]
                  if server(versions[:i + 1], names.get(d, d)) is child]
        if served:
            old = sum(before.heldout[d] for d, before in served) / len(served)
            new = sum(child.heldout[d] for d, _ in served) / len(served)
            worse += new < old - margin
    return promotions, worse


def live_metrics(record: LiveRecord, boundaries: Sequence[tuple[str, int, int]],
                 label_marks: Sequence[tuple[int, int]], static_served: Sequence[bool], *,
                 alpha: float, evidence: Literal["answers", "scores"] = "answers"
                 ) -> dict[str, Any]:
    """Every goal's figure for one run (``static_served``: the bootstrap version's answers
    on the same stream, correct or not; ``alpha``, ``evidence``: the gate's level and test,
    to tell its verdicts)."""
    first, first_end = boundaries[0][0], boundaries[0][2]
    shifted = [d for d, _, _ in boundaries[1:]]
    names = record.domain_names
    static = next(v for v in record.versions if v.promoted)
    final = {d: server(record.versions, names.get(d, d)) for d, _, _ in boundaries}
    after_first = serving_at(record.versions, first_end - 1, names.get(first, first))
    domains_seen = {v.at_event: [d for d, s, _ in boundaries if s <= max(v.at_event - 1, 0)]
                    for v in record.versions}
    promotions, worse = false_promotions(record.versions, domains_seen, names=names)
    live = [ok for (domain, _, ok) in record.served if domain in shifted]
    static_live = [ok for (domain, _, _), ok in zip(record.served, static_served, strict=True)
                   if domain in shifted]
    shifts = shift_outcomes(record, boundaries, label_marks, alpha=alpha,
                            evidence=evidence)
    starts = [s for _, s, _ in boundaries[1:]]
    far = [a for a in record.alerts if not any(s <= a[0] < s + ALERT_WINDOW for s in starts)]
    return {
        "shifts": [s.to_dict() for s in shifts],
        "static_shifted": _mean(static.heldout[d] for d in shifted),
        "final_shifted": _mean(final[d].heldout[d] for d in shifted),
        "forgetting_first": after_first.heldout[first] - final[first].heldout[first],
        "live_shifted": _mean(live), "static_live_shifted": _mean(static_live),
        "promotions": promotions, "false_promotions": worse,
        "requests": len(record.requests),
        "requests_by_trigger": dict(Counter(r[1].value for r in record.requests)),
        "alerts": len(record.alerts), "alerts_far_from_shifts": len(far),
        "examples_trained": sum(r[3] for r in record.requests),
        "examples_trained_on": sum(trained_on(v) for v in record.versions),
        "labels": record.labels, "update_seconds": round(record.update_seconds, 1),
        "final_heldout": {d: round(final[d].heldout[d], 4) for d in final},
    } | arm_counts(record.versions) | worst_slice_change(record.versions)


def worst_slice_change(versions: Sequence[VersionRecord]) -> dict[str, float]:
    """The mean, over gated versions after the first, of the accuracy change of the slice
    of the gate's texts that moved most against the candidate (``slice.*`` metrics; nothing
    when no gate measured slices)."""
    changes = []
    for version in versions[1:]:
        before, after = version.event.metrics_before, version.event.metrics_after
        moved = [after[k] - before[k] for k in after
                 if k.startswith("slice.") and not k.endswith("_count") and k in before]
        if moved:
            changes.append(min(moved))
    return {"worst_slice_change": round(sum(changes) / len(changes), 4)} if changes else {}


def arm_counts(versions: Sequence[VersionRecord]) -> dict[str, int]:
    """With ``learner.retrieval``: how many updates put each arm before the gate, and how
    many of each were promoted (nothing without it)."""
    arms = [(v.event.metadata.get("arm"), v.promoted) for v in versions]
    counts: dict[str, int] = {}
    for arm, promoted in arms:
        if arm is None:
            continue
        counts[f"arm_{arm}"] = counts.get(f"arm_{arm}", 0) + 1
        counts[f"arm_{arm}_promoted"] = counts.get(f"arm_{arm}_promoted", 0) + int(promoted)
    return counts


def trained_on(version: VersionRecord) -> int:
    """Examples a version's update took gradient steps on: its request's training part,
    without the gate's held-out and the early-stop slices (0 when the event does not say).

    >>> from driftloop.schemas.events import ModelVersion
    >>> event = ModelVersion(version_id="v", ts=0.0, task="t", base_model="m",
    ...                      adapter_uri="file:///s/v", sha256="0" * 64, size_bytes=1,
    ...                      status="rejected", metadata={"examples": {"train": 150,
    ...                                                                "holdout_new": 40}})
    >>> trained_on(VersionRecord(event, 0, 0))
    150
    """
    examples = version.event.metadata.get("examples")
    return int(examples.get("train", 0)) if isinstance(examples, dict) else 0


def _mean(values: Any) -> float:
    values = list(values)
    return round(sum(values) / len(values), 4) if values else 0.0

