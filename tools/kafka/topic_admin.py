"""Create and list driftloop's topics (``TOPIC_SPECS``) under the configured prefix.

Creation is idempotent: topics that already exist are reported, not errors, so
``driftloop topics create`` can run at every deploy. Existing topics keep their configs:
changing a config of a live topic is an operator's decision, not a side effect.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
from collections.abc import Coroutine
from contextlib import AbstractAsyncContextManager
from typing import Any, TypeVar

from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError

from ...client.kafka import admin_client, new_consumer
from ...schemas.settings import Settings
from ...schemas.topics import TOPIC_SPECS
from ..errors import TopicsError

__all__ = [
    "acreate_topics",
    "adelete_topics",
    "alist_topics",
    "create_topics",
    "delete_topics",
    "list_topics",
    "topic_names",
    "topics_to_delete",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

# A single-node broker: every partition has one replica. A multi-broker cluster should be
# provisioned by its operators (or with more replicas) rather than by this command.
REPLICATION_FACTOR = 1
_TOPIC_ALREADY_EXISTS = 36
_INVALID_REPLICATION_FACTOR = 38
# REQUEST_TIMED_OUT, BROKER_NOT_AVAILABLE, NOT_CONTROLLER: the cluster is still forming.
_TRANSIENT_CREATE_ERRORS = frozenset({7, 8, 41})
_UNKNOWN_TOPIC = 3
_READY_TIMEOUT_S = 15.0
_UNFENCE_TIMEOUT_S = 60.0


def topic_names(settings: Settings) -> list[str]:
    """Every driftloop topic under the settings' prefix, in ``TOPIC_SPECS`` order.

    >>> topic_names(Settings(kafka={"topic_prefix": "dev."}))[:2]
    ['dev.interactions', 'dev.feedback']
    """
    return [settings.kafka.topic(topic) for topic in TOPIC_SPECS]


def _admin(settings: Settings) -> AbstractAsyncContextManager[AIOKafkaAdminClient]:
    return admin_client(settings, request_timeout_ms=30_000)


async def acreate_topics(settings: Settings, *, partitions: int | None = None) -> list[str]:
    """Create every missing driftloop topic; return the names created (existing ones skipped).

    ``partitions`` overrides each spec's partition count for new topics (tests use 1).
    Returns once every topic has a leader, so producers and consumers can use them at once.
    """
    if partitions is not None and partitions < 1:
        raise ValueError(f"partitions must be at least 1, got {partitions}")
    new_topics = [
        NewTopic(name=settings.kafka.topic(topic),
                 num_partitions=partitions or spec.partitions,
                 replication_factor=REPLICATION_FACTOR,
                 topic_configs=dict(spec.configs))
        for topic, spec in TOPIC_SPECS.items()
    ]
    try:
        async with _admin(settings) as admin:
            created = await _create(admin, new_topics)
            await _wait_until_ready(admin, settings, [topic.name for topic in new_topics])
    except KafkaError as exc:
        raise TopicsError(f"cannot create topics on {settings.kafka.bootstrap_servers}: "
                          f"{exc}") from exc
    except TimeoutError as exc:
        raise TopicsError(f"cannot create topics on {settings.kafka.bootstrap_servers}: its "
                          "controller did not answer in time") from exc
    order = {topic.name: i for i, topic in enumerate(new_topics)}
    created.sort(key=order.__getitem__)
    log.info("topics created: %s; already present: %d", created or "none",
             len(new_topics) - len(created))
    return created


async def _create(admin: AIOKafkaAdminClient, new_topics: list[NewTopic]) -> list[str]:
    """Ask for ``new_topics`` until each is created or exists; return the names created."""
    created: list[str] = []
    pending = list(new_topics)
    deadline = time.monotonic() + _UNFENCE_TIMEOUT_S
    while pending:
        try:
            response = await admin.create_topics(pending, timeout_ms=30_000)
        except TimeoutError:
            # aiokafka's admin gives up with a bare TimeoutError when the controller's
            # connection is not ready within its request timeout (seen right after a
            # broker restart on a loaded machine): ask again while the deadline allows.
            if time.monotonic() >= deadline:
                raise
            continue
        failed, again = [], []
        for name, code, *rest in response.topic_errors:
            message = rest[0] if rest and rest[0] else f"error code {code}"
            if code == 0:
                created.append(name)
            elif _not_ready_yet(code, message) and time.monotonic() < deadline:
                again.append(name)
            elif code != _TOPIC_ALREADY_EXISTS:
                failed.append(f"{name}: {message}")
        if failed:
            raise TopicsError("the broker refused to create: " + "; ".join(failed))
        pending = [topic for topic in pending if topic.name in again]
        if pending:
            await asyncio.sleep(0.5)  # a broker that just restarted unfences in seconds
    return created


def _not_ready_yet(code: int, message: str) -> bool:
    """A refusal that passes by itself: a restarted broker is fenced until it caught up.

    >>> _not_ready_yet(38, "Unable to replicate the partition 1 time(s): All brokers are "
    ...                "currently fenced.")
    True
    >>> _not_ready_yet(38, "Replication factor: 3 larger than available brokers: 1.")
    False
    """
    return code in _TRANSIENT_CREATE_ERRORS or (code == _INVALID_REPLICATION_FACTOR
                                               and "fenced" in message)


async def _wait_until_ready(admin: AIOKafkaAdminClient, settings: Settings,
                            names: list[str]) -> None:
    # CreateTopics returns when the controller committed the topics; the broker applies
    # them a moment later, and its metadata names a leader slightly before that leader
    # serves the partition. Clients that come right after would meet UNKNOWN_TOPIC and
    # NOT_LEADER errors (retried, but noisy and slow), so wait for both steps.
    deadline = time.monotonic() + _READY_TIMEOUT_S
    while True:
        described = await admin.describe_topics(names)
        pending = [t["topic"] for t in described
                   if t["error_code"] != 0 or not t["partitions"]
                   or any(p["leader"] < 0 for p in t["partitions"])]
        if not pending:
            break
        if time.monotonic() >= deadline:
            raise TopicsError(f"topics have no leader after {_READY_TIMEOUT_S:.0f} s: "
                              + ", ".join(pending))
        await asyncio.sleep(0.1)
    # A ListOffsets answer comes from the partition's leader itself; aiokafka retries
    # NOT_LEADER until every partition answers or the timeout passes.
    partitions = [TopicPartition(t["topic"], p["partition"])
                  for t in described for p in t["partitions"]]
    probe = new_consumer(settings,
                         request_timeout_ms=int(max(deadline - time.monotonic(), 1) * 1000))
    async with probe:
        fetcher_log = logging.getLogger("aiokafka.consumer.fetcher")
        fetcher_log.addFilter(_expected_not_leader)
        try:
            probe.assign(partitions)  # one metadata request for all topics, not one per topic
            await probe.end_offsets(partitions)
        finally:
            fetcher_log.removeFilter(_expected_not_leader)


def _expected_not_leader(record: logging.LogRecord) -> bool:
    # While the probe waits, NOT_LEADER answers are the very thing it waits out: not news.
    return "NotLeaderForPartitionError" not in record.getMessage()


async def _wait_until_gone(admin: AIOKafkaAdminClient, names: list[str]) -> None:
    # Deletion, like creation, reaches the broker's metadata a moment after the controller.
    deadline = time.monotonic() + _READY_TIMEOUT_S
    while True:
        remaining = set(names) & set(await admin.list_topics())
        if not remaining:
            return
        if time.monotonic() >= deadline:
            raise TopicsError(f"topics still listed {_READY_TIMEOUT_S:.0f} s after deletion: "
                              + ", ".join(sorted(remaining)))
        await asyncio.sleep(0.1)


async def alist_topics(settings: Settings, *, all_topics: bool = False) -> list[str]:
    """The sorted topic names on the broker under the prefix (every topic with ``all_topics``)."""
    try:
        async with _admin(settings) as admin:
            names = await admin.list_topics()
    except KafkaError as exc:
        raise TopicsError(f"cannot list topics on {settings.kafka.bootstrap_servers}: "
                          f"{exc}") from exc
    prefix = settings.kafka.topic_prefix
    return sorted(n for n in names if all_topics or (n.startswith(prefix)
                                                    and not n.startswith("__")))


async def adelete_topics(settings: Settings) -> list[str]:
    """Delete the topics of this prefix; return the names deleted.

    With a prefix, every topic under it goes (a worker's own topics too); without one, only
    the driftloop topics of ``TOPIC_SPECS``, never the rest of a shared broker.
    """
    present = await alist_topics(settings, all_topics=not settings.kafka.topic_prefix)
    doomed = topics_to_delete(settings, present)
    if not doomed:
        return []
    try:
        async with _admin(settings) as admin:
            response = await admin.delete_topics(doomed, timeout_ms=30_000)
            failed = [f"{name}: error code {code}"
                      for name, code, *_ in response.topic_error_codes
                      if code not in (0, _UNKNOWN_TOPIC)]  # gone already: what was wanted
            if failed:
                raise TopicsError("the broker refused to delete: " + "; ".join(failed))
            await _wait_until_gone(admin, doomed)
    except KafkaError as exc:
        raise TopicsError(f"cannot delete topics on {settings.kafka.bootstrap_servers}: "
                          f"{exc}") from exc
    return doomed


def topics_to_delete(settings: Settings, present: list[str]) -> list[str]:
    """Which of the ``present`` topics :func:`adelete_topics` removes.

    >>> topics_to_delete(Settings(), ["feedback", "orders", "__consumer_offsets"])
    ['feedback']
    >>> topics_to_delete(Settings(kafka={"topic_prefix": "t1."}), ["t1.feedback", "t1.x", "t2.x"])
    ['t1.feedback', 't1.x']
    """
    prefix = settings.kafka.topic_prefix
    if not prefix:
        wanted = set(topic_names(settings))
        return [name for name in present if name in wanted]
    return [name for name in present if name.startswith(prefix)]


def create_topics(settings: Settings, *, partitions: int | None = None) -> list[str]:
    """Synchronous :func:`acreate_topics`, callable with or without a running event loop."""
    return run_sync(acreate_topics(settings, partitions=partitions))


def list_topics(settings: Settings, *, all_topics: bool = False) -> list[str]:
    """Synchronous :func:`alist_topics`."""
    return run_sync(alist_topics(settings, all_topics=all_topics))


def delete_topics(settings: Settings) -> list[str]:
    """Synchronous :func:`adelete_topics`."""
    return run_sync(adelete_topics(settings))


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion from synchronous code.

    With no loop running, a private loop is used (the thread's current loop, which pytest or
    an application may own, is left alone); inside a running loop, a helper thread runs it.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        loop = asyncio.new_event_loop()
        try:
            return loop.run_until_complete(coro)
        finally:
            loop.close()
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()

