"""Topic names, keys and per-topic configuration: the one place they are spelled."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

__all__ = ["TOPIC_SPECS", "Topic", "TopicSpec", "topic_name"]


class Topic(StrEnum):
    """The driftloop topics, unprefixed (see DESIGN.md, Topics)."""

    INTERACTIONS = "interactions"
    FEEDBACK = "feedback"
    LABEL_REQUESTS = "label-requests"
    DRIFT_ALERTS = "drift-alerts"
    TRAINING_REQUESTS = "training-requests"
    MODEL_VERSIONS = "model-versions"
    DEAD_LETTERS = "dead-letters"
    SERVING_ACKS = "serving-acks"
    SITE_ADAPTERS = "site-adapters"


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """How a topic is created: partitions and topic-level configs."""

    topic: Topic
    partitions: int
    configs: dict[str, str] = field(default_factory=dict)


_WEEK_MS = str(7 * 24 * 3600 * 1000)
_MONTH_MS = str(30 * 24 * 3600 * 1000)
# Training requests carry their examples inline (replaying the topic reproduces training).
TRAINING_REQUEST_MAX_BYTES = 16 * 1024 * 1024
# Batch envelopes of interactions carry embeddings: allow a few MiB per message.
EVENT_TOPIC_MAX_BYTES = 8 * 1024 * 1024

TOPIC_SPECS: dict[Topic, TopicSpec] = {
    spec.topic: spec
    for spec in (
        TopicSpec(Topic.INTERACTIONS, 6, {"retention.ms": _WEEK_MS,
                                          "max.message.bytes": str(EVENT_TOPIC_MAX_BYTES)}),
        TopicSpec(Topic.FEEDBACK, 6, {"retention.ms": _WEEK_MS,
                                      "max.message.bytes": str(EVENT_TOPIC_MAX_BYTES)}),
        TopicSpec(Topic.LABEL_REQUESTS, 3, {"retention.ms": _WEEK_MS}),
        TopicSpec(Topic.DRIFT_ALERTS, 3, {"retention.ms": _MONTH_MS}),
        TopicSpec(Topic.TRAINING_REQUESTS, 3, {
            "retention.ms": _MONTH_MS, "max.message.bytes": str(TRAINING_REQUEST_MAX_BYTES)}),
        # The registry and lineage: an append-only log kept forever (not compacted: every
        # status change of a version is history an operator may need).
        TopicSpec(Topic.MODEL_VERSIONS, 1, {"retention.ms": "-1", "retention.bytes": "-1"}),
        TopicSpec(Topic.DEAD_LETTERS, 3, {"retention.ms": _MONTH_MS,
                                          "max.message.bytes": str(EVENT_TOPIC_MAX_BYTES)}),
        # Keyed by replica and task: compaction keeps each replica's latest ack per task,
        # which is exactly what "did every replica converge?" needs.
        TopicSpec(Topic.SERVING_ACKS, 1, {"cleanup.policy": "compact"}),
        # Federated learning: sites' adapter references and example counts (never examples),
        # kept like the registry, since a merged version's lineage names them.
        TopicSpec(Topic.SITE_ADAPTERS, 1, {"retention.ms": "-1", "retention.bytes": "-1"}),
    )
}


def topic_name(topic: Topic | str, prefix: str = "") -> str:
    """The full topic name under ``prefix``.

    >>> topic_name(Topic.FEEDBACK, "prod.")
    'prod.feedback'
    """
    return f"{prefix}{Topic(topic).value}"
