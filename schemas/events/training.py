"""What the learner is asked: a training request with its examples inline.

Examples
--------
>>> TrainingExample(input="great", target="positive").origin
<ExampleOrigin.NEW: 'new'>
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from ..enums import ExampleOrigin, FeedbackKind, TaskKind, TriggerKind
from ..fields import Count, Name, Number, Probability, SliceValue, Slug, Text, Timestamp
from .base import EVENT_CONFIG, Event, Metadata

__all__ = ["TrainingExample", "TrainingRequest", "easy_first"]


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
