"""The closed vocabularies of the contracts: no magic strings for kinds and statuses."""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "CommandKind",
    "DeadLetterReason",
    "DriftSignal",
    "ExampleOrigin",
    "FeedbackKind",
    "FeedbackSource",
    "LabelRequestReason",
    "ServingStatus",
    "TaskKind",
    "TriggerKind",
    "VersionStatus",
]


class FeedbackKind(StrEnum):
    LABEL = "label"
    CORRECTION = "correction"
    RATING = "rating"


class FeedbackSource(StrEnum):
    USER = "user"
    REVIEWER = "reviewer"
    AUTO = "auto"


class LabelRequestReason(StrEnum):
    UNCERTAINTY = "uncertainty"
    MARGIN = "margin"
    ENTROPY = "entropy"
    DRIFT = "drift"
    DISAGREEMENT = "disagreement"


class DeadLetterReason(StrEnum):
    """Why a record became a dead letter (``DeadLetter.reason``)."""

    EMPTY = "empty"  # no value: a tombstone or a producer's null
    INVALID_UTF8 = "invalid_utf8"
    INVALID_JSON = "invalid_json"
    TOO_LARGE = "too_large"
    UNKNOWN_SCHEMA = "unknown_schema"  # a schema_name driftloop does not know
    INVALID_EVENT = "invalid_event"  # a known event that breaks its contract
    INVALID_BATCH = "invalid_batch"  # a batch envelope that breaks its contract
    UNENCODABLE = "unencodable"  # an event that cannot be written as JSON
    EMBEDDING_DIM = "embedding_dim"  # an embedding of another size than the task's
    WRONG_PARTITION = "wrong_partition"  # read off the partition its task's key goes to
    INVALID_COMMAND = "invalid_command"
    UNTRAINABLE_REQUEST = "untrainable_request"  # valid, yet training cannot read it
    UNTRUSTED_MODEL = "untrusted_model"  # names a base model outside the trust settings
    TRAINING_FAILED = "training_failed"  # training raised max_attempts times (or crashed)
    SITE_ADAPTER_REFUSED = "site_adapter_refused"  # a federated offer the merge refused
    INTERNAL = "internal"  # a bug in driftloop's decoder; the record is kept


class DriftSignal(StrEnum):
    EMBEDDING = "embedding"
    INPUT = "input"  # the input text's byte bigrams: the same whatever version served it
    SCORE = "score"
    ERROR_RATE = "error_rate"
    DOMAIN = "domain"  # a domain name the task had not seen: a shift the producer named


class TriggerKind(StrEnum):
    SCHEDULE = "schedule"
    DRIFT = "drift"
    METRIC = "metric"
    CHALLENGE = "challenge"
    MANUAL = "manual"


class ExampleOrigin(StrEnum):
    NEW = "new"
    REPLAY = "replay"
    SYNTHETIC = "synthetic"
    """Written by a model from a real example (learner.synthetic_share): trained on, never
    held out."""


class VersionStatus(StrEnum):
    CANDIDATE = "candidate"
    PROMOTED = "promoted"
    REJECTED = "rejected"
    ROLLED_BACK = "rolled_back"


class CommandKind(StrEnum):
    """What a command on the ``feedback`` topic asks of the worker that owns its task."""

    TRIGGER = "trigger"
    CHALLENGE = "challenge"
    PROMOTED = "promoted"
    CANDIDATE = "candidate"
    REJECTED = "rejected"
    TICK = "tick"
    ANSWERED = "answered"


class TaskKind(StrEnum):
    CLASSIFICATION = "classification"
    GENERATION = "generation"


class ServingStatus(StrEnum):
    """What a serving replica did with a promoted version (its acknowledgement)."""

    SERVING = "serving"
    REFUSED = "refused"
