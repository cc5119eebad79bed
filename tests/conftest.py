"""Shared fixtures: one real single-node Kafka broker per test session.

``kafka_broker`` starts Apache Kafka (KRaft, from Maven Central's jars) on free ports in a
temporary folder, once per session, and stops it at the end even when tests fail.
``kafka_settings`` gives each test a :class:`Settings` pointing at it, with every driftloop
topic created under a prefix of its own, so tests never see each other's messages.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from driftloop.schemas.settings import Settings
from driftloop.tools.local_kafka import LocalKafka
from driftloop.tools.topics import create_topics

# Shared with the other test sessions of this machine and with `driftloop kafka start`:
# the jars are downloaded once (see driftloop.tools.kafka_jars.default_cache_dir).
BROKER_HEAP = "384m"
BROKER_START_TIMEOUT_S = 120.0


def free_port() -> int:
    """A TCP port nothing listens on right now (the kernel's pick for port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def free_port_pair() -> tuple[int, int]:
    """Two distinct free ports: a broker's client and controller listeners."""
    first = free_port()
    second = free_port()
    while second == first:
        second = free_port()
    return first, second


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKafka]:
    """A running single-node Kafka broker; use ``kafka_broker.bootstrap_servers``."""
    port, controller_port = free_port_pair()
    broker = LocalKafka(home=tmp_path_factory.mktemp("kafka"), port=port,
                        controller_port=controller_port, heap=BROKER_HEAP,
                        die_with_parent=True)
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
