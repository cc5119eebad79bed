"""What the worker publishes about a task besides training: label requests (active learning)
and drift alerts.

Examples
--------
>>> DriftAlert(id="d-1", ts=3.0, task="sentiment", signal="score", detector="PageHinkley",
...            events_seen=320).domain
'default'
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ..enums import DriftSignal, LabelRequestReason
from ..fields import Count, Name, Number, Probability, Slug, TextOrNumber, Timestamp
from .base import Event
from .observations import Interaction

__all__ = ["DriftAlert", "LabelRequest"]


class LabelRequest(Event):
    """An interaction sent to humans for a label (active learning).

    Examples
    --------
    >>> from driftloop.schemas import Interaction, LabelRequest
    >>> seen = Interaction(id="i-1", ts=1.0, task="sentiment", model_version="v0", input="meh")
    >>> LabelRequest(id="l-1", ts=2.0, task="sentiment", interaction=seen,
    ...              reason="margin", priority=0.8).reason
    <LabelRequestReason.MARGIN: 'margin'>
    """

    schema_name: Literal["driftloop.label_request"]
    id: Name
    ts: Timestamp
    task: Slug
    domain: Slug = "default"
    interaction: Interaction
    reason: LabelRequestReason
    priority: Probability
    score: Number | None = None


class DriftAlert(Event):
    """A drift detector fired on one signal of one task and domain.

    Examples
    --------
    >>> from driftloop.schemas import DriftAlert
    >>> DriftAlert(id="d-1", ts=3.0, task="sentiment", domain="tweets", signal="error_rate",
    ...            detector="ADWIN", statistics={"mean_before": 0.1, "mean_after": 0.3}).signal
    <DriftSignal.ERROR_RATE: 'error_rate'>
    """

    schema_name: Literal["driftloop.drift_alert"]
    id: Name
    ts: Timestamp
    task: Slug
    domain: Slug = "default"
    signal: DriftSignal
    detector: Name
    model_version: Name | None = None
    events_seen: Count = 0
    statistics: dict[str, TextOrNumber] = Field(default_factory=dict)
