"""Every Kafka client driftloop builds speaks SASL when the settings say so, on a real broker.

A second broker (module-scoped) has a SASL_PLAINTEXT listener with the PLAIN mechanism and
two users; its PLAINTEXT listener is for the broker's own traffic only. With the right
password the admin (topic creation), a producer, the learner's consumer, the serving
subscriber and the Faust worker all work; with a wrong one each fails fast, and the reason
("Authentication failed") is in the client's log. The password never shows in a log
record, in ``repr(settings)`` or in ``driftloop config``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from aiokafka.errors import KafkaConnectionError
from kafka_helpers import (
    BROKER_HEAP,
    BROKER_JVM_OPTIONS,
    BROKER_START_TIMEOUT_S,
    consume_until,
    free_port,
    produce,
)

from driftloop.learner.models import ResidentModels
from driftloop.learner.service import LearnerService
from driftloop.learner.serving import AdapterSubscriber, ModelHost
from driftloop.learner.serving.http import ServingService
from driftloop.learner.update import IncrementalUpdater
from driftloop.schemas import DeadLetter, Feedback, Topic, decode
from driftloop.schemas.settings import Settings
from driftloop.tools.errors import TopicsError
from driftloop.tools.local_kafka import LocalKafka
from driftloop.tools.topics import acreate_topics, create_topics, delete_topics

pytestmark = [pytest.mark.kafka]

USER, PASSWORD = "driftloop", "pw-7Hq2-never-logged"
WRONG = "not-the-password"
DRIFTLOOP = Path(sys.executable).parent / "driftloop"


class SaslBroker:
    """A LocalKafka with a SASL_PLAINTEXT (PLAIN) listener beside its internal PLAINTEXT one."""

    def __init__(self, home: Path) -> None:
        plain, self.sasl_port, controller = free_port(), free_port(), free_port()
        jaas = ("org.apache.kafka.common.security.plain.PlainLoginModule required "
                f'username="admin" password="admin-pw" user_{USER}="{PASSWORD}";')
        self.kafka = LocalKafka(
            home=home, port=plain, controller_port=controller, heap=BROKER_HEAP,
            jvm_options=BROKER_JVM_OPTIONS, die_with_parent=True, extra_config={
                "listeners": f"PLAINTEXT://127.0.0.1:{plain},"
                             f"SASL_PLAINTEXT://127.0.0.1:{self.sasl_port},"
                             f"CONTROLLER://127.0.0.1:{controller}",
                "advertised.listeners": f"PLAINTEXT://127.0.0.1:{plain},"
                                        f"SASL_PLAINTEXT://127.0.0.1:{self.sasl_port}",
                "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,"
                                                  "SASL_PLAINTEXT:SASL_PLAINTEXT,"
                                                  "CONTROLLER:PLAINTEXT",
                "sasl.enabled.mechanisms": "PLAIN",
                "listener.name.sasl_plaintext.plain.sasl.jaas.config": jaas,
            })

    def settings(self, tmp_path: Path, password: str = PASSWORD) -> Settings:
        return Settings(
            kafka={"bootstrap_servers": f"127.0.0.1:{self.sasl_port}",
                   "topic_prefix": f"s{uuid.uuid4().hex[:10]}.",
                   "security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "PLAIN",
                   "sasl_username": USER, "sasl_password": password},
            artifacts={"store_url": str(tmp_path / "artifacts")},
            worker={"data_dir": tmp_path / "worker"},
            learner={"cache_dir": tmp_path / "learner"},
            serving={"cache_dir": tmp_path / "serving", "replica_id": "sasl-replica"})

    def env(self, settings: Settings) -> dict[str, str]:
        """The DRIFTLOOP_* variables of a child process using ``settings``' security."""
        kafka = settings.kafka
        assert kafka.sasl_password is not None
        return {"DRIFTLOOP_KAFKA__SECURITY_PROTOCOL": kafka.security_protocol,
                "DRIFTLOOP_KAFKA__SASL_MECHANISM": str(kafka.sasl_mechanism),
                "DRIFTLOOP_KAFKA__SASL_USERNAME": str(kafka.sasl_username),
                "DRIFTLOOP_KAFKA__SASL_PASSWORD": kafka.sasl_password.get_secret_value()}


@pytest.fixture(scope="module")
def sasl_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SaslBroker]:
    broker = SaslBroker(tmp_path_factory.mktemp("sasl-kafka"))
    try:
        broker.kafka.start(timeout=BROKER_START_TIMEOUT_S)
        yield broker
    finally:
        broker.kafka.stop()


@pytest.fixture
def sasl_settings(sasl_broker: SaslBroker, tmp_path: Path) -> Iterator[Settings]:
    """Right credentials, every driftloop topic created (by the admin client, over SASL)."""
    settings = sasl_broker.settings(tmp_path)
    create_topics(settings)
    yield settings
    delete_topics(settings)


@pytest.fixture
def wrong_settings(sasl_settings: Settings) -> Settings:
    return sasl_settings.model_copy(update={"kafka": sasl_settings.kafka.model_copy(
        update={"sasl_password": type(sasl_settings.kafka.sasl_password)(WRONG)})})


@pytest.fixture(autouse=True)
def no_password_in_logs(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Every test here: the password is in no log record it caused, at any level."""
    caplog.set_level(logging.DEBUG)
    yield
    for record in caplog.records:
        text = record.getMessage() + (record.exc_text or "")
        assert PASSWORD not in text, f"password logged by {record.name}: {text[:200]}"


def auth_failure_logged(caplog: pytest.LogCaptureFixture) -> bool:
    return any("Authentication failed" in r.getMessage() for r in caplog.records)


async def test_admin_creates_topics_and_refuses_wrong_credentials(
        sasl_broker, wrong_settings, tmp_path, caplog) -> None:
    # sasl_settings (behind wrong_settings) already created every topic over SASL.
    started = time.monotonic()
    with pytest.raises(TopicsError, match="cannot create topics"):
        await acreate_topics(wrong_settings)
    assert time.monotonic() - started < 30
    assert auth_failure_logged(caplog)
    # No credentials at all on the SASL listener: refused too.
    plaintext = sasl_broker.settings(tmp_path).model_copy(update={"kafka": Settings().kafka.
                                                                  model_copy(update={
        "bootstrap_servers": f"127.0.0.1:{sasl_broker.sasl_port}"})})
    with pytest.raises(TopicsError):
        await asyncio.wait_for(acreate_topics(plaintext), 60)


async def test_producer_and_learner_consumer_over_sasl(sasl_settings, wrong_settings,
                                                       caplog) -> None:
    await produce(sasl_settings, Topic.TRAINING_REQUESTS, [b"{not json"], key="sentiment")
    service = LearnerService(sasl_settings, updater=IncrementalUpdater(sasl_settings),
                             max_requests=1)
    stats = await asyncio.wait_for(service.run(), 60)
    assert stats.dead_letters == 1  # consumed, dead-lettered (produced) and committed
    [record] = await consume_until(sasl_settings, Topic.DEAD_LETTERS, 1)
    assert decode(record.value, DeadLetter).reason == "invalid_json"
    # aiokafka logs its SASL request at DEBUG, password included, unless masked.
    assert any("sasl_auth_bytes=**********" in r.getMessage() for r in caplog.records)
    with pytest.raises(KafkaConnectionError):
        await asyncio.wait_for(produce(wrong_settings, Topic.FEEDBACK, [b"x"]), 60)
    with pytest.raises(KafkaConnectionError):
        await asyncio.wait_for(LearnerService(
            wrong_settings, updater=IncrementalUpdater(wrong_settings), max_requests=1).run(), 60)
    assert auth_failure_logged(caplog)


async def test_serving_subscriber_over_sasl(sasl_settings, wrong_settings, caplog) -> None:
    host = ModelHost(ResidentModels())
    try:
        subscriber = AdapterSubscriber(sasl_settings, host, replica="sasl-replica")
        await subscriber.start()
        try:
            await subscriber.wait_caught_up(30)
            assert subscriber.running and subscriber.serving("sentiment") is None
        finally:
            await subscriber.stop()
        refused = AdapterSubscriber(wrong_settings, host, replica="sasl-replica")
        with pytest.raises(KafkaConnectionError):
            await asyncio.wait_for(refused.start(), 60)
    finally:
        host.close()
    assert auth_failure_logged(caplog)


async def test_the_serving_service_publishes_over_sasl(sasl_settings) -> None:
    service = ServingService(sasl_settings, models=ResidentModels())
    client = TestClient(TestServer(service.app()))
    await client.start_server()  # the producer, the batchers and the subscriber, over SASL
    try:
        response = await client.post("/feedback", json={
            "interaction_id": "i1", "task": "sentiment", "kind": "label", "value": "positive"})
        assert response.status == 202
        [record] = await consume_until(sasl_settings, Topic.FEEDBACK, 1, timeout=30)
        assert decode(record.value, Feedback).interaction_id == "i1"
    finally:
        await client.close()


async def test_the_faust_worker_over_sasl(sasl_broker, sasl_settings, wrong_settings,
                                          tmp_path) -> None:
    env = {**os.environ, **sasl_broker.env(sasl_settings),
           "DRIFTLOOP_KAFKA__BOOTSTRAP_SERVERS": sasl_settings.kafka.bootstrap_servers,
           "DRIFTLOOP_KAFKA__TOPIC_PREFIX": sasl_settings.kafka.topic_prefix,
           "DRIFTLOOP_WORKER__WEB_PORT": str(free_port()),
           "DRIFTLOOP_WORKER__DATA_DIR": str(tmp_path / "worker"),
           "DRIFTLOOP_WORKER__SESSION_TIMEOUT_S": "6"}
    log_path = tmp_path / "worker.log"
    # DEBUG: the most a worker ever logs, and still no password in it.
    with open(log_path, "wb") as log:
        worker = subprocess.Popen([str(DRIFTLOOP), "worker", "--loglevel", "DEBUG"], env=env,
                                  stdout=log, stderr=subprocess.STDOUT)
    try:
        await produce(sasl_settings, Topic.INTERACTIONS, [b"{not json"], key="sentiment")
        # Consumed by Faust's consumer and dead-lettered by its producer, both over SASL.
        [record] = await consume_until(sasl_settings, Topic.DEAD_LETTERS, 1, timeout=120)
        assert decode(record.value, DeadLetter).reason == "invalid_json"
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(60) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    assert PASSWORD not in log_path.read_text(errors="replace")
    # Wrong password: the worker stops at once, saying why.
    result = subprocess.run([str(DRIFTLOOP), "worker"],
                            env={**env, **sasl_broker.env(wrong_settings)},
                            capture_output=True, text=True, timeout=90, check=False)
    assert result.returncode == 1
    assert "Authentication failed" in result.stderr, result.stderr[-2000:]
    assert "error: kafka:" in result.stderr
    assert WRONG not in result.stderr + result.stdout


def test_the_password_is_masked_in_settings_and_config(sasl_broker, tmp_path) -> None:
    settings = sasl_broker.settings(tmp_path)
    for text in (repr(settings), str(settings), repr(settings.kafka), str(settings.safe_dict())):
        assert PASSWORD not in text
    env = {**os.environ, **sasl_broker.env(settings)}
    result = subprocess.run([str(DRIFTLOOP), "config"], env=env, capture_output=True, text=True,
                            timeout=60, check=True)
    assert '"sasl_password": "**********"' in result.stdout
    assert PASSWORD not in result.stdout + result.stderr
