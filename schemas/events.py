"""The driftloop events as typed, frozen models.

Each model mirrors one JSON Schema file in ``schemas/json/`` (the contract for producers in
any language); ``tests/schemas/test_schema_contracts.py`` proves both judge samples the same way.
Unknown fields are kept (a newer producer's fields survive a replay through driftloop);
NaN and infinite numbers are refused everywhere.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, ClassVar, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

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
from .errors import show_value
from .fields import (
    MAX_EMBEDDING_DIM,
    Base64,
    Count,
    Flag,
    Name,
    Number,
    Probability,
    SchemaVersion,
    Sha256,
    Slug,
    Text,
    TextOrNumber,
    Timestamp,
    Uri,
    WholeNumber,
)

__all__ = [
    "EVENT_TYPES",
    "MAX_EMBEDDING_DIM",
    "SCHEMA_VERSION",
    "WIRE",
    "DeadLetter",
    "DriftAlert",
    "Event",
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

SCHEMA_VERSION = 1
# Validation context of decoded payloads (see Event._default_header).
WIRE: dict[str, bool] = {"wire": True}

Metrics = dict[str, Number]
Embedding = Annotated[list[Number], Field(min_length=1, max_length=MAX_EMBEDDING_DIM)]
Metadata = dict[str, Any]

_CONFIG = ConfigDict(extra="allow", frozen=True, allow_inf_nan=False)


class Event(BaseModel):
    """Base of every event: a schema name and version, unknown fields kept.

    On the wire (validated with ``context=WIRE``, as the codec does) both ``schema_name`` and
    ``schema_version`` are required: a decoder cannot tell a contract's version otherwise.
    Built in Python they default to the class's own.
    Each subclass declares ``schema_name`` as a one-value ``Literal``, and ``SCHEMA_NAME``
    is read from it.
    """

    model_config = _CONFIG

    SCHEMA_NAME: ClassVar[str] = ""
    schema_name: str
    schema_version: SchemaVersion

    @model_validator(mode="before")
    @classmethod
    def _default_header(cls, data: Any, info: ValidationInfo) -> Any:
        # Decoding passes WIRE as context and so keeps both fields required; code that
        # builds an event by hand gets the class's own name and version.
        if isinstance(data, dict) and not (info.context and info.context.get("wire")):
            if "schema_name" not in data or "schema_version" not in data:
                return {"schema_name": cls.SCHEMA_NAME, "schema_version": SCHEMA_VERSION, **data}
        return data

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        names = get_args(cls.model_fields["schema_name"].annotation)
        if len(names) == 1:
            cls.SCHEMA_NAME = names[0]


class Scores(BaseModel):
    """What the model said about its own output."""

    model_config = _CONFIG

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
    >>> event.schema_name, event.schema_version
    ('driftloop.interaction', 1)
    >>> decode(encode(event), Interaction) == event
    True
    """

    schema_name: Literal["driftloop.interaction"]
    id: Name
    ts: Timestamp
    task: Slug
    domain: Slug = "default"
    model_version: Name
    input: Text
    output: Text | None = None
    prediction: Text | None = None
    label: Text | None = None
    scores: Scores = Field(default_factory=Scores)
    embedding: Embedding | None = None
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
    >>> Feedback(id="f-1", interaction_id="i-1", ts=2.0, task="sentiment",
    ...          kind="rating", value="five")
    Traceback (most recent call last):
    ...
    pydantic_core._pydantic_core.ValidationError: 1 validation error for Feedback
    value
      Value error, expected a number for kind=rating, got "five" ...
    """

    schema_name: Literal["driftloop.feedback"]
    id: Name
    interaction_id: Name
    ts: Timestamp
    task: Slug
    kind: FeedbackKind
    value: TextOrNumber
    source: FeedbackSource = FeedbackSource.USER
    metadata: Metadata = Field(default_factory=dict)

    @field_validator("value", mode="before")
    @classmethod
    def _value_matches_kind(cls, value: Any, info: ValidationInfo) -> Any:
        # ``kind`` is declared first, so it is validated (or absent, when invalid) by now.
        kind = info.data.get("kind")
        if kind is FeedbackKind.RATING:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"expected a number for kind=rating, got {show_value(value)}")
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"expected a finite number for kind=rating, got {value}")
        elif kind is not None and not isinstance(value, str):
            raise ValueError(f"expected a string for kind={kind}, got {show_value(value)}")
        return value


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


class TrainingExample(BaseModel):
    """One example inside a training request."""

    model_config = _CONFIG

    input: Text
    target: Text
    weight: Annotated[Number, Field(gt=0)] = 1.0
    origin: ExampleOrigin = ExampleOrigin.NEW
    difficulty: Probability | None = None
    domain: Slug = "default"
    interaction_id: Name | None = None
    # What the deployed model answered for that interaction and which feedback gave the
    # target: the learner turns the examples the model got wrong into challenge probes.
    model_answer: Text | None = None
    feedback_kind: FeedbackKind | None = None


class TrainingRequest(Event):
    """Ask the learner for a new adapter version, with the examples inline.

    Replaying a request reproduces its training: everything the learner needs is in it.

    Examples
    --------
    >>> from driftloop.schemas import TrainingRequest
    >>> request = TrainingRequest(id="t-1", ts=4.0, task="sentiment", trigger="drift",
    ...     examples=[{"input": "great", "target": "positive", "origin": "replay"}])
    >>> request.examples[0].origin, request.examples[0].weight
    (<ExampleOrigin.REPLAY: 'replay'>, 1.0)
    """

    schema_name: Literal["driftloop.training_request"]
    id: Name
    ts: Timestamp
    task: Slug
    task_kind: TaskKind = TaskKind.CLASSIFICATION
    trigger: TriggerKind
    reason: Text = ""
    parent_version: Name | None = None
    prompt_template_id: Name | None = None
    labels: list[Text] | None = None
    examples: Annotated[list[TrainingExample], Field(min_length=1)]
    metadata: Metadata = Field(default_factory=dict)


class ModelVersion(Event):
    """One entry of the registry: an adapter version and its status (append-only log).

    Examples
    --------
    >>> from driftloop.schemas import ModelVersion
    >>> ModelVersion(version_id="v1", ts=5.0, task="sentiment", base_model="minilm",
    ...              adapter_uri="file:///a/v1", sha256="0" * 64, size_bytes=1024,
    ...              status="candidate").status
    <VersionStatus.CANDIDATE: 'candidate'>
    """

    schema_name: Literal["driftloop.model_version"]
    version_id: Name
    ts: Timestamp
    task: Slug
    base_model: Name
    parent_version: Name | None = None
    adapter_uri: Uri
    sha256: Sha256
    size_bytes: Count
    format: Name = "peft-lora-safetensors"
    training_request_id: Name | None = None
    prompt_template_id: Name | None = None
    metrics_before: Metrics = Field(default_factory=dict)
    metrics_after: Metrics = Field(default_factory=dict)
    status: VersionStatus
    reason: Text = ""
    metadata: Metadata = Field(default_factory=dict)

    def with_status(self, status: VersionStatus | str, *, ts: float,
                    reason: str = "") -> ModelVersion:
        """A copy of this event with a new status, time and reason (promote, reject, roll
        back): the artifact, lineage and metrics stay those of the version.

        >>> event = ModelVersion(version_id="v2", ts=5.0, task="t", base_model="m",
        ...                      adapter_uri="file:///a/v2", sha256="0" * 64, size_bytes=1,
        ...                      status="candidate")
        >>> promoted = event.with_status("promoted", ts=9.0, reason="won its A/B test")
        >>> promoted.status.value, promoted.ts, promoted.sha256 == event.sha256
        ('promoted', 9.0, True)
        """
        return self.model_copy(update={"status": VersionStatus(status), "ts": ts,
                                       "reason": reason})


class DeadLetter(Event):
    """A record driftloop could not process, kept whole so nothing is dropped silently.

    ``payload_b64`` holds the raw bytes (base64), cut to a bound; ``payload_size`` is the
    size before the cut. ``event_index`` locates a bad event inside a batch envelope.

    Examples
    --------
    >>> from driftloop.schemas import DeadLetter
    >>> DeadLetter(ts=6.0, source_topic="interactions", partition=0, offset=42,
    ...            reason="invalid_json", error="payload is not valid JSON",
    ...            payload_b64="e30=", payload_size=2).offset
    42
    """

    schema_name: Literal["driftloop.dead_letter"]
    ts: Timestamp
    source_topic: Name
    partition: Annotated[WholeNumber, Field(ge=-1)]
    offset: Annotated[WholeNumber, Field(ge=-1)]
    event_index: Count | None = None
    reason: Name
    error: Text
    payload_b64: Base64
    payload_size: Count
    truncated: Flag = False
    key_b64: Base64 | None = None
    consumer: Name | None = None


class ServingAck(Event):
    """A serving replica's acknowledgement: it now serves a version, or it refused one.

    Keyed by replica and task on the compacted ``serving-acks`` topic, so the latest ack of
    every replica shows whether all of them converged on the promoted version.

    Examples
    --------
    >>> from driftloop.schemas import ServingAck
    >>> ServingAck(ts=7.0, replica="pod-1", task="sentiment", version_id="v4",
    ...            status="refused", reason="sha256 mismatch").status
    <ServingStatus.REFUSED: 'refused'>
    """

    schema_name: Literal["driftloop.serving_ack"]
    ts: Timestamp
    replica: Name
    task: Slug
    version_id: Name
    status: ServingStatus
    reason: Text = ""
    previous_version: Name | None = None
    metadata: Metadata = Field(default_factory=dict)


class SiteAdapter(Event):
    """A site's promoted adapter offered to the federation: a reference and a count, no data.

    Learners at separate sites publish these to ``site-adapters``; the aggregator
    (``driftloop aggregate``) merges adapters of one task, base model and LoRA shape,
    weighting each by ``examples``. No training example ever travels on this topic.

    Examples
    --------
    >>> from driftloop.schemas import SiteAdapter
    >>> SiteAdapter(ts=8.0, site="eu-1", task="sentiment", version_id="sentiment-1a",
    ...             base_model="minilm", adapter_uri="file:///a/" + "0" * 64, sha256="0" * 64,
    ...             size_bytes=4096, examples=512, lora_r=8, lora_alpha=16,
    ...             target_modules=["query", "value"]).examples
    512
    """

    schema_name: Literal["driftloop.site_adapter"]
    ts: Timestamp
    site: Name
    task: Slug
    version_id: Name
    base_model: Name
    adapter_uri: Uri
    sha256: Sha256
    size_bytes: Count
    format: Name = "peft-lora-safetensors"
    examples: Count
    lora_r: Annotated[WholeNumber, Field(ge=1)]
    lora_alpha: Annotated[Number, Field(gt=0)]
    target_modules: list[Name] = Field(default_factory=list)
    labels: list[Text] | None = None
    metrics: Metrics = Field(default_factory=dict)
    metadata: Metadata = Field(default_factory=dict)


EVENT_TYPES: dict[str, type[Event]] = {
    cls.SCHEMA_NAME: cls
    for cls in (Interaction, Feedback, LabelRequest, DriftAlert, TrainingRequest, ModelVersion,
                DeadLetter, ServingAck, SiteAdapter)
}
