"""Shared fixtures: one real single-node Kafka broker per test session.

``kafka_broker`` starts Apache Kafka (KRaft, from Maven Central's jars) on free ports in a
temporary folder, once per session, and stops it at the end even when tests fail.
``kafka_settings`` gives each test a :class:`Settings` pointing at it, with every driftloop
topic created under a prefix of its own, so tests never see each other's messages.
"""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from kafka_helpers import (
    BROKER_HEAP,
    BROKER_JVM_OPTIONS,
    BROKER_START_TIMEOUT_S,
    free_port_pair,
)

from driftloop.schemas.errors import DriftloopError
from driftloop.schemas.settings import Settings
from driftloop.tools.kafka.local_broker import LocalKafka
from driftloop.tools.kafka.topic_admin import create_topics, delete_topics


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that uses the broker is a ``kafka`` test, marked or not (``-m "not kafka"``)."""
    for item in items:
        if "kafka_broker" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.kafka)


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
def bare_kafka_settings(kafka_broker: LocalKafka, tmp_path: Path) -> Iterator[Settings]:
    """Settings for the session broker under a fresh prefix with no topics created yet.

    For tests of topic creation itself, or that need only a topic or two (creating all
    of them takes about a second on a loaded machine). Whatever the test creates under the
    prefix is deleted afterwards.
    """
    settings = _fresh_prefix(kafka_broker, tmp_path)
    yield settings
    _delete_quietly(settings)


@pytest.fixture
def kafka_settings(bare_kafka_settings: Settings) -> Settings:
    """Settings for the session broker with every driftloop topic under a fresh prefix.

    The topics (and any other topic the test made under the prefix) are deleted afterwards:
    each costs the broker file handles and heap, and a session runs hundreds of tests.
    """
    create_topics(bare_kafka_settings)
    return bare_kafka_settings


@pytest.fixture(scope="module")
def module_kafka_settings(kafka_broker: LocalKafka,
                          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """``kafka_settings`` shared by the tests of one module.

    For a module whose tests all read one expensive setup (sites trained for minutes)
    built by a module-scoped fixture; every other test takes ``kafka_settings``.
    """
    settings = _fresh_prefix(kafka_broker, tmp_path_factory.mktemp("module"))
    create_topics(settings)
    yield settings
    _delete_quietly(settings)


def _fresh_prefix(kafka_broker: LocalKafka, folder: Path) -> Settings:
    """Settings for the session broker under a prefix no other test uses, state in ``folder``."""
    return Settings(
        kafka={"bootstrap_servers": kafka_broker.bootstrap_servers,
               "topic_prefix": f"t{uuid.uuid4().hex[:12]}."},
        artifacts={"store_url": str(folder / "artifacts")},
        worker={"data_dir": folder / "worker"},
        learner={"cache_dir": folder / "learner"},
    )


def _delete_quietly(settings: Settings) -> None:
    try:
        delete_topics(settings)
    except DriftloopError as exc:  # a broker that went away is the failing test's story
        warnings.warn(f"could not delete the topics of {settings.kafka.topic_prefix}: {exc}",
                      stacklevel=1)


@pytest.fixture
def unused_port() -> int:
    """A port nothing listens on: for tests of what happens when the broker is unreachable."""
    return free_port_pair()[0]
