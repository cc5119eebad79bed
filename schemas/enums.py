"""The closed vocabularies of the contracts: no magic strings for kinds and statuses."""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "CommandKind",
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


class DriftSignal(StrEnum):
    EMBEDDING = "embedding"
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
