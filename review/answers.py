"""A person's answer to a label request, made into the ``Feedback`` the worker joins.

Both review paths (the built-in page and the Label Studio bridge) go through here, so they
agree on what an answer may be and on the feedback it becomes:

- a classification answer must be one of the task's labels (``[tasks.<name>].labels``,
  else the labels the model gave probabilities for); a generation answer is the corrected
  output, any non-empty text;
- the feedback id is derived from the label request's id (and the revision), so a request
  answered twice, or an answer published again after a restart, is the same event;
- ``source`` is ``reviewer``; who answered and which request it was go in ``metadata``.
"""

from __future__ import annotations

import time
from typing import Any

from ..schemas.enums import FeedbackKind, FeedbackSource, TaskKind
from ..schemas.errors import DriftloopError
from ..schemas.events import Feedback, LabelRequest
from ..schemas.settings import Settings

__all__ = ["AlreadyAnswered", "InvalidAnswer", "ReviewError", "UnknownRequest",
           "allowed_labels", "answer_kind", "answered_request", "feedback_id",
           "review_feedback"]


class ReviewError(DriftloopError):
    """A review answer that cannot become feedback. ``status`` is the HTTP status a review
    endpoint answers with."""

    status = 400


class InvalidAnswer(ReviewError):
    """The answer is not one the task accepts (a label outside the task's labels, an empty
    correction); nothing is published."""

    status = 400


class UnknownRequest(ReviewError):
    """No pending label request has this id."""

    status = 404


class AlreadyAnswered(ReviewError):
    """The request was answered already: a second answer is not a second label."""

    status = 409


def answer_kind(settings: Settings, task: str) -> FeedbackKind:
    """``label`` for a classification task, ``correction`` (the right output) for generation.

    >>> answer_kind(Settings(tasks={"qa": {"kind": "generation"}}), "qa")
    <FeedbackKind.CORRECTION: 'correction'>
    >>> answer_kind(Settings(), "sentiment")
    <FeedbackKind.LABEL: 'label'>
    """
    spec = settings.tasks.get(task)
    if spec is not None and spec.kind is TaskKind.GENERATION:
        return FeedbackKind.CORRECTION
    return FeedbackKind.LABEL


def allowed_labels(settings: Settings, request: LabelRequest) -> tuple[str, ...]:
    """The labels a reviewer may give: the task's configured labels, else the ones the model
    scored (its ``probabilities``), else its prediction; () for generation tasks.

    >>> from driftloop.schemas import Interaction
    >>> seen = Interaction(id="i", ts=1.0, task="t", model_version="v0", input="x",
    ...                    scores={"probabilities": {"neg": 0.4, "pos": 0.6}})
    >>> request = LabelRequest(id="l", ts=2.0, task="t", interaction=seen, reason="margin",
    ...                        priority=0.5)
    >>> allowed_labels(Settings(), request)
    ('neg', 'pos')
    >>> allowed_labels(Settings(tasks={"t": {"labels": ["a", "b", "c"]}}), request)
    ('a', 'b', 'c')
    """
    if answer_kind(settings, request.task) is FeedbackKind.CORRECTION:
        return ()
    spec = settings.tasks.get(request.task)
    if spec is not None and spec.labels:
        return tuple(spec.labels)
    seen = request.interaction
    if seen.scores.probabilities:
        return tuple(sorted(seen.scores.probabilities))
    return tuple(p for p in (seen.prediction,) if p)


def feedback_id(request_id: str, revision: int = 0) -> str:
    """The id of the feedback answering ``request_id``: the same for the same answer, so
    publishing it again is idempotent; a revision (a changed answer) gets its own.

    >>> feedback_id("lr-7"), feedback_id("lr-7", revision=2)
    ('lr-7.review', 'lr-7.review.2')
    """
    return f"{request_id}.review" if revision == 0 else f"{request_id}.review.{revision}"


def review_feedback(settings: Settings, request: LabelRequest, value: Any, *,
                    reviewer: str, revision: int = 0, ts: float | None = None,
                    metadata: dict[str, Any] | None = None) -> Feedback:
    """The feedback a reviewer's ``value`` for ``request`` becomes; :class:`InvalidAnswer`
    when the task does not accept it.

    >>> from driftloop.schemas import Interaction
    >>> seen = Interaction(id="i-9", ts=1.0, task="t", model_version="v0", input="x",
    ...                    scores={"probabilities": {"neg": 0.4, "pos": 0.6}})
    >>> request = LabelRequest(id="lr-1", ts=2.0, task="t", interaction=seen,
    ...                        reason="margin", priority=0.5)
    >>> event = review_feedback(Settings(), request, "neg", reviewer="ann", ts=3.0)
    >>> event.id, event.interaction_id, event.value, event.source.value
    ('lr-1.review', 'i-9', 'neg', 'reviewer')
    >>> event.metadata["label_request_id"], event.metadata["reviewer"]
    ('lr-1', 'ann')
    >>> review_feedback(Settings(), request, "maybe", reviewer="ann")
    Traceback (most recent call last):
    ...
    driftloop.review.answers.InvalidAnswer: 'maybe' is not a label of task 't' (neg, pos)
    """
    kind = answer_kind(settings, request.task)
    if not isinstance(value, str) or not value.strip():
        raise InvalidAnswer(f"an answer to {request.id!r} must be non-empty text, got "
                            f"{value!r}")
    if kind is FeedbackKind.LABEL:
        labels = allowed_labels(settings, request)
        if labels and value not in labels:
            raise InvalidAnswer(f"{value!r} is not a label of task {request.task!r} "
                                f"({', '.join(labels)})")
    extra = {"label_request_id": request.id, "reviewer": reviewer,
             "requested_at": request.ts, "reason": request.reason.value}
    if revision:
        extra["revises"] = feedback_id(request.id, revision - 1)
        extra["revision"] = revision
    extra.update(metadata or {})
    return Feedback(id=feedback_id(request.id, revision), interaction_id=request.interaction.id,
                    ts=time.time() if ts is None else ts, task=request.task, kind=kind,
                    value=value, source=FeedbackSource.REVIEWER, metadata=extra)


def answered_request(event: Feedback) -> str | None:
    """The label request a reviewer's feedback answers (None for any other feedback): the
    inverse of :func:`review_feedback`.

    >>> from driftloop.schemas import Feedback
    >>> answered_request(Feedback(id="f", interaction_id="i", ts=1.0, task="t", kind="label",
    ...                           value="neg", source="reviewer",
    ...                           metadata={"label_request_id": "lr-i"}))
    'lr-i'
    >>> answered_request(Feedback(id="f", interaction_id="i", ts=1.0, task="t", kind="label",
    ...                           value="neg", metadata={"label_request_id": "lr-i"})) is None
    True
    """
    if event.source is not FeedbackSource.REVIEWER:
        return None
    request_id = event.metadata.get("label_request_id")
    return request_id if isinstance(request_id, str) and request_id else None
