"""The human side of the loop: people answer the worker's label requests and their answers
come back as ``Feedback``.

:mod:`.answers` turns an answer into the feedback event both review paths publish (the
built-in review page and the Label Studio bridge). It needs only the base install, and so
do :mod:`.queue` (the requests waiting and the answers held, no I/O) and :mod:`.desk` (label
requests from Kafka into the queue, answers out as feedback), and :mod:`.views` (what the
page shows of a request). The page itself (:mod:`.page`, with :mod:`.auth` and
:mod:`.metrics`) needs the ``review`` extra (aiohttp, prometheus-client) and is imported
from its module.
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
from .desk import DeskNotReady, ReviewDesk, review_group
from .queue import HeldAnswer, Neighbour, NothingToUndo, ReviewQueue, TaskCounts

__all__ = ["AlreadyAnswered", "DeskNotReady", "HeldAnswer", "InvalidAnswer", "Neighbour",
           "NothingToUndo", "ReviewDesk", "ReviewError", "ReviewQueue", "TaskCounts",
           "UnknownRequest", "allowed_labels", "answer_kind", "feedback_id", "review_feedback",
           "review_group"]
