"""Replica acknowledgements on ``serving-acks``: who serves which version of each task.

Each replica publishes a :class:`~driftloop.schemas.ServingAck` when it starts serving a
version or refuses one, keyed ``<replica>/<task>`` on a compacted topic: the latest ack per
key is what an operator reads to see whether every replica converged. A task with one adapter
per domain also acks each domain's head (``metadata.domain``), keyed
``<replica>/<task>/<domain>``: those never stand in for the task's own ack.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

from aiokafka import AIOKafkaProducer

from ...schemas.codec import decode, encode
from ...schemas.enums import ServingStatus
from ...schemas.errors import ValidationError
from ...schemas.events import ServingAck
from ...schemas.settings import Settings
from ...schemas.topics import Topic
from ..topics.versions import read_to_end

__all__ = ["AckPublisher", "ack_key", "converged", "latest_acks", "read_acks"]

log = logging.getLogger(__name__)


def ack_key(replica: str, task: str, domain: str | None = None) -> bytes:
    """The compaction key: one latest ack per replica and task (and domain, for a domain's
    own head).

    >>> ack_key("pod-1", "sentiment"), ack_key("pod-1", "sentiment", "movies")
    (b'pod-1/sentiment', b'pod-1/sentiment/movies')
    """
    return f"{replica}/{task}".encode() + (f"/{domain}".encode() if domain else b"")


class AckPublisher:
    """Publishes one replica's acks through a producer it does not own.

    Examples
    --------
    >>> from driftloop.schemas.settings import Settings
    >>> AckPublisher(producer=None, settings=Settings(), replica="pod-1").replica
    'pod-1'
    """

    def __init__(self, *, producer: AIOKafkaProducer | None, settings: Settings,
                 replica: str) -> None:
        if not replica:
            raise ValueError("replica must be a non-empty name")
        self.producer = producer
        self.topic = settings.kafka.topic(Topic.SERVING_ACKS)
        self.replica = replica

    async def publish(self, ack: ServingAck) -> None:
        """Send the ack and wait for the broker (an unseen ack converges nothing)."""
        if self.producer is None:
            raise RuntimeError("AckPublisher has no producer")
        await self.producer.send_and_wait(self.topic, encode(ack),
                                          key=ack_key(ack.replica, ack.task, ack.domain))


def latest_acks(acks: Iterable[ServingAck]) -> dict[tuple[str, str], ServingAck]:
    """The latest ack of each ``(replica, task)`` for the task's own version, in the order
    given (log order); a domain's head's ack says nothing of it.

    >>> task = ServingAck(ts=1.0, replica="a", task="t", version_id="v2", status="serving")
    >>> movies = task.model_copy(update={"version_id": "v3", "metadata": {"domain": "movies"}})
    >>> latest_acks([task, movies])[("a", "t")].version_id
    'v2'
    """
    latest: dict[tuple[str, str], ServingAck] = {}
    for ack in acks:
        if ack.domain is None:
            latest[(ack.replica, ack.task)] = ack
    return latest



async def read_acks(settings: Settings, *, timeout: float = 30.0,
                    skipped: list[str] | None = None) -> dict[tuple[str, str], ServingAck]:
    """Every replica's latest ack per task, read from ``serving-acks`` up to its end.

    A record that is not a readable ack is logged and skipped, never dead-lettered (a
    reader, not a consumer group: every reader would write its own copy); ``skipped``, when
    given, receives one ``topic[partition]@offset: reason`` line per such record.
    """
    acks = []
    for record in await read_to_end(settings, Topic.SERVING_ACKS, timeout=timeout):
        try:
            acks.append(decode(record.value, ServingAck))
        except ValidationError as exc:
            where = f"{record.topic}[{record.partition}]@{record.offset}"
            log.error("skipping unreadable ack %s (%s): %s", where, exc.code, exc)
            if skipped is not None:
                skipped.append(f"{where}: {exc}")
    return latest_acks(acks)


def converged(latest: Mapping[tuple[str, str], ServingAck], task: str, version_id: str,
              replicas: Iterable[str]) -> bool:
    """Whether every named replica's latest ack for ``task`` says it serves ``version_id``.

    >>> ack = ServingAck(ts=1.0, replica="a", task="t", version_id="v2", status="serving")
    >>> converged({("a", "t"): ack}, "t", "v2", ["a"]), converged({("a", "t"): ack}, "t", "v2",
    ...                                                             ["a", "b"])
    (True, False)
    """
    for replica in replicas:
        ack = latest.get((replica, task))
        if ack is None or ack.status is not ServingStatus.SERVING or ack.version_id != version_id:
            return False
    return True
