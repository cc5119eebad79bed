"""The learners' Kafka consumer group name (kept light: ``driftloop status`` imports it)."""

from __future__ import annotations

from ..schemas.settings import Settings

__all__ = ["consumer_group"]


def consumer_group(settings: Settings) -> str:
    """The learners' consumer group: ``<topic prefix><learner.group_id>``.

    Prefixed like the worker's app id, so deployments sharing a cluster under different
    prefixes never join one group with different subscriptions.

    >>> from driftloop.schemas.settings import Settings
    >>> consumer_group(Settings(kafka={"topic_prefix": "staging."}))
    'staging.driftloop-learner'
    """
    return f"{settings.kafka.topic_prefix}{settings.learner.group_id}"
