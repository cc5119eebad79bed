"""driftloop's wire contracts: event types, JSON Schemas, encode/decode, topics, settings.

This package knows neither Faust, Kafka clients nor torch: both ``streams`` and ``learner``
depend on it, and on nothing of each other.
"""

from __future__ import annotations

from .codec import (
    BATCH_SCHEMA_NAME,
    DEFAULT_MAX_BYTES,
    decode,
    decode_any,
    decode_batch,
    encode,
    encode_batch,
    to_dict,
)
from .enums import (
    DriftSignal,
    ExampleOrigin,
    FeedbackKind,
    FeedbackSource,
    LabelRequestReason,
    TaskKind,
    TriggerKind,
    VersionStatus,
)
from .errors import DriftloopError, FieldError, SettingsError, ValidationError
from .events import (
    EVENT_TYPES,
    DeadLetter,
    DriftAlert,
    Event,
    Feedback,
    Interaction,
    LabelRequest,
    ModelVersion,
    Scores,
    TrainingExample,
    TrainingRequest,
)
from .topics import TOPIC_SPECS, Topic, TopicSpec, topic_name

__all__ = [
    "BATCH_SCHEMA_NAME",
    "DEFAULT_MAX_BYTES",
    "EVENT_TYPES",
    "TOPIC_SPECS",
    "DeadLetter",
    "DriftAlert",
    "DriftSignal",
    "DriftloopError",
    "Event",
    "ExampleOrigin",
    "Feedback",
    "FeedbackKind",
    "FeedbackSource",
    "FieldError",
    "Interaction",
    "LabelRequest",
    "LabelRequestReason",
    "ModelVersion",
    "Scores",
    "SettingsError",
    "TaskKind",
    "Topic",
    "TopicSpec",
    "TrainingExample",
    "TrainingRequest",
    "TriggerKind",
    "ValidationError",
    "VersionStatus",
    "decode",
    "decode_any",
    "decode_batch",
    "encode",
    "encode_batch",
    "to_dict",
    "topic_name",
]
