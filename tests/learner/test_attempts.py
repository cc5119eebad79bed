"""The learner's failure policy on the real broker: attempts are counted in the consumer
group's commits (a crash counts too), a request that keeps failing becomes a dead letter
``training_failed`` with its traceback's tail and the learner goes on, out of memory retries
with half the batch, and a base model that cannot be loaded ends the process with status 3."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from aiokafka import TopicPartition
from kafka_helpers import consume_until, produce
from learner_helpers import learner_env, sentiment_request

from driftloop.client.kafka import new_consumer, topic_partitions
from driftloop.learner.errors import BASE_MODEL_EXIT_STATUS
from driftloop.learner.group import consumer_group
from driftloop.learner.service import LearnerService
from driftloop.learner.training.update import IncrementalUpdater
from driftloop.schemas import DeadLetter, Topic, decode, encode
from driftloop.schemas.settings import Settings

pytestmark = [pytest.mark.kafka]

DRIFTLOOP = Path(sys.executable).parent / "driftloop"


def with_policy(settings: Settings, **learner: object) -> Settings:
    return settings.model_copy(update={"learner": settings.learner.model_copy(
        update={"retry_backoff_s": 0.01, **learner})})


class _Failing(IncrementalUpdater):
    """Training that fails the same way every time (a corrupt parent, a flaky disk)."""

    calls = 0

    def update(self, request, versions, *, batch_size=None):  # type: ignore[no-untyped-def,override]
        type(self).calls += 1
        raise RuntimeError(f"disk on fire while training {request.id}")


class _Died(BaseException):
    """The process ending mid-update (what kill -9 or the OOM killer does to it)."""


class _Dying(IncrementalUpdater):
    calls = 0

    def update(self, request, versions, *, batch_size=None):  # type: ignore[no-untyped-def,override]
        type(self).calls += 1
        raise _Died


class _OutOfMemory(IncrementalUpdater):
    """Out of CUDA memory at the configured batch size; fine at half of it."""

    sizes: list[int | None] = []

    def update(self, request, versions, *, batch_size=None):  # type: ignore[no-untyped-def,override]
        self.sizes.append(batch_size)
        if batch_size is None:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return super().update(request, versions, batch_size=batch_size)


async def committed(settings: Settings) -> int:
    topic = settings.kafka.topic(Topic.TRAINING_REQUESTS)
    async with new_consumer(settings, group_id=consumer_group(settings)) as consumer:
        partitions = (await topic_partitions(settings, topic))[topic]
        return sum([await consumer.committed(TopicPartition(topic, p)) or 0
                    for p in partitions])


async def test_a_request_failing_every_attempt_becomes_a_dead_letter_and_the_learner_goes_on(
        kafka_settings) -> None:  # type: ignore[no-untyped-def]
    settings = with_policy(kafka_settings, max_attempts=3)
    await produce(settings, Topic.TRAINING_REQUESTS,
                  [encode(sentiment_request("r-fire", n=8)), b"{not json"], key="sentiment")
    _Failing.calls = 0
    stats = await asyncio.wait_for(LearnerService(
        settings, updater=_Failing(settings), max_requests=2).run(), 60)
    assert _Failing.calls == 3 and stats.failed_attempts == 3 and stats.dead_letters == 2
    letters = [decode(r.value, DeadLetter) for r in await consume_until(
        settings, Topic.DEAD_LETTERS, 2, timeout=30)]
    failed = next(d for d in letters if d.reason == "training_failed")
    assert failed.error.startswith("r-fire: 3 of 3 attempts failed; the last: Traceback")
    assert "in update" in failed.error  # the frames, not only the message
    assert failed.error.endswith("RuntimeError: disk on fire while training r-fire")
    assert await committed(settings) == 2  # both records done; the learner went on


async def test_attempts_survive_the_process_so_a_crashing_request_stops_crashing_it(
        kafka_settings) -> None:  # type: ignore[no-untyped-def]
    settings = with_policy(kafka_settings, max_attempts=2)
    await produce(settings, Topic.TRAINING_REQUESTS,
                  [encode(sentiment_request("r-dies", n=8))], key="sentiment")
    _Dying.calls = 0
    for _ in range(2):  # two processes die on it; each attempt was committed before training
        with pytest.raises(_Died):
            await asyncio.wait_for(LearnerService(
                settings, updater=_Dying(settings), max_requests=1).run(), 60)
    # The third process reads two attempts from the group's commit: no third try.
    stats = await asyncio.wait_for(LearnerService(
        settings, updater=_Dying(settings), max_requests=1).run(), 60)
    assert _Dying.calls == 2 and stats.dead_letters == 1
    [record] = await consume_until(settings, Topic.DEAD_LETTERS, 1, timeout=30)
    letter = decode(record.value, DeadLetter)
    assert letter.reason == "training_failed" and "2 of 2 attempts failed" in letter.error
    assert "the learner ended while training it" in letter.error
    assert await committed(settings) == 1


async def test_out_of_memory_retries_once_with_half_the_batch(kafka_settings) -> None:  # type: ignore[no-untyped-def]
    settings = with_policy(kafka_settings)
    await produce(settings, Topic.TRAINING_REQUESTS,
                  [encode(sentiment_request("r-oom", n=32))], key="sentiment")
    updater = _OutOfMemory(settings)
    updater.sizes = []
    stats = await asyncio.wait_for(LearnerService(settings, updater=updater,
                                                  max_requests=1).run(), 300)
    half = settings.learner.batch_size // 2
    assert updater.sizes == [None, half] and stats.dead_letters == 0
    [event] = stats.published
    assert event.metadata["batch_size"] == half


async def test_a_base_model_that_cannot_load_ends_the_learner_with_status_3(
        kafka_settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    missing = tmp_path / "no-such-model"
    settings = kafka_settings.model_copy(update={
        "tasks": {"broken": Settings(tasks={"broken": {
            "labels": ["negative", "positive"], "base_model": str(missing)}}).tasks["broken"]},
        "learner": kafka_settings.learner.model_copy(update={
            "group_id": f"{kafka_settings.kafka.topic_prefix}learner"})})
    await produce(settings, Topic.TRAINING_REQUESTS,
                  [encode(sentiment_request("r-nomodel", n=8, task="broken"))], key="broken")
    run = await asyncio.to_thread(
        subprocess.run, [str(DRIFTLOOP), "learner", "--max-requests", "1"],
        capture_output=True, text=True, timeout=300, env=learner_env(settings))
    assert run.returncode == BASE_MODEL_EXIT_STATUS, run.stderr[-2000:]
    assert f"base model folder {missing} does not exist" in run.stderr
    assert await committed(settings) == 0  # the request waits for a learner that can load it
