"""Label requests and people's answers per task, for ``driftloop status``.

A request is *answered* when reviewer feedback names it (``metadata.label_request_id``, as
both review paths write it; :func:`~driftloop.review.answers.answered_request`), else
*pending*. The time to answer is from the request's event time to its first answer's. The
worker re-emits a request under the same id (a backfill, a redelivery), so requests are
counted by id.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass

from ...review.answers import answered_request
from ...schemas.codec import decode, decode_batch
from ...schemas.errors import ValidationError
from ...schemas.events import Feedback, LabelRequest
from ...schemas.settings import Settings
from ...schemas.topics import Topic
from ..kafka.topic_reader import read_snapshot

__all__ = ["ReviewCounts", "count_reviews", "tally_reviews"]


@dataclass(frozen=True, slots=True)
class ReviewCounts:
    """One task's label requests: sent, answered, pending, median seconds to an answer."""

    task: str
    sent: int
    answered: int
    median_answer_s: float | None

    @property
    def pending(self) -> int:
        return self.sent - self.answered


def tally_reviews(requests: Iterable[LabelRequest],
                  feedback: Iterable[Feedback]) -> dict[str, ReviewCounts]:
    """Counts per task from the requests and the feedback (any feedback; reviewers' count).

    >>> from driftloop.schemas import Interaction
    >>> seen = Interaction(id="i1", ts=0.0, task="t", model_version="v0", input="x")
    >>> asked = [LabelRequest(id=f"lr-{n}", ts=10.0, task="t", interaction=seen,
    ...                       reason="margin", priority=0.5) for n in (1, 2, 2, 3)]
    >>> said = [Feedback(id=f"f{n}", interaction_id="i1", ts=ts, task="t", kind="label",
    ...                  value="pos", source="reviewer", metadata={"label_request_id": rid})
    ...         for n, (rid, ts) in enumerate([("lr-1", 40.0), ("lr-2", 20.0), ("lr-2", 90.0)])]
    >>> counts = tally_reviews(asked, said)["t"]
    >>> counts.sent, counts.answered, counts.pending, counts.median_answer_s
    (3, 2, 1, 20.0)
    """
    asked: dict[str, LabelRequest] = {}
    for request in requests:
        asked.setdefault(request.id, request)
    first: dict[str, float] = {}
    for event in feedback:
        request_id = answered_request(event)
        if request_id in asked:
            first[request_id] = min(event.ts, first.get(request_id, event.ts))
    tasks = sorted({request.task for request in asked.values()})
    counts = {}
    for task in tasks:
        ids = [rid for rid, request in asked.items() if request.task == task]
        waits = [max(0.0, first[rid] - asked[rid].ts) for rid in ids if rid in first]
        counts[task] = ReviewCounts(task, len(ids), len(waits),
                                    statistics.median(waits) if waits else None)
    return counts


async def count_reviews(settings: Settings, *, timeout: float = 60.0) -> dict[str, ReviewCounts]:
    """Read ``label-requests`` and ``feedback`` to their ends and tally them (undecodable
    records are skipped: dead-lettering them is the worker's job)."""
    requests = []
    for record in await read_snapshot(settings, settings.kafka.topic(Topic.LABEL_REQUESTS),
                                      timeout=timeout):
        try:
            requests.append(decode(record.value or b"", LabelRequest))
        except ValidationError:
            continue
    feedback: list[Feedback] = []
    for record in await read_snapshot(settings, settings.kafka.topic(Topic.FEEDBACK),
                                      timeout=timeout):
        try:
            events = decode_batch(record.value or b"", Feedback)
        except ValidationError:
            continue
        feedback += [e for e in events if isinstance(e, Feedback) and answered_request(e)]
    return tally_reviews(requests, feedback)
