"""The base of every event: a schema name and version, unknown fields kept, NaN refused.

Also the field shapes several events share (metrics, metadata, embeddings) and the
validation context the codec decodes with (:data:`WIRE`).

Examples
--------
>>> from driftloop.schemas.events import Feedback
>>> Feedback.SCHEMA_NAME
'driftloop.feedback'
>>> Feedback.model_validate({"id": "f", "interaction_id": "i", "ts": 1, "task": "t",
...                          "kind": "label", "value": "pos"}, context=WIRE)
Traceback (most recent call last):
...
pydantic_core._pydantic_core.ValidationError: 2 validation errors for Feedback
schema_name
  Field required ...
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, model_validator

from ..fields import MAX_EMBEDDING_DIM, Number, SchemaVersion

__all__ = ["EVENT_CONFIG", "SCHEMA_VERSION", "WIRE", "Embedding", "Event", "Metadata", "Metrics"]

SCHEMA_VERSION = 1
# Validation context of decoded payloads (see Event._default_header).
WIRE: dict[str, bool] = {"wire": True}

Metrics = dict[str, Number]
Embedding = Annotated[list[Number], Field(min_length=1, max_length=MAX_EMBEDDING_DIM)]
Metadata = dict[str, Any]

EVENT_CONFIG = ConfigDict(extra="allow", frozen=True, allow_inf_nan=False)


class Event(BaseModel):
    """Base of every event: a schema name and version, unknown fields kept.

    On the wire (validated with ``context=WIRE``, as the codec does) both ``schema_name`` and
    ``schema_version`` are required: a decoder cannot tell a contract's version otherwise.
    Built in Python they default to the class's own.
    Each subclass declares ``schema_name`` as a one-value ``Literal``, and ``SCHEMA_NAME``
    is read from it.
    """

    model_config = EVENT_CONFIG

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
