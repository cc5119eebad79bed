"""Every Kafka client driftloop builds speaks SASL and TLS when the settings say so, on a real
broker.

A second broker (module-scoped) has SASL_PLAINTEXT and SASL_SSL listeners with the PLAIN
mechanism, and an SSL one, under a test CA made with openssl; its PLAINTEXT listener is for
the broker's own traffic only. With the right password (and CA) the admin (topic creation),
producers, the learner's consumer, the serving subscriber and service, and the Faust worker
all work; with a wrong password or an untrusted certificate each fails fast, and the reason
("Authentication failed", "CERTIFICATE_VERIFY_FAILED") is in the client's log. The password
never shows in a log record, in ``repr(settings)`` or in ``driftloop config``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
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

from driftloop.learner.models.resident import ResidentModels
from driftloop.learner.service import LearnerService
from driftloop.learner.serving import AdapterSubscriber, ModelHost
from driftloop.learner.serving.http import ServingService
from driftloop.learner.training.update import IncrementalUpdater
from driftloop.schemas import DeadLetter, Feedback, Topic, decode
from driftloop.schemas.settings import KafkaSettings, Settings
from driftloop.tools.errors import TopicsError
from driftloop.tools.kafka.local_broker import LocalKafka
from driftloop.tools.kafka.topic_admin import acreate_topics, create_topics, delete_topics

pytestmark = [pytest.mark.kafka]

USER, PASSWORD = "driftloop", "pw-7Hq2-never-logged"
WRONG = "not-the-password"
KEY_PASSWORD = "broker-key-pw"
DRIFTLOOP = Path(sys.executable).parent / "driftloop"


def make_certificates(folder: Path) -> dict[str, Path]:
    """A test CA, a broker certificate for 127.0.0.1 signed by it (in the PEM keystore form
    Kafka reads: PBES1-encrypted PKCS#8 key, then the chain), and an unrelated CA."""
    folder.mkdir(parents=True, exist_ok=True)

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)

    for name in ("ca", "other-ca"):
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key",
                "-out", f"{name}.pem", "-days", "2", "-subj", f"/CN=driftloop {name}")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "broker.key", "-out",
            "broker.csr", "-subj", "/CN=127.0.0.1")
    (folder / "san.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    openssl("x509", "-req", "-in", "broker.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "broker.crt", "-days", "2", "-extfile", "san.cnf")
    # The JVM's PEM loader reads PBES1 keys, not OpenSSL's default PBES2.
    openssl("pkcs8", "-topk8", "-in", "broker.key", "-out", "broker.p8", "-v1",
            "PBE-SHA1-3DES", "-passout", f"pass:{KEY_PASSWORD}")
    keystore = folder / "broker-keystore.pem"
    keystore.write_bytes(b"".join((folder / n).read_bytes()
                                  for n in ("broker.p8", "broker.crt", "ca.pem")))
    return {"ca": folder / "ca.pem", "other_ca": folder / "other-ca.pem", "keystore": keystore}


class SaslBroker:
    """A LocalKafka with SASL_PLAINTEXT, SASL_SSL (PLAIN) and SSL listeners for clients beside
    its internal PLAINTEXT one."""

    PROTOCOLS = ("SASL_PLAINTEXT", "SASL_SSL", "SSL")

    def __init__(self, home: Path) -> None:
        self.certs = make_certificates(home / "certs")
        plain, controller = free_port(), free_port()
        self.ports = {protocol: free_port() for protocol in self.PROTOCOLS}
        self.sasl_port = self.ports["SASL_PLAINTEXT"]
        jaas = ("org.apache.kafka.common.security.plain.PlainLoginModule required "
                f'username="admin" password="admin-pw" user_{USER}="{PASSWORD}";')
        clients = ",".join(f"{p}://127.0.0.1:{port}" for p, port in self.ports.items())
        self.kafka = LocalKafka(
            home=home, port=plain, controller_port=controller, heap=BROKER_HEAP,
            jvm_options=BROKER_JVM_OPTIONS, die_with_parent=True, extra_config={
                "listeners": f"PLAINTEXT://127.0.0.1:{plain},{clients},"
                             f"CONTROLLER://127.0.0.1:{controller}",
                "advertised.listeners": f"PLAINTEXT://127.0.0.1:{plain},{clients}",
                "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,"
                + ",".join(f"{p}:{p}" for p in self.PROTOCOLS),
                "sasl.enabled.mechanisms": "PLAIN",
                "listener.name.sasl_plaintext.plain.sasl.jaas.config": jaas,
                "listener.name.sasl_ssl.plain.sasl.jaas.config": jaas,
                "ssl.keystore.type": "PEM",
                "ssl.keystore.location": str(self.certs["keystore"]),
                "ssl.key.password": KEY_PASSWORD,
            })

    def settings(self, tmp_path: Path, password: str = PASSWORD,
                 protocol: str = "SASL_PLAINTEXT") -> Settings:
        kafka: dict[str, object] = {"bootstrap_servers": f"127.0.0.1:{self.ports[protocol]}",
                                    "topic_prefix": f"s{uuid.uuid4().hex[:10]}.",
                                    "security_protocol": protocol}
        if protocol.startswith("SASL"):
            kafka.update(sasl_mechanism="PLAIN", sasl_username=USER, sasl_password=password)
        if protocol.endswith("SSL"):
            kafka.update(ssl_cafile=self.certs["ca"])
        return Settings(
            kafka=kafka,
            artifacts={"store_url": str(tmp_path / "artifacts")},
            worker={"data_dir": tmp_path / "worker"},
            learner={"cache_dir": tmp_path / "learner"},
            serving={"cache_dir": tmp_path / "serving", "replica_id": "sasl-replica"})


@pytest.fixture(scope="module")
def sasl_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SaslBroker]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make the test broker's certificates")
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
    plaintext = sasl_broker.settings(tmp_path).model_copy(update={"kafka": KafkaSettings(
        bootstrap_servers=f"127.0.0.1:{sasl_broker.sasl_port}")})
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


def worker_env(settings: Settings, tmp_path: Path) -> dict[str, str]:
    return {**os.environ, **settings.kafka.child_env(),
            "DRIFTLOOP_WORKER__WEB_PORT": str(free_port()),
            "DRIFTLOOP_WORKER__DATA_DIR": str(tmp_path / "worker"),
            "DRIFTLOOP_WORKER__SESSION_TIMEOUT_S": "6"}


async def dead_letter_through_worker(settings: Settings, env: dict[str, str], log_path: Path,
                                     loglevel: str = "INFO") -> None:
    """Run ``driftloop worker``; a poison interaction must come out as a dead letter: Faust's
    consumer and producer (and the changelog admin before them) all talked to the broker."""
    with open(log_path, "wb") as log:
        worker = subprocess.Popen([str(DRIFTLOOP), "worker", "--loglevel", loglevel], env=env,
                                  stdout=log, stderr=subprocess.STDOUT)
    try:
        await produce(settings, Topic.INTERACTIONS, [b"{not json"], key="sentiment")
        records = await consume_until(
            settings, Topic.DEAD_LETTERS,
            lambda rs: any(r.key == settings.kafka.topic(Topic.INTERACTIONS).encode()
                           for r in rs), timeout=120)
        assert {decode(r.value, DeadLetter).reason for r in records} >= {"invalid_json"}
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(60) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()


async def test_the_faust_worker_over_sasl(sasl_broker, sasl_settings, wrong_settings,
                                          tmp_path) -> None:
    env = worker_env(sasl_settings, tmp_path)
    # DEBUG: the most a worker ever logs, and still no password in it.
    await dead_letter_through_worker(sasl_settings, env, tmp_path / "worker.log", "DEBUG")
    assert PASSWORD not in (tmp_path / "worker.log").read_text(errors="replace")
    # Wrong password: the worker stops at once, saying why.
    result = subprocess.run([str(DRIFTLOOP), "worker"],
                            env={**env, **wrong_settings.kafka.child_env()},
                            capture_output=True, text=True, timeout=90, check=False)
    assert result.returncode == 1
    assert "Authentication failed" in result.stderr, result.stderr[-2000:]
    assert "error: kafka:" in result.stderr
    assert WRONG not in result.stderr + result.stdout


@pytest.mark.parametrize("protocol", ["SASL_SSL", "SSL"])
async def test_every_component_over_tls(sasl_broker, tmp_path, protocol, caplog) -> None:
    settings = sasl_broker.settings(tmp_path, protocol=protocol)
    await acreate_topics(settings)  # the admin
    try:
        # The learner's consumer and producer: a poison request becomes a dead letter.
        await produce(settings, Topic.TRAINING_REQUESTS, [b"{not json"], key="sentiment")
        stats = await asyncio.wait_for(LearnerService(
            settings, updater=IncrementalUpdater(settings), max_requests=1).run(), 60)
        assert stats.dead_letters == 1
        host = ModelHost(ResidentModels())
        subscriber = AdapterSubscriber(settings, host, replica="tls-replica")
        try:
            await subscriber.start()
            await subscriber.wait_caught_up(30)
        finally:
            await subscriber.stop()
            host.close()
        await dead_letter_through_worker(settings, worker_env(settings, tmp_path),
                                         tmp_path / "worker.log")
        # A broker certificate from another CA is refused, and the log says so.
        untrusted = settings.model_copy(update={"kafka": settings.kafka.model_copy(
            update={"ssl_cafile": sasl_broker.certs["other_ca"]})})
        with pytest.raises(KafkaConnectionError):
            await asyncio.wait_for(produce(untrusted, Topic.FEEDBACK, [b"x"]), 60)
        assert any("CERTIFICATE_VERIFY_FAILED" in r.getMessage() for r in caplog.records)
    finally:
        await asyncio.to_thread(delete_topics, settings)


def test_the_password_is_masked_in_settings_and_config(sasl_broker, tmp_path) -> None:
    settings = sasl_broker.settings(tmp_path)
    for text in (repr(settings), str(settings), repr(settings.kafka), str(settings.safe_dict())):
        assert PASSWORD not in text
    env = {**os.environ, **settings.kafka.child_env()}
    result = subprocess.run([str(DRIFTLOOP), "config", "--json"], env=env, capture_output=True,
                            text=True, timeout=60, check=True)
    assert '"sasl_password": "**********"' in result.stdout
    assert PASSWORD not in result.stdout + result.stderr
