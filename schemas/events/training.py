"""What the learner is asked: a training request with its examples inline, by reference, or
both.

Examples
--------
>>> TrainingExample(input="great", target="positive").origin
<ExampleOrigin.NEW: 'new'>
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Literal

from pydantic import BaseModel, Field, model_validator

from ..enums import ExampleOrigin, FeedbackKind, TaskKind, TriggerKind
from ..fields import (
    Count,
    Name,
    Number,
    Probability,
    Sha256,
    SliceValue,
    Slug,
    Text,
    Timestamp,
    Uri,
)
from .base import EVENT_CONFIG, Event, Metadata

__all__ = ["ExamplesRef", "TrainingExample", "TrainingRequest", "easy_first"]


class TrainingExample(BaseModel):
    """One example inside a training request."""

    model_config = EVENT_CONFIG

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
    # The worker's regime of the task when the interaction was seen: it counts the shifts it
    # detected (a drift alert, a new domain name). The gate judges a candidate on the
    # current regime's held-out examples apart from the older ones.
    regime: Count = 0
    # Slices the interaction's producer named in its metadata, under the task's
    # ``slice_keys`` (language, customer tier, ...): the gate reports accuracy per slice.
    slices: dict[Text, SliceValue] = Field(default_factory=dict)


def easy_first(examples: Sequence[TrainingExample]) -> list[int]:
    """Positions of ``examples`` from easy to hard (a curriculum): by ``difficulty``, an
    unknown one in the middle (0.5), ties in their order.

    >>> easy_first([TrainingExample(input=t, target="a", difficulty=d)
    ...             for t, d in (("x", 0.9), ("y", None), ("z", 0.1))])
    [2, 1, 0]
    """
    return sorted(range(len(examples)),
                  key=lambda i: 0.5 if examples[i].difficulty is None else examples[i].difficulty)


class ExamplesRef(BaseModel):
    """Examples of a large request kept in the artifact store rather than on the topic.

    A JSON Lines object (one :class:`TrainingExample` a line, UTF-8) named by the SHA-256 of
    its bytes, ``<store root>/examples/<sha256>.jsonl``; the learner verifies the digest,
    the size and the count before it reads one example
    (:mod:`driftloop.learner.registry.examples`).
    """

    model_config = EVENT_CONFIG

    uri: Uri
    sha256: Sha256
    count: Annotated[Count, Field(ge=1)]
    size_bytes: Annotated[Count, Field(ge=1)]


class TrainingRequest(Event):
    """Ask the learner for a new adapter version, with the examples inline (``examples``),
    in the artifact store (``examples_ref``, for a request larger than a Kafka message may
    be), or both (the inline ones first).

    Replaying a request reproduces its training: everything the learner needs is in it or in
    the content-addressed object it names.

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
    examples: list[TrainingExample]
    examples_ref: ExamplesRef | None = None
    metadata: Metadata = Field(default_factory=dict)

    @model_validator(mode="after")
    def _some_examples(self) -> TrainingRequest:
        if not self.examples and self.examples_ref is None:
            raise ValueError("a training request needs examples: inline or by examples_ref")
        return self
