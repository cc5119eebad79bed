"""Kafka for operators and development: a local broker, its jars, a probe, topic admin, reads."""

from __future__ import annotations

from .local_broker import BrokerStatus, LocalKafka
from .probe import broker_answers, port_is_free
from .topic_admin import create_topics, delete_topics, list_topics
from .topic_reader import RawRecord, read_snapshot

__all__ = [
    "BrokerStatus",
    "LocalKafka",
    "RawRecord",
    "broker_answers",
    "create_topics",
    "delete_topics",
    "list_topics",
    "port_is_free",
    "read_snapshot",
]
