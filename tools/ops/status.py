"""What is going on in a driftloop deployment: topics, consumer lag, versions, replicas.

Reads only: topic metadata and end offsets, the committed offsets of the worker's and the
learner's consumer groups, the ``model-versions`` log folded by the learner's registry, and
the serving replicas' latest acknowledgements on ``serving-acks``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import (
    CoordinatorLoadInProgressError,
    GroupCoordinatorNotAvailableError,
    KafkaError,
)
from aiokafka.structs import OffsetAndMetadata

from ...client.kafka import admin_client, new_consumer, topic_partitions
from ...learner.errors import RegistryError
from ...learner.group import consumer_group
from ...learner.serving.acks import latest_acks as task_acks
from ...learner.topics.versions import read_version_log
from ...schemas import ServingAck, Topic, ValidationError, decode
from ...schemas.enums import ServingStatus
from ...schemas.settings import Settings
from ...schemas.topics import TOPIC_SPECS
from ..kafka.topic_reader import read_snapshot
from .reviews import ReviewCounts, count_reviews

__all__ = ["GroupLag", "ReplicaState", "Status", "TopicStatus", "collect_status", "latest_acks"]


@dataclass(slots=True)
class TopicStatus:
    """One topic: its partitions and the end offset (records written so far) of each."""

    name: str
    end_offsets: dict[int, int]

    @property
    def partitions(self) -> int:
        return len(self.end_offsets)

    @property
    def records(self) -> int:
        return sum(self.end_offsets.values())


@dataclass(slots=True)
class GroupLag:
    """How far a consumer group is behind the end of the topics it committed offsets for."""

    group: str
    role: str
    lag: dict[str, int] = field(default_factory=dict)
    exists: bool = True
    members: int | None = None
    """Live members of the group (None: the broker did not say)."""

    @property
    def total(self) -> int:
        return sum(self.lag.values())


@dataclass(frozen=True, slots=True)
class ReplicaState:
    """The latest acknowledgement of one serving replica for one task."""

    replica: str
    version_id: str
    serving: bool
    ts: float
    reason: str = ""


@dataclass(slots=True)
class Status:
    """Everything ``driftloop status`` shows, JSON-ready through :meth:`to_dict`."""

    bootstrap_servers: str
    topic_prefix: str
    topics: list[TopicStatus]
    missing_topics: list[str]
    groups: list[GroupLag]
    promoted: dict[str, str]
    versions: int
    registry_error: str | None = None
    replicas: dict[str, list[ReplicaState]] = field(default_factory=dict)
    reviews: dict[str, ReviewCounts] = field(default_factory=dict)
    """Label requests per task: sent, answered by people, pending, median time to answer."""

    def converged(self, task: str) -> bool:
        """Every replica that acknowledged anything for ``task`` serves its promoted head."""
        states = self.replicas.get(task, [])
        head = self.promoted.get(task)
        return bool(states) and all(s.serving and s.version_id == head for s in states)

    def problems(self, *, max_lag: int) -> list[str]:
        """What an operator must look at, one line each; empty when all is well.

        A topic missing, a component whose group has committed offsets but no live member
        (it is not running), a group more than ``max_lag`` records behind, an unreadable
        registry. A group that never committed is a component not deployed yet, not down.

        >>> status = Status("b:9092", "", [], ["interactions"], [GroupLag(
        ...     "g", "worker", {"feedback": 50}, members=0)], {}, 0)
        >>> status.problems(max_lag=10)  # doctest: +NORMALIZE_WHITESPACE
        ['topic interactions is missing (run: driftloop topics create)',
         'worker g has no running member (is the worker down?)',
         'worker g is 50 records behind (more than 10)']
        """
        out = [f"topic {name} is missing (run: driftloop topics create)"
               for name in self.missing_topics]
        for group in self.groups:
            if group.exists and group.members == 0:
                out.append(f"{group.role} {group.group} has no running member "
                           f"(is the {group.role} down?)")
            if group.total > max_lag:
                out.append(f"{group.role} {group.group} is {group.total} records behind "
                           f"(more than {max_lag})")
        if self.registry_error:
            out.append(f"registry unreadable: {self.registry_error}")
        return out

    def to_dict(self) -> dict[str, object]:
        data = asdict(self)
        for topic, raw in zip(self.topics, data["topics"], strict=True):
            raw["partitions"], raw["records"] = topic.partitions, topic.records
        for group, raw in zip(self.groups, data["groups"], strict=True):
            raw["total"] = group.total
        for task, counts in self.reviews.items():
            data["reviews"][task]["pending"] = counts.pending
        return data


def watched_groups(settings: Settings) -> list[tuple[str, str]]:
    """(role, consumer group id) of the processes ``status`` reports on."""
    prefix = settings.kafka.topic_prefix
    return [("worker", f"{prefix}{settings.worker.app_id}"),
            ("learner", consumer_group(settings))]


async def _committed(admin: AIOKafkaAdminClient, group: str,
                     timeout: float = 30.0) -> dict[TopicPartition, OffsetAndMetadata]:
    """The group's committed offsets; waits out a coordinator that is still loading.

    On a broker that has never seen a consumer group, the first lookup creates the offsets
    topic and answers "coordinator not available" until it is ready.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await admin.list_consumer_group_offsets(group)
        except (GroupCoordinatorNotAvailableError, CoordinatorLoadInProgressError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)  # poll interval of the deadline-bound wait


async def _group_lag(admin: AIOKafkaAdminClient, role: str, group: str,
                     ends: dict[TopicPartition, int]) -> GroupLag:
    committed = await _committed(admin, group)
    result = GroupLag(group=group, role=role, exists=bool(committed),
                      members=await _members(admin, group))
    for tp, meta in committed.items():
        if tp in ends and meta.offset >= 0:
            result.lag[tp.topic] = result.lag.get(tp.topic, 0) + max(0, ends[tp] - meta.offset)
    return result


async def _members(admin: AIOKafkaAdminClient, group: str) -> int | None:
    """How many members the group has now (None when the broker's answer is unusable)."""
    try:
        responses = await admin.describe_consumer_groups([group])
    except KafkaError:
        return None
    for response in responses:
        for described in getattr(response, "groups", ()):
            # (error_code, group_id, state, protocol_type, protocol, members, ...)
            if len(described) > 5 and described[1] == group and not described[0]:
                return len(described[5])
    return None


def latest_acks(acks: Iterable[ServingAck]) -> dict[str, list[ReplicaState]]:
    """The latest ack of every (replica, task), per task, replicas sorted by name: the
    serving fold's (:func:`driftloop.learner.serving.latest_acks`, log order, which is what
    the compacted topic keeps; a domain's own head's ack, under ``adapter_per_domain``, is
    not the task's).

    The later record wins, even when the replica's clock stepped back in between:

    >>> acks = [ServingAck(ts=ts, replica="pod-1", task="t", version_id=v, status="serving")
    ...         for ts, v in ((2.0, "v1"), (1.0, "v2"))]
    >>> [(s.replica, s.version_id) for s in latest_acks(acks)["t"]]
    [('pod-1', 'v2')]
    """
    replicas: dict[str, list[ReplicaState]] = {}
    for (replica, task), ack in sorted(task_acks(acks).items()):
        replicas.setdefault(task, []).append(ReplicaState(
            replica=replica, version_id=ack.version_id, ts=ack.ts, reason=ack.reason,
            serving=ack.status is ServingStatus.SERVING))
    return replicas


async def _replicas(settings: Settings) -> dict[str, list[ReplicaState]]:
    """Latest ack per (replica, task) on ``serving-acks``, undecodable records skipped."""
    acks = []
    records = await read_snapshot(settings, settings.kafka.topic(Topic.SERVING_ACKS))
    for record in records:
        try:
            acks.append(decode(record.value or b"", ServingAck))
        except ValidationError:
            continue  # status reads; dead-lettering is the consumers' job
    return latest_acks(acks)


async def collect_status(settings: Settings) -> Status:
    """Gather the status of the deployment ``settings`` points at."""
    names = [settings.kafka.topic(topic) for topic in TOPIC_SPECS]
    partitions = await topic_partitions(settings, *names, timeout=0)
    tps = [TopicPartition(name, p) for name in names for p in sorted(partitions.get(name, ()))]
    ends: dict[TopicPartition, int] = {}
    if tps:
        async with new_consumer(settings) as consumer:
            ends = await consumer.end_offsets(tps)
    topics = [TopicStatus(name, {tp.partition: ends[tp] for tp in tps if tp.topic == name})
              for name in names if name in partitions]
    async with admin_client(settings) as admin:
        groups = [await _group_lag(admin, role, group, ends)
                  for role, group in watched_groups(settings)]
    promoted: dict[str, str] = {}
    versions, registry_error = 0, None
    try:
        log = await read_version_log(settings, timeout=30)
        versions = len(log.versions())
        for version in log.versions():
            head = log.head(version.task)
            if head is not None:
                promoted[version.task] = head.version_id
    except RegistryError as exc:
        registry_error = str(exc)
    return Status(
        replicas=await _replicas(settings),
        reviews=await count_reviews(settings),
        bootstrap_servers=settings.kafka.bootstrap_servers,
        topic_prefix=settings.kafka.topic_prefix,
        topics=topics,
        missing_topics=[name for name in names if name not in partitions],
        groups=groups,
        promoted=promoted,
        versions=versions,
        registry_error=registry_error,
    )
