"""What the review page shows of a label request, as the JSON its API answers with.

The text, the model's answer and confidence, why it was asked, the labels a reviewer may
give (with their keyboard shortcuts), and the nearest requests of the same task.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..schemas.enums import FeedbackKind
from ..schemas.events import LabelRequest
from .answers import allowed_labels, answer_kind
from .queue import ReviewQueue

__all__ = ["RESERVED_KEYS", "request_view", "shortcuts"]

# Keys the page keeps for itself: u undoes, s skips.
RESERVED_KEYS = frozenset("us")


def shortcuts(labels: Sequence[str]) -> dict[str, list[str]]:
    """Keys per label: its number (1..9) and its first letter where no other label shares
    it (and the page does not use it).

    >>> shortcuts(["negative", "neutral", "positive"])
    {'negative': ['1'], 'neutral': ['2'], 'positive': ['3', 'p']}
    >>> shortcuts(["spam", "ham"])
    {'spam': ['1'], 'ham': ['2', 'h']}
    """
    firsts = [label[:1].lower() for label in labels]
    keys: dict[str, list[str]] = {}
    for index, (label, first) in enumerate(zip(labels, firsts, strict=True)):
        mine = [str(index + 1)] if index < 9 else []
        if first.isalnum() and not first.isdigit() and firsts.count(first) == 1 \
                and first not in RESERVED_KEYS:
            mine.append(first)
        keys[label] = mine
    return keys


def request_view(queue: ReviewQueue, request: LabelRequest, *,
                 neighbours: int = 3) -> dict[str, Any]:
    """The JSON the page renders for ``request``.

    >>> from driftloop.schemas import Interaction
    >>> from driftloop.schemas.settings import Settings
    >>> seen = Interaction(id="i1", ts=1.0, task="t", model_version="v3", input="meh",
    ...                    prediction="pos", scores={"confidence": 0.55,
    ...                                              "probabilities": {"neg": 0.45, "pos": 0.55}})
    >>> request = LabelRequest(id="lr-i1", ts=2.0, task="t", interaction=seen, reason="margin",
    ...                        priority=0.9)
    >>> view = request_view(ReviewQueue(Settings()), request)
    >>> view["text"], view["model"]["answer"], view["labels"], view["kind"]
    ('meh', 'pos', ['neg', 'pos'], 'label')
    """
    seen = request.interaction
    kind = answer_kind(queue.settings, request.task)
    labels = list(allowed_labels(queue.settings, request))
    return {
        "request_id": request.id,
        "interaction_id": seen.id,
        "task": request.task,
        "domain": request.domain,
        "text": seen.input,
        "model": {"answer": seen.prediction if seen.prediction is not None else seen.output,
                  "confidence": seen.scores.confidence,
                  "probabilities": seen.scores.probabilities,
                  "version": seen.model_version},
        "reason": request.reason.value,
        "priority": request.priority,
        "score": request.score,
        "requested_at": request.ts,
        "kind": kind.value,
        "labels": labels if kind is FeedbackKind.LABEL else [],
        "shortcuts": shortcuts(labels) if kind is FeedbackKind.LABEL else {},
        "neighbours": [{"request_id": n.request_id, "text": n.text, "label": n.label,
                        "similarity": round(n.similarity, 4)}
                       for n in queue.neighbours(request.id, neighbours)],
    }
