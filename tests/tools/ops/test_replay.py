"""driftloop replay against the real broker: exact ranges, exactly once across a kill, dry run."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest
from aiokafka import TopicPartition
from aiokafka.admin import NewTopic, RecordsToDelete
from waiting import WaitTimeout, wait_until_async

from driftloop.client.kafka import admin_client, new_consumer, new_producer, topic_partitions
from driftloop.schemas.settings import Settings
from driftloop.tools.ops import replay as replay_module
from driftloop.tools.ops.replay import ReplayError, ReplayResult, ReplaySpec, run_replay

pytestmark = pytest.mark.kafka

# An hour ago, whole seconds: records far older than the topics' retention would be deleted
# by the broker's next retention check, in the middle of a test.
BASE_MS = (int(time.time()) - 3600) * 1000


async def make_topic(settings: Settings, name: str, partitions: int = 3) -> str:
    full = f"{settings.kafka.topic_prefix}{name}"  # a topic of the test's own, not a driftloop one
    async with admin_client(settings) as admin:
        await admin.create_topics([NewTopic(full, partitions, 1)])
    return full


async def fill(settings: Settings, topic: str, count: int, *, step_ms: int = 1000) -> None:
    """``count`` records, key k<i%5>, value r<i>, a header, timestamps BASE + i*step."""
    async with new_producer(settings, linger_ms=5) as producer:
        for i in range(count):
            await producer.send(topic, value=f"r{i}".encode(), key=f"k{i % 5}".encode(),
                                headers=[("origin", b"test")], timestamp_ms=BASE_MS + i * step_ms)
        await producer.flush()


async def read_all(settings: Settings, topic: str, *, expect: int | None = None,
                   timeout: float = 30.0) -> list:
    """Every committed record of ``topic`` (waits until ``expect`` arrive or the deadline)."""
    consumer = new_consumer(settings, isolation_level="read_committed",
                            auto_offset_reset="earliest")
    async with consumer:
        partitions = (await topic_partitions(settings, topic))[topic]
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        records: list = []

        async def read_to_the_end() -> bool:
            ends = await consumer.end_offsets(tps)
            caught_up = [await consumer.position(tp) >= ends[tp] for tp in tps]
            if expect is None and all(caught_up):
                return True
            if expect is not None and len(records) >= expect:
                return True
            batch = await consumer.getmany(timeout_ms=200)
            for part in batch.values():
                records.extend(part)
            return False

        # At the deadline, what arrived so far: the callers assert on it (or poll again).
        with contextlib.suppress(WaitTimeout):
            await wait_until_async(read_to_the_end, timeout, f"the records of {topic}",
                                   interval=0)
        return records


def cli_env(settings: Settings) -> dict[str, str]:
    return {**os.environ,
            "DRIFTLOOP_KAFKA__BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers,
            "DRIFTLOOP_KAFKA__TOPIC_PREFIX": settings.kafka.topic_prefix}


def replay_argv(settings: Settings, source: str, target: str) -> list[str]:
    return [sys.executable, "-m", "driftloop.tools", "replay", "--source", source,
            "--target", target]


async def test_time_range_copies_exactly_the_records_in_range(kafka_settings: Settings) -> None:
    source = await make_topic(kafka_settings, "replay-src")
    target = await make_topic(kafka_settings, "replay-dst")
    await fill(kafka_settings, source, 300)
    spec = ReplaySpec(source=source, target=target,
                      since_ms=BASE_MS + 100_000, until_ms=BASE_MS + 200_000)
    result = await run_replay(kafka_settings, spec)
    copied = await read_all(kafka_settings, target)
    assert sorted(r.value for r in copied) == sorted(f"r{i}".encode() for i in range(100, 200))
    assert result.copied == 100
    by_value = {r.value: r for r in copied}
    sample = by_value[b"r150"]
    assert sample.key == b"k0"
    assert sample.timestamp == BASE_MS + 150_000
    assert list(sample.headers) == [("origin", b"test")]


async def test_partition_and_offset_range_and_dry_run(kafka_settings: Settings) -> None:
    source = await make_topic(kafka_settings, "replay-src2")
    target = await make_topic(kafka_settings, "replay-dst2")
    await fill(kafka_settings, source, 200)
    per_partition = Counter(r.partition for r in await read_all(kafka_settings, source))
    spec = ReplaySpec(source=source, target=target, partitions=(1,), from_offset=5, to_offset=20)
    expected = max(0, min(per_partition[1], 20) - 5)
    dry = await run_replay(kafka_settings, spec, dry_run=True)
    assert (dry.dry_run, dry.copied) == (True, expected)
    assert await read_all(kafka_settings, target, timeout=2) == []
    done = await run_replay(kafka_settings, spec)
    copied = await read_all(kafka_settings, target)
    assert done.copied == expected == len(copied)
    assert {r.partition for r in copied} == {1}
    # Same spec again: the recorded position says everything is copied already.
    again = await run_replay(kafka_settings, spec)
    assert (again.copied, again.resumed) == (0, True)
    assert len(await read_all(kafka_settings, target)) == expected


def test_refuses_to_write_into_its_own_source() -> None:
    with pytest.raises(ReplayError, match="into itself"):
        ReplaySpec(source="interactions", target="interactions")
    assert ReplaySpec(source="a", target="a", allow_same_topic=True).job_id
    with pytest.raises(ReplayError, match="empty time range"):
        ReplaySpec(source="a", target="b", since_ms=10, until_ms=5)


async def test_missing_topics_are_clear_errors(kafka_settings: Settings) -> None:
    source = await make_topic(kafka_settings, "replay-src3")
    with pytest.raises(ReplayError, match=r"target topic .* does not exist"):
        await run_replay(kafka_settings, ReplaySpec(source=source, target="nope-missing"))
    with pytest.raises(ReplayError, match=r"source topic .* does not exist"):
        await run_replay(kafka_settings, ReplaySpec(source="nope-missing", target=source))
    with pytest.raises(ReplayError, match="no partition"):
        await run_replay(kafka_settings, ReplaySpec(source=source, target=source + "x",
                                                    partitions=(7,)), dry_run=True)


@pytest.mark.slow
async def test_killed_replay_resumes_and_copies_every_record_exactly_once(
        kafka_settings: Settings) -> None:
    count = 3000
    source = await make_topic(kafka_settings, "replay-src4")
    target = await make_topic(kafka_settings, "replay-dst4")
    await fill(kafka_settings, source, count, step_ms=1)
    env = cli_env(kafka_settings)
    argv = [*replay_argv(kafka_settings, source, target), "--rate", "1500"]
    first = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        copied = 0

        async def a_quarter_copied_or_ended() -> bool:
            nonlocal copied
            if first.poll() is not None:
                return True  # the assertion below reports how it ended
            copied = len(await read_all(kafka_settings, target, timeout=2))
            return copied >= count // 4

        # Past the deadline the kill still tests a resume as long as some records were copied.
        with contextlib.suppress(WaitTimeout):
            await wait_until_async(a_quarter_copied_or_ended, 60, f"{count // 4} records copied")
        assert first.poll() is None, first.stderr.read().decode()[-2000:]
        assert 0 < copied < count, copied
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        if first.poll() is None:
            first.kill()
    second = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    assert second.returncode == 0, second.stderr[-2000:]
    assert "(resumed)" in second.stdout
    records = await read_all(kafka_settings, target, expect=count)
    values = Counter(r.value for r in records)
    assert len(values) == count
    assert max(values.values()) == 1, [v for v, n in values.items() if n > 1][:5]


async def stopped_after_a_chunk(settings: Settings, monkeypatch: pytest.MonkeyPatch,
                                suffix: str) -> tuple[str, str, ReplayResult]:
    """A source of 300 records and a replay of it stopped after its first chunk of 20."""
    source = await make_topic(settings, f"replay-src{suffix}")
    target = await make_topic(settings, f"replay-dst{suffix}")
    await fill(settings, source, 300)
    monkeypatch.setattr(replay_module, "CHUNK_RECORDS", 20)
    stop = asyncio.Event()
    first = await run_replay(settings, ReplaySpec(source=source, target=target), stop=stop,
                             progress=lambda done, total: stop.set())
    assert 0 < first.copied < 300
    return source, target, first


async def test_a_resumed_replay_stops_at_the_end_its_first_run_planned(
        kafka_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    # "The end of the partition when the job starts": records produced to the source while a
    # replay was stopped are not part of the job, and the resumed run must not copy them.
    source, target, first = await stopped_after_a_chunk(kafka_settings, monkeypatch, "7")
    async with new_producer(kafka_settings) as producer:  # produced after the job started
        for i in range(60):
            await producer.send(source, value=f"late{i}".encode(), key=b"k0")
    second = await run_replay(kafka_settings, ReplaySpec(source=source, target=target))
    assert second.resumed
    assert first.copied + second.copied == 300
    copied = await read_all(kafka_settings, target, expect=300)
    assert sorted(r.value for r in copied) == sorted(f"r{i}".encode() for i in range(300))
    # A new job over the same source (--restart) plans afresh and copies the late records.
    third = await run_replay(kafka_settings, ReplaySpec(source=source, target=target),
                             restart=True, dry_run=True)
    assert third.copied == 360


async def delete_up_to(settings: Settings, topic: str, offset: int) -> dict[int, int]:
    """Move every partition's log start to ``offset`` (or its end), as retention does."""
    consumer = new_consumer(settings)
    async with consumer:
        partitions = (await topic_partitions(settings, topic))[topic]
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        ends = await consumer.end_offsets(tps)
    cut = {tp: min(offset, ends[tp]) for tp in tps}
    async with admin_client(settings) as admin:
        await admin.delete_records({tp: RecordsToDelete(at) for tp, at in cut.items()})
    return {tp.partition: at for tp, at in cut.items()}


async def test_records_retention_deletes_mid_replay_are_counted_not_dropped(
        kafka_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    source = await make_topic(kafka_settings, "replay-src5")
    target = await make_topic(kafka_settings, "replay-dst5")
    await fill(kafka_settings, source, 300)
    real_plan = replay_module.plan_replay
    cut: dict[int, int] = {}

    async def plan_then_expire(*args, **kwargs):
        plans = await real_plan(*args, **kwargs)
        cut.update(await delete_up_to(kafka_settings, source, 40))  # after planning, before reading
        return plans

    monkeypatch.setattr(replay_module, "plan_replay", plan_then_expire)
    result = await run_replay(kafka_settings, ReplaySpec(source=source, target=target))
    survivors = await read_all(kafka_settings, source)
    assert result.expired == sum(cut.values()) > 0
    assert result.copied == len(survivors) == 300 - result.expired
    copied = await read_all(kafka_settings, target)
    assert sorted(r.value for r in copied) == sorted(r.value for r in survivors)


async def test_a_stopped_replay_counts_what_retention_deleted_meanwhile(
        kafka_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    source, target, first = await stopped_after_a_chunk(kafka_settings, monkeypatch, "6")
    await delete_up_to(kafka_settings, source, 60)
    survivors = await read_all(kafka_settings, source)
    second = subprocess.run(replay_argv(kafka_settings, source, target),
                            env=cli_env(kafka_settings), capture_output=True, text=True,
                            timeout=120)
    assert second.returncode == 0, second.stderr[-2000:]
    assert "(resumed)" in second.stdout
    copied = int(re.search(r"copied (\d+) records", second.stdout).group(1))
    expired = 300 - first.copied - copied
    assert expired > 0
    assert f"{expired} offsets in range were deleted by the retention" in second.stderr
    values = Counter(r.value for r in await read_all(kafka_settings, target))
    assert max(values.values()) == 1
    assert {r.value for r in survivors} <= set(values)
    assert len(values) == first.copied + copied


async def test_a_position_past_the_end_of_the_log_is_a_clear_error() -> None:
    # Only a truncated or re-created log puts a position past its end (the plan never
    # does): a stand-in consumer whose log begins below the position it was refused.
    tp = TopicPartition("t", 0)
    plans = {tp: replay_module.PartitionPlan(start=0, end=100)}
    with pytest.raises(ReplayError, match="past the end of its log"):
        await replay_module._skip_expired(_Seekable(), {tp: 50}, plans, replay_module._Chunk())
    # Below the beginning: counted, and the partition moves on to the beginning.
    chunk, consumer = replay_module._Chunk(), _Seekable()
    await replay_module._skip_expired(consumer, {tp: 4}, plans, chunk)
    assert (chunk.expired, chunk.positions, consumer.seeks) == (6, {tp: 10}, [(tp, 10)])


class _Seekable:
    """Stand-in consumer: the log begins at 10; seeks are recorded."""

    def __init__(self) -> None:
        self.seeks: list[tuple[TopicPartition, int]] = []

    async def beginning_offsets(self, tps):
        return {tp: 10 for tp in tps}

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.seeks.append((tp, offset))
