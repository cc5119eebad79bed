"""The seven driftloop events as typed, frozen models.

Each model mirrors one JSON Schema file in ``schemas/json/`` (the contract for producers in
any language); ``tests/schemas/test_contracts.py`` proves both judge samples the same way.
Unknown fields are kept (a newer producer's fields survive a replay through driftloop);
NaN and infinite numbers are refused everywhere.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

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

__all__ = [
    "EVENT_TYPES",
    "MAX_EMBEDDING_DIM",
    "DeadLetter",
    "DriftAlert",
    "Event",
    "Feedback",
    "Interaction",
    "LabelRequest",
    "ModelVersion",
    "Scores",
    "TrainingExample",
    "TrainingRequest",
]

MAX_EMBEDDING_DIM = 8192
SCHEMA_VERSION = 1

Name = Annotated[str, Field(min_length=1, max_length=256)]
# Task and domain names end up in metric labels, table keys and file names.
Slug = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")]
Timestamp = Annotated[float, Field(ge=0, description="seconds since the Unix epoch, UTC")]
Probability = Annotated[float, Field(ge=0.0, le=1.0)]
Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
Metrics = dict[str, float]
Metadata = dict[str, Any]


class Event(BaseModel):
    """Base of every event: a schema name and version, unknown fields kept."""

    model_config = ConfigDict(
        extra="allow",
        frozen=True,
        allow_inf_nan=False,
        use_enum_values=False,
        validate_default=False,
    )

    SCHEMA_NAME: ClassVar[str] = ""
    schema_name: str = ""
    schema_version: Annotated[int, Field(ge=1)] = SCHEMA_VERSION

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)

    @model_validator(mode="before")
    @classmethod
    def _fill_schema_name(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("schema_name"):
            data = {**data, "schema_name": cls.SCHEMA_NAME}
        return data

    @field_validator("schema_name")
    @classmethod
    def _check_schema_name(cls, value: str) -> str:
        if value != cls.SCHEMA_NAME:
            raise ValueError(f"expected {cls.SCHEMA_NAME!r}, got {value!r}")
        return value


class Scores(BaseModel):
    """What the model said about its own output."""

    model_config = ConfigDict(extra="allow", frozen=True, allow_inf_nan=False)

    confidence: Probability | None = None
    probabilities: dict[str, Probability] | None = None


class Interaction(Event):
    """What a deployed model saw and did for one request.

    Examples
    --------
    >>> from driftloop.schemas import Interaction, decode, encode
    >>> event = Interaction(id="i-1", ts=1.5, task="sentiment", model_version="v0",
    ...                     input="great film", prediction="positive",
    ...                     scores={"confidence": 0.9}, embedding=[0.1, 0.2])
    >>> decode(encode(event), Interaction) == event
    True
    """

    SCHEMA_NAME: ClassVar[str] = "driftloop.interaction"
    id: Name
    ts: Timestamp
    task: Slug
    domain: Slug = "default"
    model_version: Name
    input: str
    output: str | None = None
    prediction: str | None = None
    label: str | None = None
    scores: Scores = Field(default_factory=Scores)
    embedding: Annotated[list[float], Field(min_length=1, max_length=MAX_EMBEDDING_DIM)] | None = None
    metadata: Metadata = Field(default_factory=dict)


class Feedback(Event):
    """What a person (or a check) said about an interaction; joins it by ``interaction_id``.

    ``value`` is the class label for ``kind=label``, the corrected output for
    ``kind=correction`` (both strings) and a number for ``kind=rating``.

    Examples
    --------
    >>> from driftloop.schemas import Feedback
    >>> Feedback(id="f-1", interaction_id="i-1", ts=2.0, task="sentiment",
    ...          kind="rating", value=4).value
    4.0
    """

    SCHEMA_NAME: ClassVar[str] = "driftloop.feedback"
    id: Name
    interaction_id: Name
    ts: Timestamp
    task: Slug
    kind: FeedbackKind
    value: str | float
    source: FeedbackSource = FeedbackSource.USER
    metadata: Metadata = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _value_matches_kind(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        kind, value = data.get("kind"), data.get("value")
        if kind == FeedbackKind.RATING:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"value: expected a number for kind=rating, got {_show(value)}")
            if not math.isfinite(value):
                raise ValueError(f"value: expected a finite number for kind=rating, got {value}")
            data = {**data, "value": float(value)}
        elif kind in (FeedbackKind.LABEL, FeedbackKind.CORRECTION) and not isinstance(value, str):
            raise ValueError(f"value: expected a string for kind={kind}, got {_show(value)}")
        return data


class LabelRequest(Event):
    """An interaction sent to humans for a label (active learning)."""

    SCHEMA_NAME: ClassVar[str] = "driftloop.label_request"
    id: Name
    ts: Timestamp
    task: Slug
    domain: Slug = "default"
    interaction: Interaction
    reason: LabelRequestReason
    priority: Probability
    score: float | None = None


class DriftAlert(Event):
    """A drift detector fired on one signal of one task and domain."""

    SCHEMA_NAME: ClassVar[str] = "driftloop.drift_alert"
    id: Name
    ts: Timestamp
    task: Slug
    domain: Slug = "default"
    signal: DriftSignal
    detector: Name
    model_version: Name | None = None
    events_seen: Annotated[int, Field(ge=0)] = 0
    statistics: dict[str, float | str] = Field(default_factory=dict)


class TrainingExample(BaseModel):
    """One example inside a training request."""

    model_config = ConfigDict(extra="allow", frozen=True, allow_inf_nan=False)

    input: str
    target: str
    weight: Annotated[float, Field(gt=0)] = 1.0
    origin: ExampleOrigin = ExampleOrigin.NEW
    difficulty: Probability | None = None
    domain: Slug = "default"
    interaction_id: Name | None = None


class TrainingRequest(Event):
    """Ask the learner for a new adapter version, with the examples inline.

    Replaying a request reproduces its training: everything the learner needs is in it.
    """

    SCHEMA_NAME: ClassVar[str] = "driftloop.training_request"
    id: Name
    ts: Timestamp
    task: Slug
    task_kind: TaskKind = TaskKind.CLASSIFICATION
    trigger: TriggerKind
    reason: str = ""
    parent_version: Name | None = None
    prompt_template_id: Name | None = None
    labels: list[str] | None = None
    examples: Annotated[list[TrainingExample], Field(min_length=1)]
    metadata: Metadata = Field(default_factory=dict)


class ModelVersion(Event):
    """One entry of the registry: an adapter version and its status (append-only log)."""

    SCHEMA_NAME: ClassVar[str] = "driftloop.model_version"
    version_id: Name
    ts: Timestamp
    task: Slug
    base_model: Name
    parent_version: Name | None = None
    adapter_uri: Name
    sha256: Sha256
    size_bytes: Annotated[int, Field(ge=0)]
    format: Name = "peft-lora-safetensors"
    training_request_id: Name | None = None
    prompt_template_id: Name | None = None
    metrics_before: Metrics = Field(default_factory=dict)
    metrics_after: Metrics = Field(default_factory=dict)
    status: VersionStatus
    reason: str = ""
    metadata: Metadata = Field(default_factory=dict)


class DeadLetter(Event):
    """A record driftloop could not process, kept whole so nothing is dropped silently.

    ``payload_b64`` holds the raw bytes (base64), cut to a bound; ``payload_size`` is the
    size before the cut. ``event_index`` locates a bad event inside a batch envelope.
    """

    SCHEMA_NAME: ClassVar[str] = "driftloop.dead_letter"
    ts: Timestamp
    source_topic: Name
    partition: Annotated[int, Field(ge=-1)]
    offset: Annotated[int, Field(ge=-1)]
    event_index: Annotated[int, Field(ge=0)] | None = None
    reason: Name
    error: str
    payload_b64: str
    payload_size: Annotated[int, Field(ge=0)]
    truncated: bool = False
    key_b64: str | None = None
    consumer: Name | None = None


EVENT_TYPES: dict[str, type[Event]] = {
    cls.SCHEMA_NAME: cls
    for cls in (Interaction, Feedback, LabelRequest, DriftAlert, TrainingRequest, ModelVersion,
                DeadLetter)
}


def _show(value: Any) -> str:
    if isinstance(value, str):
        return f'"{value}"' if len(value) <= 40 else f'"{value[:37]}..."'
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return type(value).__name__ if isinstance(value, dict | list) else repr(value)
