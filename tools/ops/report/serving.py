"""What reached people and replicas: label requests sent and answered, and each serving
replica's acknowledgements with how long after a promotion they came."""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass

from ....review.answers import answered_request
from ....schemas import (
    Feedback,
    LabelRequest,
    ModelVersion,
    ServingAck,
    ServingStatus,
    VersionStatus,
)
from ..reviews import ReviewCounts, tally_reviews
from ..status import ReplicaState, latest_acks

__all__ = ["ReplicaAcks", "count_label_requests", "replica_acks"]

def count_label_requests(requests: Iterable[LabelRequest],
                         feedback: Iterable[Feedback]) -> dict[str, ReviewCounts]:
    """Label requests per task: sent, answered by a reviewer, median time to the answer.

    >>> from driftloop.schemas import Interaction
    >>> seen = Interaction(id="i1", ts=0.0, task="t", model_version="v0", input="x")
    >>> asked = [LabelRequest(id="lr-1", ts=10.0, task="t", interaction=seen, reason="margin",
    ...                       priority=0.5)]
    >>> said = [Feedback(id="f", interaction_id="i1", ts=25.0, task="t", kind="label",
    ...                  value="pos", source="reviewer", metadata={"label_request_id": "lr-1"})]
    >>> counts = count_label_requests(asked, said)["t"]
    >>> counts.sent, counts.answered, counts.median_answer_s
    (1, 1, 15.0)
    """
    return tally_reviews(requests, [event for event in feedback if answered_request(event)])


@dataclass(frozen=True, slots=True)
class ReplicaAcks:
    """One replica of one task: its latest state, how many acks it sent, how many were
    refusals, and the median delay from a promotion to this replica's ack of it."""

    latest: ReplicaState
    acks: int
    refused: int
    median_delay_s: float | None


def replica_acks(acks: Iterable[ServingAck],
                 versions: Iterable[ModelVersion]) -> dict[str, list[ReplicaAcks]]:
    """Per task, every replica that acknowledged anything.

    >>> promoted = ModelVersion(version_id="v1", ts=100.0, task="t", base_model="m",
    ...                         adapter_uri="file:///a", sha256="0" * 64, size_bytes=1,
    ...                         status="promoted")
    >>> acks = [ServingAck(ts=103.0, replica="pod-1", task="t", version_id="v1",
    ...                    status="serving")]
    >>> [(r.latest.replica, r.acks, r.median_delay_s) for r in replica_acks(acks, [promoted])["t"]]
    [('pod-1', 1, 3.0)]
    """
    acks = list(acks)
    promoted_at = {(v.task, v.version_id): v.ts for v in versions
                   if v.status is VersionStatus.PROMOTED}
    out: dict[str, list[ReplicaAcks]] = {}
    for task, states in latest_acks(acks).items():
        for state in states:
            mine = [a for a in acks if a.task == task and a.replica == state.replica]
            delays = [a.ts - promoted_at[(task, a.version_id)] for a in mine
                      if (task, a.version_id) in promoted_at
                      and a.ts >= promoted_at[(task, a.version_id)]]
            out.setdefault(task, []).append(ReplicaAcks(
                state, len(mine), sum(a.status is ServingStatus.REFUSED for a in mine),
                statistics.median(delays) if delays else None))
    return out
