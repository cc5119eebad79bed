"""The driftloop events as typed, frozen models.

Each model mirrors one JSON Schema file in ``schemas/json/`` (the contract for producers in
any language); ``tests/schemas/test_schema_contracts.py`` proves both judge samples the same way.
Unknown fields are kept (a newer producer's fields survive a replay through driftloop);
NaN and infinite numbers are refused everywhere.

One module per group: :mod:`.base` (:class:`Event`, the shared field shapes),
:mod:`.observations` (interactions and feedback), :mod:`.monitoring` (label requests, drift
alerts), :mod:`.training` (training requests), :mod:`.versions` (model versions, serving
acknowledgements, site adapters), :mod:`.dead_letter`, and :mod:`.catalog` (every type by
schema name).
"""

from __future__ import annotations

from ..fields import MAX_EMBEDDING_DIM
from .base import SCHEMA_VERSION, WIRE, Event
from .catalog import EVENT_TYPES
from .dead_letter import DeadLetter
from .monitoring import DriftAlert, LabelRequest
from .observations import Feedback, Interaction, Scores
from .training import ExamplesRef, TrainingExample, TrainingRequest
from .versions import ModelVersion, ServingAck, SiteAdapter

__all__ = [
    "EVENT_TYPES",
    "MAX_EMBEDDING_DIM",
    "SCHEMA_VERSION",
    "WIRE",
    "DeadLetter",
    "DriftAlert",
    "Event",
    "ExamplesRef",
    "Feedback",
    "Interaction",
    "LabelRequest",
    "ModelVersion",
    "Scores",
    "ServingAck",
    "SiteAdapter",
    "TrainingExample",
    "TrainingRequest",
]
