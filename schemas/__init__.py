"""driftloop's wire contracts: event types, JSON Schemas, encode/decode, topics, settings.

Errors read ``<event>.<path>: <reason>``, for example
``feedback.value: expected a number for kind=rating, got "five"``; every decode function
raises :class:`ValidationError` and nothing else.

This package knows neither Faust, Kafka clients nor torch: both ``streams`` and ``learner``
depend on it, and on nothing of each other.
"""

from __future__ import annotations

from .codec import (
    BATCH_MAX_BYTES,
    BATCH_SCHEMA_NAME,
    DEFAULT_MAX_BYTES,
    decode,
    decode_any,
    decode_batch,
    encode,
    encode_batch,
    max_bytes_for,
    to_dict,
)
from .contracts import JSON_SCHEMA_NAMES, json_schema
from .enums import (
    DriftSignal,
    ExampleOrigin,
    FeedbackKind,
    FeedbackSource,
    LabelRequestReason,
    ServingStatus,
    TaskKind,
    TriggerKind,
    VersionStatus,
)
from .errors import DriftloopError, FieldError, SettingsError, ValidationError
from .events import (
    EVENT_TYPES,
    SCHEMA_VERSION,
    DeadLetter,
    DriftAlert,
    Event,
    Feedback,
    Interaction,
    LabelRequest,
    ModelVersion,
    Scores,
    ServingAck,
    SiteAdapter,
    TrainingExample,
    TrainingRequest,
)
from .topics import TOPIC_SPECS, Topic, TopicSpec, topic_name

__all__ = [
    "BATCH_MAX_BYTES",
    "BATCH_SCHEMA_NAME",
    "DEFAULT_MAX_BYTES",
    "EVENT_TYPES",
    "JSON_SCHEMA_NAMES",
    "SCHEMA_VERSION",
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
    "ServingAck",
    "ServingStatus",
    "SettingsError",
    "SiteAdapter",
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
    "json_schema",
    "max_bytes_for",
    "to_dict",
    "topic_name",
]
