"""Every event type by its schema name: what a decoder may meet on the wire.

Examples
--------
>>> EVENT_TYPES["driftloop.feedback"].__name__
'Feedback'
>>> len(EVENT_TYPES)
9
"""

from __future__ import annotations

from .base import Event
from .dead_letter import DeadLetter
from .monitoring import DriftAlert, LabelRequest
from .observations import Feedback, Interaction
from .training import TrainingRequest
from .versions import ModelVersion, ServingAck, SiteAdapter

__all__ = ["EVENT_TYPES"]

EVENT_TYPES: dict[str, type[Event]] = {
    cls.SCHEMA_NAME: cls
    for cls in (Interaction, Feedback, LabelRequest, DriftAlert, TrainingRequest, ModelVersion,
                DeadLetter, ServingAck, SiteAdapter)
}
