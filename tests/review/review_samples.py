"""Label requests and settings for the review page's tests.

Import from tests in this folder as ``from review_samples import label_request``.
"""

from __future__ import annotations

from collections.abc import Sequence

from driftloop.client.kafka import read_to_end_offsets
from driftloop.schemas import Feedback, Interaction, LabelRequest, Topic, decode_batch
from driftloop.schemas.settings import Settings

__all__ = ["LABELS", "TOKEN", "feedback_on_topic", "label_request", "review_settings"]

TOKEN = "review-token-for-tests"
LABELS = ("negative", "positive")


def label_request(n: int, *, task: str = "sentiment", priority: float = 0.5,
                  interaction: str | None = None, embedding: Sequence[float] | None = None,
                  ts: float | None = None, request_id: str | None = None,
                  text: str | None = None,
                  input_embedding: Sequence[float] | None = None) -> LabelRequest:
    """Request number ``n`` for interaction ``i<n>`` (or ``interaction``), as the worker
    makes them (``lr-<interaction id>``), the model unsure between the two labels."""
    iid = interaction or f"i{n}"
    seen = Interaction(id=iid, ts=1000.0 + n, task=task, model_version="v1",
                       input=text or f"review text number {n}", prediction="positive",
                       scores={"confidence": 0.52,
                               "probabilities": {"negative": 0.48, "positive": 0.52}},
                       embedding=list(embedding) if embedding is not None else None,
                       input_embedding=(list(input_embedding) if input_embedding is not None
                                        else None))
    return LabelRequest(id=request_id or f"lr-{iid}", ts=1000.0 + n if ts is None else ts,
                        task=task, interaction=seen, reason="margin", priority=priority)


def review_settings(settings: Settings, **review: object) -> Settings:
    """``settings`` with a review token and the given ``[review]`` values."""
    section = settings.review.model_validate(
        {**settings.review.model_dump(), "token": TOKEN, **review})
    return settings.model_copy(update={"review": section})


async def feedback_on_topic(settings: Settings) -> list[Feedback]:
    """Every feedback event on the topic now, in partition order."""
    records = await read_to_end_offsets(settings, settings.kafka.topic(Topic.FEEDBACK),
                                        timeout=30) or []
    events: list[Feedback] = []
    for record in records:
        events += [e for e in decode_batch(record.value, Feedback) if isinstance(e, Feedback)]
    return events
