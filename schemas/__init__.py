"""driftloop's wire contracts: events, commands, JSON Schemas, encode/decode, topics, settings.

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
from .commands import (
    COMMAND_HEADER,
    MAX_COMMAND_BYTES,
    MAX_EVENT_COMMAND_BYTES,
    Command,
    decode_command,
    encode_command,
    manual_trigger,
)
from .contracts import JSON_SCHEMA_NAMES, json_schema
from .enums import (
    CommandKind,
    DeadLetterReason,
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
from .errors import CommandError, DriftloopError, FieldError, SettingsError, ValidationError
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
    "COMMAND_HEADER",
    "DEFAULT_MAX_BYTES",
    "EVENT_TYPES",
    "JSON_SCHEMA_NAMES",
    "MAX_COMMAND_BYTES",
    "MAX_EVENT_COMMAND_BYTES",
    "SCHEMA_VERSION",
    "TOPIC_SPECS",
    "Command",
    "CommandError",
    "CommandKind",
    "DeadLetter",
    "DeadLetterReason",
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
    "decode_command",
    "encode",
    "encode_batch",
    "encode_command",
    "json_schema",
    "manual_trigger",
    "max_bytes_for",
    "to_dict",
    "topic_name",
]
