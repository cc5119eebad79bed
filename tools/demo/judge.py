"""The demo's verdict once the children are gone: every version scored on held-out text.

The final version (the last promoted, or the static model when none was) and the static
model are scored on each domain's held-out texts; the live traffic is compared with what the
static model would have answered to the same texts; the best promoted version on the first
domain measures forgetting. The scoring runs in this process, after the children stopped,
so it has their cores.
"""

from __future__ import annotations

from ...schemas import VersionStatus
from .live import LoopOutcome
from .shifts import shift_results, version_at
from .traffic import DemoData
from .verdict import DomainResult, Verdict, VersionScorer, live_results

__all__ = ["final_verdict"]


def final_verdict(scorer: VersionScorer, data: DemoData, outcome: LoopOutcome) -> Verdict:
    """Score the static, final and promoted versions of a run and compare them per domain."""
    state, static, served = outcome.state, outcome.static, outcome.served
    promoted = state.with_status(VersionStatus.PROMOTED)
    final = promoted[-1] if promoted else static
    domains = [d for d, _, _ in data.boundaries()]
    for domain in domains:  # queue every job first: the scoring thread never waits on us
        scorer.submit(final, data.heldout[domain])
    by_id = dict(zip([i.id for i in data.stream], scorer.predict(static, data.stream),
                     strict=True))
    static_live = [by_id[s.item.id] for s in served]
    first = domains[0]
    best, best_version = -1.0, static.version_id
    for version in promoted:
        score = scorer.score(version, data.heldout[first])
        if score > best:
            best, best_version = score, version.version_id
    rows = []
    for domain in domains:
        live_served, live_static, events = live_results(served, static_live, domain)
        rows.append(DomainResult(domain, scorer.score(static, data.heldout[domain]),
                                 scorer.score(final, data.heldout[domain]),
                                 live_served, live_static, events))
    versions = {v.version_id: v for v in state.versions} | {static.version_id: static}

    def score(version_id: str, domain: str) -> float:
        return scorer.score(versions[version_id], data.heldout[domain])

    shifts = shift_results(served, domains, outcome.domain_starts, outcome.label_times,
                           static.version_id, score)
    at_first_shift = version_at(served, outcome.domain_starts.get(domains[1], float("inf")),
                                static.version_id) if len(domains) > 1 else final.version_id
    before_shift = sum(score(at_first_shift, d) for d in domains[1:]) / max(len(domains) - 1, 1)
    return Verdict(rows, best, best_version, static.version_id, final.version_id,
                   promoted=len(promoted) - 1,
                   rejected=len(state.with_status(VersionStatus.REJECTED)),
                   alerts=len(state.alerts), shifted=domains[1:], shifts=shifts,
                   at_first_shift=before_shift)
