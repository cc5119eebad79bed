"""driftloop status against the real broker: end offsets, real group lag, promoted versions."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time

import pytest
from aiokafka import TopicPartition
from click.testing import CliRunner
from kafka_helpers import produce
from waiting import wait_until_async

from driftloop.client.kafka import new_consumer
from driftloop.schemas import TOPIC_SPECS, ModelVersion, ServingAck, Topic, encode
from driftloop.schemas.settings import Settings
from driftloop.tools.cli import cli
from driftloop.tools.commands.status import render_status
from driftloop.tools.ops.status import collect_status, watched_groups

pytestmark = pytest.mark.kafka


async def consume_and_commit(settings: Settings, group: str, topic: str, count: int) -> None:
    """A real member of ``group`` reads ``count`` records of partition 0 and commits them."""
    async with new_consumer(settings, group_id=group, auto_offset_reset="earliest") as consumer:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        seen = 0

        async def read_all_of_them() -> bool:
            nonlocal seen
            if seen < count:
                batch = await consumer.getmany(tp, timeout_ms=500, max_records=count - seen)
                seen += len(batch.get(tp, []))
            return seen >= count

        await wait_until_async(read_all_of_them, 30, f"{count} records of {topic}[0] read",
                               interval=0, seen=lambda: f"{seen} read")
        assert seen == count
        await consumer.commit({tp: count})


def ack(replica: str, version_id: str, ts: float, *, refused: bool = False) -> bytes:
    return encode(ServingAck(ts=ts, replica=replica, task="sentiment", version_id=version_id,
                             status="refused" if refused else "serving",
                             reason="sha256 mismatch" if refused else ""))


def version(version_id: str, status: str, parent: str | None = None) -> bytes:
    return encode(ModelVersion(version_id=version_id, ts=time.time(), task="sentiment",
                               base_model="minilm", parent_version=parent,
                               adapter_uri=f"file:///store/{version_id}", sha256="a" * 64,
                               size_bytes=10, status=status))


async def test_status_reports_offsets_lag_and_promoted_head(kafka_settings: Settings) -> None:
    interactions = kafka_settings.kafka.topic(Topic.INTERACTIONS)
    await produce(kafka_settings, Topic.INTERACTIONS, [b"{}"] * 12, partition=0)
    await produce(kafka_settings, Topic.MODEL_VERSIONS,
                  [version("v1", "promoted"), version("v2", "promoted", "v1"),
                   version("v3", "rejected", "v2")])
    for replica, version_id, ts, refused in [("pod-1", "v2", 1.0, False),
                                             ("pod-2", "v1", 1.0, False),
                                             ("pod-2", "v2", 2.0, False),
                                             ("pod-3", "v2", 3.0, True)]:
        # serving-acks is compacted, so every record needs its key (replica/task).
        await produce(kafka_settings, Topic.SERVING_ACKS,
                      [ack(replica, version_id, ts, refused=refused)], key=f"{replica}/sentiment")
    worker_group = dict(watched_groups(kafka_settings))["worker"]
    await consume_and_commit(kafka_settings, worker_group, interactions, 5)

    status = await collect_status(kafka_settings)

    by_name = {t.name: t for t in status.topics}
    assert by_name[interactions].records == 12
    assert by_name[interactions].partitions == 6
    assert status.missing_topics == []
    worker = next(g for g in status.groups if g.role == "worker")
    assert worker.exists and worker.lag == {interactions: 7}
    learner = next(g for g in status.groups if g.role == "learner")
    assert not learner.exists
    assert status.registry_error is None
    assert status.promoted == {"sentiment": "v2"}
    assert status.versions == 3
    assert [(r.replica, r.version_id, r.serving) for r in status.replicas["sentiment"]] == [
        ("pod-1", "v2", True), ("pod-2", "v2", True), ("pod-3", "v2", False)]
    assert not status.converged("sentiment")  # pod-3 refused the promoted version
    text = render_status(status)
    assert "sentiment: promoted v2, served by 2/3 replicas" in text and "7 behind" in text
    assert "pod-3: refused v2 (sha256 mismatch)" in text
    # The consumer that committed is gone: the worker's group has offsets and no member.
    assert worker.members == 0
    assert status.problems(max_lag=10) == [
        f"worker {worker.group} has no running member (is the worker down?)"]
    assert status.problems(max_lag=5)[-1] == (f"worker {worker.group} is 7 records behind "
                                              "(more than 5)")
    assert "problems: 1" in text


def test_status_exits_1_when_a_component_is_down(kafka_settings: Settings, monkeypatch) -> None:
    monkeypatch.setenv("DRIFTLOOP_KAFKA__BOOTSTRAP_SERVERS", kafka_settings.kafka.bootstrap_servers)
    monkeypatch.setenv("DRIFTLOOP_KAFKA__TOPIC_PREFIX", kafka_settings.kafka.topic_prefix)
    interactions = kafka_settings.kafka.topic(Topic.INTERACTIONS)
    asyncio.run(produce(kafka_settings, Topic.INTERACTIONS, [b"{}"] * 3, partition=0))
    learner_group = dict(watched_groups(kafka_settings))["learner"]
    asyncio.run(consume_and_commit(kafka_settings, learner_group, interactions, 3))
    result = CliRunner().invoke(cli, ["status"], catch_exceptions=False)
    assert result.exit_code == 1, result.output
    assert f"learner {learner_group} has no running member" in result.output


def test_status_command_prints_json(kafka_settings: Settings, monkeypatch) -> None:
    monkeypatch.setenv("DRIFTLOOP_KAFKA__BOOTSTRAP_SERVERS", kafka_settings.kafka.bootstrap_servers)
    monkeypatch.setenv("DRIFTLOOP_KAFKA__TOPIC_PREFIX", kafka_settings.kafka.topic_prefix)
    result = CliRunner().invoke(cli, ["status", "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert '"promoted": {}' in result.output
    assert kafka_settings.kafka.topic(Topic.FEEDBACK) in result.output


def test_missing_topics_are_reported_not_raised(kafka_broker) -> None:
    settings = Settings(kafka={"bootstrap_servers": kafka_broker.bootstrap_servers,
                               "topic_prefix": "nothing-here."})
    status = asyncio.run(collect_status(settings))
    assert status.topics == [] and len(status.missing_topics) == len(TOPIC_SPECS)
    assert status.registry_error and "does not exist" in status.registry_error
    assert "missing (run: driftloop topics create)" in render_status(status)


def test_an_unreachable_broker_is_one_clear_line_not_a_traceback(unused_port: int) -> None:
    env = {**os.environ, "DRIFTLOOP_KAFKA__BOOTSTRAP_SERVERS": f"127.0.0.1:{unused_port}"}
    done = subprocess.run([sys.executable, "-m", "driftloop.tools", "status"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert "error: kafka:" in done.stderr and "is the broker running?" in done.stderr
    assert "Traceback" not in done.stderr


async def test_status_counts_label_requests_answered_pending_and_time_to_answer(
        kafka_settings: Settings) -> None:
    from driftloop.review.answers import review_feedback
    from driftloop.schemas import Feedback, Interaction, LabelRequest

    def request(n: int, task: str) -> LabelRequest:
        seen = Interaction(id=f"i{n}", ts=100.0, task=task, model_version="v0", input=f"t{n}",
                           scores={"probabilities": {"neg": 0.5, "pos": 0.5}})
        return LabelRequest(id=f"lr-i{n}", ts=100.0, task=task, interaction=seen,
                            reason="margin", priority=0.5)

    asked = [request(n, "sentiment") for n in range(4)] + [request(9, "topics")]
    # the worker re-emits a request under the same id (redelivery): one request
    await produce(kafka_settings, Topic.LABEL_REQUESTS, [encode(r) for r in [*asked, asked[0]]])
    answers = [review_feedback(kafka_settings, asked[0], "neg", reviewer="ann", ts=130.0),
               review_feedback(kafka_settings, asked[1], "pos", reviewer="bob", ts=190.0),
               # a user's label of the same interaction answers no request
               Feedback(id="u1", interaction_id="i2", ts=120.0, task="sentiment",
                        kind="label", value="pos")]
    await produce(kafka_settings, Topic.FEEDBACK, [encode(a) for a in answers])

    status = await collect_status(kafka_settings)

    sentiment, topics = status.reviews["sentiment"], status.reviews["topics"]
    assert (sentiment.sent, sentiment.answered, sentiment.pending) == (4, 2, 2)
    assert sentiment.median_answer_s == 60.0  # 30 s and 90 s
    assert (topics.sent, topics.answered, topics.median_answer_s) == (1, 0, None)
    text = render_status(status)
    assert "  sentiment            4         2        2  60 s" in text
    assert status.to_dict()["reviews"]["sentiment"]["pending"] == 2
