"""Shared fixtures: one real single-node Kafka broker per test session.

``kafka_broker`` starts Apache Kafka (KRaft, from Maven Central's jars) on free ports in a
temporary folder, once per session, and stops it at the end even when tests fail.
``kafka_settings`` gives each test a :class:`Settings` pointing at it, with every driftloop
topic created under a prefix of its own, so tests never see each other's messages.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kafka_helpers import (
    BROKER_HEAP,
    BROKER_JVM_OPTIONS,
    BROKER_START_TIMEOUT_S,
    free_port_pair,
)

from driftloop.schemas.settings import Settings
from driftloop.tools.local_kafka import LocalKafka
from driftloop.tools.topics import create_topics


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKafka]:
    """A running single-node Kafka broker; use ``kafka_broker.bootstrap_servers``."""
    port, controller_port = free_port_pair()
    broker = LocalKafka(home=tmp_path_factory.mktemp("kafka"), port=port,
                        controller_port=controller_port, heap=BROKER_HEAP,
                        jvm_options=BROKER_JVM_OPTIONS, die_with_parent=True)
    try:
        broker.start(timeout=BROKER_START_TIMEOUT_S)
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def kafka_settings(kafka_broker: LocalKafka, tmp_path: Path) -> Settings:
    """Settings for the session broker with every driftloop topic under a fresh prefix."""
    settings = Settings(
        kafka={"bootstrap_servers": kafka_broker.bootstrap_servers,
               "topic_prefix": f"t{uuid.uuid4().hex[:12]}."},
        artifacts={"store_url": str(tmp_path / "artifacts")},
        worker={"data_dir": tmp_path / "worker"},
        learner={"cache_dir": tmp_path / "learner"},
    )
    create_topics(settings)
    return settings


@pytest.fixture
def unused_port() -> int:
    """A port nothing listens on: for tests of what happens when the broker is unreachable."""
    return free_port_pair()[0]
