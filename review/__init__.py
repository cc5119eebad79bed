"""The human side of the loop: people answer the worker's label requests and their answers
come back as ``Feedback``.

:mod:`.answers` turns an answer into the feedback event both review paths publish (the
built-in review page and the Label Studio bridge). It needs only the base install.
"""

from __future__ import annotations

from .answers import (
    AlreadyAnswered,
    InvalidAnswer,
    ReviewError,
    UnknownRequest,
    allowed_labels,
    answer_kind,
    feedback_id,
    review_feedback,
)

__all__ = ["AlreadyAnswered", "InvalidAnswer", "ReviewError", "UnknownRequest",
           "allowed_labels", "answer_kind", "feedback_id", "review_feedback"]
