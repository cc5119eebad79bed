"""What serving layers and people publish: an interaction (what a model saw and did) and
feedback on it (what a person or a check said).

Examples
--------
>>> seen = Interaction(id="i-1", ts=1.0, task="sentiment", model_version="v0", input="meh",
...                    scores={"confidence": 0.55})
>>> Feedback(id="f-1", interaction_id=seen.id, ts=2.0, task="sentiment", kind="label",
...          value="negative").source
<FeedbackSource.USER: 'user'>
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationInfo, field_validator

from ..enums import FeedbackKind, FeedbackSource
from ..errors import show_value
from ..fields import Flag, Name, Probability, Slug, Text, TextOrNumber, Timestamp
from .base import EVENT_CONFIG, Embedding, Event, Metadata

__all__ = ["Feedback", "Interaction", "Scores"]


class Scores(BaseModel):
    """What the model said about its own output."""

    model_config = EVENT_CONFIG

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
    input_embedding: Embedding | None = None
    """A version-free embedding of the input (driftloop's service sends the mean of the base
    model's input-token embeddings, which no adapter changes): the input-drift signal, which
    a promotion does not re-reference; without it the worker watches the text's byte
    bigrams."""
    metadata: Metadata = Field(default_factory=dict)
    # Monitoring traffic (a health check, a synthetic probe): served and counted, never
    # learnt from and never a drift signal.
    probe: Flag = False


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
