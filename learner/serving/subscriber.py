"""The adapter subscriber: follows ``model-versions`` and hot-swaps what a replica serves.

It reads the topic from the beginning without a consumer group (every replica needs the
whole log, and a fresh replica must converge to the current promoted version), folds it
with the learner's :class:`~driftloop.learner.registry.version_log.VersionLog`, and after
catching up keeps each task's served version equal to the log's promoted head:

- the adapter is fetched from the content-addressed store, its sha256 verified, and loaded
  into the :class:`ModelHost` under its version name; the served-version pointer then moves
  in one assignment, so the next request uses it and no request sees a mix;
- the previous ``keep_versions`` stay loaded, so a rollback is a pointer move;
- a corrupt, missing or unservable artifact is refused (ack ``refused``) and the current
  version stays;
- with a canary fraction, the newest ``candidate`` of a task is loaded beside it.

Callbacks are told "now serving version V" (and of refusals); each replica acknowledges on
``serving-acks``.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import shutil
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from ...client.kafka import new_consumer, topic_partitions
from ...schemas.codec import decode
from ...schemas.enums import ServingStatus, VersionStatus
from ...schemas.errors import ValidationError
from ...schemas.events import ModelVersion, ServingAck
from ...schemas.settings import Settings
from ...schemas.topics import Topic
from ..errors import LearnerError, ServingError, UnservableAdapterError
from ..registry.store import ArtifactStore
from ..registry.version_log import VersionLog
from .acks import AckPublisher
from .model_host import ModelHost

__all__ = ["AdapterSubscriber", "ServingChange", "VersionRefusal"]

log = logging.getLogger(__name__)

SUPPORTED_FORMATS = frozenset({"peft-lora-safetensors"})


@dataclass(frozen=True, slots=True)
class ServingChange:
    """A task's served version moved (promotion, rollback, or the first version)."""

    task: str
    version_id: str
    previous_version: str | None
    reason: str
    event_read_at: float
    """``time.monotonic()`` when the event that caused it was read from the topic."""
    load_seconds: float


@dataclass(frozen=True, slots=True)
class VersionRefusal:
    """A version this replica would not load; it keeps serving ``serving``."""

    task: str
    version_id: str
    reason: str
    serving: str | None


Callback = Callable[[Any], Awaitable[None] | None]


class AdapterSubscriber:
    """Keeps a :class:`ModelHost` serving each task's promoted version.

    Parameters
    ----------
    settings
        Kafka, artifact store and ``serving`` settings (tasks, keep_versions, canary).
    host
        Where adapters are loaded.
    replica
        This replica's name in acknowledgements.
    acks
        Publishes acknowledgements; None publishes none (a library user with its own).
    on_serving, on_refused
        Called (sync or async) with a :class:`ServingChange` or :class:`VersionRefusal`.

    Examples
    --------
    >>> from driftloop.learner.models.resident import ResidentModels
    >>> from driftloop.schemas.settings import Settings
    >>> subscriber = AdapterSubscriber(Settings(serving={"tasks": ["sentiment"]}),
    ...                                ModelHost(ResidentModels()), replica="pod-1")
    >>> subscriber.serving("sentiment") is None, subscriber.caught_up
    (True, False)
    >>> subscriber.route("sentiment", "request-1") is None
    True
    """

    def __init__(self, settings: Settings, host: ModelHost, *, replica: str,
                 acks: AckPublisher | None = None,
                 on_serving: Iterable[Callback] = (),
                 on_refused: Iterable[Callback] = ()) -> None:
        if not replica:
            raise ValueError("replica must be a non-empty name")
        self.settings = settings
        self.host = host
        self.replica = replica
        self.acks = acks
        self.on_serving = list(on_serving)
        self.on_refused = list(on_refused)
        self.tasks = frozenset(settings.serving.tasks)
        self.keep_versions = settings.serving.keep_versions
        self.canary_fraction = settings.serving.canary_fraction
        self.store = ArtifactStore(settings.artifacts.store_url,
                                   allowed_schemes=settings.artifacts.allowed_schemes,
                                   max_bytes=settings.artifacts.max_artifact_bytes,
                                   cache_dir=_cache_dir(settings))
        self.versions = VersionLog()
        self.caught_up = False
        self.ack_failures = 0
        self.bad_records = 0
        """Records of ``model-versions`` that were not a readable ModelVersion (skipped)."""
        self.refused: dict[str, str] = {}
        # What was refused, by version: a corrected event (new artifact) is tried again.
        self._refused_artifacts: dict[str, tuple[str, str]] = {}
        self._serving: dict[str, str] = {}
        self._candidate: dict[str, str] = {}
        self._history: dict[str, deque[str]] = {}
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._caught_up = asyncio.Event()

    # -- what a request reads ----------------------------------------------------------

    def serving(self, task: str) -> str | None:
        """The version ``task`` is served with now (None before its first version)."""
        return self._serving.get(task)

    def candidate(self, task: str) -> str | None:
        """The canary candidate of ``task``, when canarying is on and one is loaded."""
        return self._candidate.get(task)

    def served(self) -> dict[str, str]:
        """Every served task and its version."""
        return dict(self._serving)

    def candidates(self) -> dict[str, str]:
        """Every task with a canary candidate loaded, and that candidate."""
        return dict(self._candidate)

    def route(self, task: str, request_id: str) -> str | None:
        """The version answering one request: the served one, or the candidate for the
        canary share (decided by a hash of the request id, so a retried request is stable).
        """
        candidate = self._candidate.get(task)
        if candidate is not None and _bucket(request_id) < self.canary_fraction:
            return candidate
        return self._serving.get(task)

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Assign every partition of ``model-versions`` from offset 0 and start following."""
        if self._task is not None:
            return
        topic = self.settings.kafka.topic(Topic.MODEL_VERSIONS)
        consumer = new_consumer(self.settings, fetch_max_wait_ms=self.settings.serving.poll_wait_ms)
        await consumer.start()
        try:
            partitions = (await topic_partitions(self.settings, topic, timeout=0)).get(topic)
            if not partitions:
                raise ServingError(f"topic {topic} does not exist "
                                   "(run `driftloop topics create`)")
            assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
            consumer.assign(assigned)
            await consumer.seek_to_beginning(*assigned)
            ends = await consumer.end_offsets(assigned)
        except BaseException:
            await consumer.stop()
            raise
        self._consumer = consumer
        self._task = asyncio.create_task(self._follow(ends), name="driftloop-subscriber")

    async def wait_caught_up(self, timeout: float = 30.0) -> None:
        """Wait until the log read at start is folded and its heads are served."""
        waiter = asyncio.ensure_future(self._caught_up.wait())
        done, _ = await asyncio.wait({waiter, self._task} if self._task else {waiter},
                                     timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        if self._task is not None and self._task in done and self._task.exception():
            raise self._task.exception()  # type: ignore[misc]
        if not self._caught_up.is_set():
            raise ServingError(f"subscriber did not catch up within {timeout:.0f} s")

    async def stop(self) -> None:
        """Stop following (idempotent); the served versions stay as they are."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await consumer.stop()

    async def __aenter__(self) -> AdapterSubscriber:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- the follow loop ---------------------------------------------------------------

    async def _follow(self, ends: dict[TopicPartition, int]) -> None:
        assert self._consumer is not None
        consumer = self._consumer
        behind = {tp for tp, end in ends.items() if end > 0}
        pending: dict[str, float] = {}
        while True:
            batches = await consumer.getmany(timeout_ms=self.settings.serving.poll_wait_ms)
            read_at = time.monotonic()
            for records in batches.values():
                for record in records:
                    try:
                        event = decode(record.value, ModelVersion)
                    except ValidationError as exc:
                        # No dead letters from here: every replica reads the whole log, so
                        # each would write its own copy. The learner's registry is the
                        # writer; a replica logs, counts and skips.
                        self.bad_records += 1
                        log.error("skipping unreadable model-versions record %s[%d]@%d (%s): "
                                  "%s", record.topic, record.partition, record.offset,
                                  exc.code, exc)
                        continue
                    self.versions.apply(event)
                    if not self.tasks or event.task in self.tasks:
                        pending.setdefault(event.task, read_at)
            if behind:
                for tp in list(behind):
                    if await consumer.position(tp) >= ends[tp]:
                        behind.discard(tp)
                if behind:
                    continue  # a fresh replica loads only the heads, not every past version
            for task, first_read in list(pending.items()):
                del pending[task]
                await self._reconcile(task, first_read)
            if not self._caught_up.is_set():
                self.caught_up = True
                self._caught_up.set()
                log.info("subscriber caught up: serving %s", self._serving or "nothing yet")

    async def _reconcile(self, task: str, read_at: float) -> None:
        head = self.versions.head(task)
        current = self._serving.get(task)
        target = head if head is not None and not self._is_refused(head) else None
        if target is None and current is not None and head is None:
            # Rolled back with nothing re-promoted: fall back to the newest version still
            # promoted, rather than keep serving a rolled-back one.
            if self.versions.get(current).status is VersionStatus.ROLLED_BACK:
                target = self._fallback(task, current)
        if target is not None and target.version_id != current:
            await self._switch(task, target, current, read_at)
        if self.canary_fraction > 0:
            await self._follow_candidate(task)

    def _fallback(self, task: str, current: str) -> ModelVersion | None:
        for version in reversed(self.versions.versions(task)):
            if (version.status is VersionStatus.PROMOTED and version.version_id != current
                    and not self._is_refused(version)):
                return version
        return None

    async def _switch(self, task: str, event: ModelVersion, current: str | None,
                      read_at: float) -> None:
        try:
            load_seconds = await self._ensure_loaded(event)
        except (LearnerError, OSError) as exc:
            await self._refuse(event, str(exc), current)
            return
        except Exception as exc:
            # A verified artifact that still breaks the loader (safetensors with a bad
            # header, a config PEFT chokes on): refuse it, never stop following versions.
            log.exception("%s: loading %s failed", task, event.version_id)
            await self._refuse(event, f"{type(exc).__name__}: {exc}", current)
            return
        self._serving[task] = event.version_id  # the atomic swap: next request uses it
        history = self._history.setdefault(task, deque())
        if event.version_id in history:
            history.remove(event.version_id)
        history.append(event.version_id)
        while len(history) > self.keep_versions:
            history.popleft()
        await self._evict(task)
        reason = event.reason or event.status.value
        log.info("%s: serving %s (was %s): %s", task, event.version_id, current, reason)
        change = ServingChange(task, event.version_id, current, reason, read_at, load_seconds)
        await self._ack(ServingAck(
            ts=time.time(), replica=self.replica, task=task, version_id=event.version_id,
            status=ServingStatus.SERVING, reason=reason, previous_version=current,
            metadata={"load_seconds": round(load_seconds, 4)}))
        await _notify(self.on_serving, change)

    async def _follow_candidate(self, task: str) -> None:
        newest = next((v for v in reversed(self.versions.versions(task))
                       if v.status is VersionStatus.CANDIDATE), None)
        if newest is None or self._is_refused(newest):
            if self._candidate.pop(task, None) is not None:
                await self._evict(task)
            return
        if self._candidate.get(task) == newest.version_id:
            return
        try:
            await self._ensure_loaded(newest)
        except (LearnerError, OSError) as exc:
            await self._refuse(newest, str(exc), self._serving.get(task), ack=False)
            return
        except Exception as exc:  # as in _switch: refused, the subscriber goes on
            log.exception("%s: loading candidate %s failed", task, newest.version_id)
            await self._refuse(newest, f"{type(exc).__name__}: {exc}", self._serving.get(task),
                               ack=False)
            return
        self._candidate[task] = newest.version_id
        await self._evict(task)

    async def _ensure_loaded(self, event: ModelVersion) -> float:
        if event.version_id in self.host.versions(event.task):
            return 0.0
        if event.format not in SUPPORTED_FORMATS:
            raise UnservableAdapterError(f"format {event.format!r} is not one of "
                                         f"{sorted(SUPPORTED_FORMATS)}")
        started = time.perf_counter()
        folder = await asyncio.to_thread(self.store.fetch, event.adapter_uri, event.sha256)
        try:
            await self.host.aload(event.task, event.version_id, folder, event.base_model)
        finally:
            # The weights are in memory now; the verified copy is not needed any more.
            shutil.rmtree(folder.parent, ignore_errors=True)
        return time.perf_counter() - started

    def _is_refused(self, event: ModelVersion) -> bool:
        return self._refused_artifacts.get(event.version_id) == (event.adapter_uri,
                                                                  event.sha256)

    async def _evict(self, task: str) -> None:
        keep = set(self._history.get(task, ()))
        keep.update(v for v in (self._serving.get(task), self._candidate.get(task)) if v)
        dropped = await self.host.aevict(task, keep)
        if dropped:
            log.info("%s: unloaded %s", task, ", ".join(dropped))

    async def _refuse(self, event: ModelVersion, reason: str, current: str | None, *,
                      ack: bool = True) -> None:
        self.refused[event.version_id] = reason
        self._refused_artifacts[event.version_id] = (event.adapter_uri, event.sha256)
        log.error("%s: refused %s, still serving %s: %s", event.task, event.version_id,
                  current, reason)
        if ack:
            await self._ack(ServingAck(
                ts=time.time(), replica=self.replica, task=event.task,
                version_id=event.version_id, status=ServingStatus.REFUSED, reason=reason,
                previous_version=current, metadata={"serving": current}))
        await _notify(self.on_refused, VersionRefusal(event.task, event.version_id, reason,
                                                      current))


    async def _ack(self, ack: ServingAck) -> None:
        if self.acks is None:
            return
        try:
            await self.acks.publish(ack)
        except KafkaError as exc:
            # The replica serves the version either way; a lost ack shows as "behind" to an
            # operator, which is better than a replica that stops following versions.
            self.ack_failures += 1
            log.error("could not publish the ack of %s for %s: %s", ack.version_id, ack.task,
                      exc)


def _bucket(request_id: str) -> float:
    """A stable number in [0, 1) for a request id (the canary split)."""
    import hashlib

    digest = hashlib.blake2b(request_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def _cache_dir(settings: Settings) -> Any:
    path = settings.serving.cache_dir
    path.mkdir(parents=True, exist_ok=True)
    return path


async def _notify(callbacks: list[Callback], value: Any) -> None:
    for callback in callbacks:
        try:
            result = callback(value)
            if inspect.isawaitable(result):
                await result
        except Exception:
            # A broken observer must not stop the subscriber from following versions.
            log.exception("serving callback %r failed", callback)
