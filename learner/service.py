"""The learner process: consume ``training-requests``, publish ``model-versions``.

One request at a time: decode it, read the registry, skip it when its version is already
published (a re-read after a crash or a rebalance), else train, gate and store in a worker
thread (the event loop keeps the consumer's heartbeats going), publish the version event,
wait for the broker's acknowledgement and only then commit the request's offset. A request
that can never train (malformed, unknown parent, bad labels, an untrusted base model) becomes
a dead letter. Any other failure is retried, and each attempt is counted in the consumer
group's commits (:mod:`.attempts`), crashes included: after ``learner.max_attempts`` the
request is a dead letter (``training_failed``) and the learner goes on, so one poisoned
request cannot stop every task behind it. SIGTERM stops after the request in hand; nothing
half-done is committed.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import signal
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import ConsumerRecord, TopicPartition

from ..client.kafka import admin_client, new_consumer, new_producer
from ..schemas.codec import decode, encode
from ..schemas.enums import DeadLetterReason, VersionStatus
from ..schemas.errors import ValidationError
from ..schemas.events import DeadLetter, ModelVersion, TrainingRequest
from ..schemas.settings import Settings
from ..schemas.topics import TRAINING_REQUEST_MAX_BYTES, Topic
from .attempts import AttemptLedger, commit_owned, ensure_owned
from .coalesce import Coalesced, coalesce, coalesce_key, covered_requests
from .errors import LearnerError, ModelLoadError, PartitionMovedError, UntrustedModelError
from .gate.error_probes import grow_after_publish, grow_from_request
from .group import consumer_group
from .heartbeat import HEARTBEAT_FILE, Heartbeat
from .registry.examples import ExamplesRefError, with_referenced_examples
from .registry.version_log import (
    RECEIVED_METADATA_KEY,
    SUPERSEDED_METADATA_KEY,
    VersionLog,
    version_id_for,
)
from .topics.sites import offer_for, publish_offer
from .topics.versions import publish_versions, read_version_log
from .training.update import IncrementalUpdater, UpdateResult

__all__ = ["HOLD_BEFORE_PUBLISH_ENV", "LearnerService", "LearnerStats", "install_signal_handlers"]

log = logging.getLogger(__name__)

# Test hook: when set to a file path, the learner writes the version id there after storing
# the adapter and then waits, unpublished, so a test can kill it at the worst moment.
HOLD_BEFORE_PUBLISH_ENV = "DRIFTLOOP_LEARNER_HOLD_BEFORE_PUBLISH"
DEAD_LETTER_PAYLOAD_BYTES = 256 * 1024
# Room for the record framing around the largest request the topic accepts.
FETCH_BYTES = TRAINING_REQUEST_MAX_BYTES + 1024 * 1024


@dataclass(slots=True)
class LearnerStats:
    """What the process did, for logs, the bench and tests."""

    published: list[ModelVersion] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    dead_letters: int = 0
    failed_attempts: int = 0
    moved: int = 0  # requests whose partition went to another learner while in hand
    latencies: list[float] = field(default_factory=list)
    superseded: list[str] = field(default_factory=list)  # merged into a newer request

    @property
    def handled(self) -> int:
        return (len(self.published) + len(self.skipped) + self.dead_letters
                + len(self.superseded))


class LearnerService:
    """The ``driftloop learner`` loop.

    Parameters
    ----------
    settings
        Broker, topics, consumer group, learner and task settings.
    updater
        Does the training (built from the settings by default; pass one to share models).
    max_requests
        Stop after handling this many requests (None: run until stopped).
    """

    def __init__(self, settings: Settings, *, updater: IncrementalUpdater | None = None,
                 max_requests: int | None = None) -> None:
        self.settings = settings
        self.updater = updater or IncrementalUpdater(settings)
        self.max_requests = max_requests
        self.stats = LearnerStats()
        # Here, not at import: on an install without the learner extra, what is missing first
        # is torch, and the CLI's message must name the learner extra, not prometheus_client's.
        from .metrics import LearnerMetrics

        self.metrics = LearnerMetrics()
        self._stopping = asyncio.Event()
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        self._ledger: AttemptLedger | None = None
        self._lags: dict[TopicPartition, int] = {}

    def stop(self) -> None:
        """Ask the loop to stop after the request in hand (idempotent, signal-safe)."""
        self._stopping.set()

    def assignment(self) -> frozenset[TopicPartition]:
        """The request partitions this learner holds now (empty before it has joined)."""
        return frozenset(self._consumer.assignment()) if self._consumer is not None else frozenset()

    async def run(self) -> LearnerStats:
        """Consume until stopped (or ``max_requests`` handled); return the stats."""
        self._consumer = new_consumer(
            self.settings, self.settings.kafka.topic(Topic.TRAINING_REQUESTS),
            group_id=consumer_group(self.settings), auto_offset_reset="earliest",
            max_poll_records=1, max_poll_interval_ms=self.settings.learner.max_poll_interval_ms,
            fetch_max_bytes=FETCH_BYTES, max_partition_fetch_bytes=FETCH_BYTES)
        self._producer = new_producer(self.settings, enable_idempotence=True)
        heartbeat = Heartbeat(self.settings.learner.cache_dir / HEARTBEAT_FILE,
                              status=lambda: {"handled": self.stats.handled})
        cfg = self.settings.learner
        server = (self.metrics.serve(cfg.metrics_host, cfg.metrics_port)
                  if cfg.metrics_port is not None else None)
        try:
            if self.updater.start_processes():  # their imports overlap the group join
                log.info("data-parallel training processes starting (learner.data_parallel "
                         "= %d)", cfg.data_parallel)
            async with (self._producer, self._consumer, heartbeat,
                        admin_client(self.settings) as admin):
                self._ledger = AttemptLedger(self._consumer, admin,
                                             consumer_group(self.settings))
                await self._loop()
        finally:
            self.updater.close()  # data-parallel processes, if any
            if server is not None:
                server.shutdown()
                server.server_close()
        return self.stats

    async def _loop(self) -> None:
        assert self._consumer is not None
        while not self._stopping.is_set():
            if self.max_requests is not None and self.stats.handled >= self.max_requests:
                return
            batches = await self._consumer.getmany(timeout_ms=500, max_records=1)
            for tp, records in batches.items():
                for first in records:
                    record, merged = await self._coalesce(tp, first)
                    try:
                        if not await self._handle(record, merged):
                            return  # stopped while waiting to retry: nothing committed
                        # The effect (version or dead letter) is acknowledged: now the offset.
                        await commit_owned(self._consumer, tp, record.offset + 1)
                    except PartitionMovedError as exc:
                        # Its new owner reads it again from the last commit and handles it.
                        log.info("%s@%d left to the learner that took it over: %s",
                                 tp, record.offset, exc)
                        self.stats.moved += 1
                        continue
                    self._measure_lag(tp, record.offset + 1)

    def _measure_lag(self, tp: TopicPartition, position: int) -> None:
        assert self._consumer is not None
        end = self._consumer.highwater(tp)
        self._lags[tp] = max(0, end - position) if end is not None else 0
        self.metrics.queue_lag.set(sum(self._lags.values()))
        self.metrics.resident_models.set(len(self.updater.models.resident()))

    async def _coalesce(self, tp: TopicPartition,
                        first: ConsumerRecord) -> tuple[ConsumerRecord, Coalesced | None]:
        """``first`` and the requests queued right behind it on ``tp`` for the same task and
        domain, as one: the newest's record and the merged request (None: ``first`` alone).

        Only records the consumer has already fetched are looked at (nothing waits); the
        first one that cannot join (another task or domain, or unreadable) and everything
        after it are read again by the next poll (a seek back).
        """
        assert self._consumer is not None
        limit = self.settings.learner.coalesce_max
        if limit <= 1 or first.value is None:
            return first, None
        queued = (await self._consumer.getmany(tp, timeout_ms=0,
                                               max_records=limit - 1)).get(tp, [])
        if not queued:
            return first, None
        run = [first]
        requests = []
        run_key = None
        for record in (first, *queued):
            try:
                request = decode(record.value, TrainingRequest,
                                 max_bytes=TRAINING_REQUEST_MAX_BYTES) if record.value else None
            except ValidationError:
                request = None
            key = coalesce_key(request) if request is not None else None
            if key is None or (requests and key != run_key):
                break
            run_key = key
            requests.append(request)
            if record is not first:
                run.append(record)
        rest = queued[len(run) - 1:]
        if rest:
            self._consumer.seek(tp, rest[0].offset)
        if len(requests) < 2:
            return first, None
        covered = covered_requests((await read_version_log(self.settings)).versions())
        newest = requests[-1]
        # A request sent twice (a producer's retry) is one request; older ones already
        # trained (a re-read after a crash) add nothing.
        unique = {r.id: r for r in requests[:-1]
                  if (r.task, r.id) not in covered and r.id != newest.id}
        merged = coalesce([*unique.values(), newest], max_bytes=TRAINING_REQUEST_MAX_BYTES)
        merged = replace(merged, repeated=len(requests) - 1 - len(merged.superseded),
                         first_offset=first.offset)
        log.info("%s: %d queued request(s) of task %s superseded by %s (%d examples added, "
                 "%d over the byte bound dropped)", tp, len(requests) - 1,
                 requests[-1].task, requests[-1].id, merged.examples_added,
                 merged.examples_dropped)
        return run[-1], merged

    async def _handle(self, record: ConsumerRecord, merged: Coalesced | None = None) -> bool:
        """Handle one record (or the request ``merged`` into it); False when stopped before it
        was done (not to be committed)."""
        consumed = time.perf_counter()
        where = f"{record.topic}[{record.partition}]@{record.offset}"
        if merged is not None:
            done = await self._handle_request(record, merged.request, consumed, where,
                                              superseded=merged.superseded,
                                              first_offset=merged.first_offset)
            if done:
                self.stats.superseded.extend(merged.superseded)
                self.metrics.superseded.labels(task=merged.request.task).inc(
                    len(merged.superseded))
                # Records of requests already trained or sent twice: skipped, as alone.
                for _ in range(merged.repeated):
                    self.stats.skipped.append(version_id_for(
                        merged.request.task, merged.request.id,
                        deployment=self.settings.deployment_id))
                    self.metrics.update_ended(merged.request.task, "skipped", {})
            return done
        if record.value is None:
            log.warning("training request %s has no value (a tombstone?)", where)
            await self._dead_letter(record, DeadLetterReason.EMPTY,
                                    "message has no value (a tombstone?)")
            return True
        try:
            request = decode(record.value, TrainingRequest,
                             max_bytes=TRAINING_REQUEST_MAX_BYTES)
        except ValidationError as exc:
            log.warning("bad training request %s: %s", where, exc)
            await self._dead_letter(record, exc.code, str(exc))
            return True
        return await self._handle_request(record, request, consumed, where)

    def _grow_from_errors(self, request: TrainingRequest) -> None:
        """Grow the task's challenge suite from the real errors of a request published
        before, those of the examples it names by reference too (read again: an update
        checked them then)."""
        if (request.examples_ref is not None
                and self.settings.task(request.task).challenge_suite is not None):
            try:
                request = with_referenced_examples(
                    request, self.updater.store,
                    max_bytes=self.settings.learner.examples_ref_max_bytes)
            except ExamplesRefError:  # gone since it trained: the inline examples still grow it
                log.exception("the examples %s names by reference are unreadable now: its "
                              "challenge suite grows from the inline ones alone", request.id)
        grow_from_request(self.settings, request)

    async def _handle_request(self, record: ConsumerRecord, request: TrainingRequest,
                              consumed: float, where: str, *,
                              superseded: tuple[str, ...] = (),
                              first_offset: int | None = None) -> bool:
        versions = await read_version_log(self.settings)
        version_id = version_id_for(request.task, request.id,
                                    deployment=self.settings.deployment_id)
        if version_id in versions or (request.task, request.id) in covered_requests(
                versions.versions()):
            log.info("request %s (%s) already published as %s: skipping", request.id, where,
                     version_id)
            self._grow_from_errors(request)  # in case a crash came before it
            self.stats.skipped.append(version_id)
            self.metrics.update_ended(request.task, "skipped", {})
            return True
        log.info("training %s for request %s (%s)", version_id, request.id, where)
        outcome = await self._train(record, request, versions, first_offset)
        if not isinstance(outcome, UpdateResult):
            return outcome
        result = outcome
        # When the request reached this learner (wall clock): with the update's timings, the
        # version tells how long it queued here before training (``bench freshness``).
        metadata = {**result.event.metadata, RECEIVED_METADATA_KEY: round(
            time.time() - (time.perf_counter() - consumed), 4)}
        if superseded:  # a re-read after a crash skips them (:func:`.coalesce.covered_requests`)
            metadata[SUPERSEDED_METADATA_KEY] = list(superseded)
        result.event = result.event.model_copy(update={"metadata": metadata})
        await self._hold_if_asked(result.event)
        assert self._producer is not None and self._consumer is not None
        try:  # trained, but is it still ours to publish?
            ensure_owned(self._consumer, TopicPartition(record.topic, record.partition))
        except PartitionMovedError:
            self.metrics.update_ended(request.task, "moved", result.timings)
            raise
        await self._offer_to_federation(result.event)
        await publish_versions(self._producer, self.settings, result.events)
        latency = time.perf_counter() - consumed
        # The suite grows once published: a promotion's held-out parent errors, then the
        # request's real errors (any status), its referenced examples as the update read them.
        grow_after_publish(self.settings, result.request or request, result.challenge_additions)
        self.stats.published.append(result.event)
        self.stats.latencies.append(latency)
        self.metrics.update_ended(request.task, result.event.status.value, result.timings,
                                  published_in=latency)
        log.info("published %s (%s) %.2f s after consuming %s: %s", result.event.version_id,
                 result.event.status, latency, where, result.event.reason)
        self.metrics.second_look_ended(request.task, result.event.metadata.get("second_look"))
        for event in result.also:
            log.info("published %s (%s) on its second look: %s", event.version_id,
                     event.status, event.reason)
        return True

    async def _train(self, record: ConsumerRecord, request: TrainingRequest,
                     versions: VersionLog, first_offset: int | None = None
                     ) -> UpdateResult | bool:
        """Train ``request`` under the failure policy: the result, or True once it is a dead
        letter, or False when stopped before a retry.

        Every attempt is recorded in the group's commits first (:mod:`.attempts`), so a
        process that dies while training counts too. A request that cannot be trained as
        asked is a dead letter at once; any other exception is retried (after a backoff,
        out of memory first with half the batch) until ``learner.max_attempts``, then it is
        a dead letter with its traceback's tail. A base model that cannot be loaded at all
        ends the process (``ModelLoadError``, exit status 3).
        """
        assert self._ledger is not None
        cfg = self.settings.learner
        tp = TopicPartition(record.topic, record.partition)
        # Attempts are committed at the first record of a coalesced run, so that a learner
        # that dies while training reads (and coalesces) the whole run again.
        offset = record.offset if first_offset is None else first_offset
        note = await self._ledger.previous(tp, offset, request.id)
        batch_size: int | None = None
        while True:
            if note.attempt >= cfg.max_attempts:
                last = note.error or "the learner ended while training it (killed or crashed)"
                log.error("request %s failed %d times: dead letter", request.id, note.attempt)
                await self._dead_letter(record, DeadLetterReason.TRAINING_FAILED,
                                        f"{request.id}: {note.attempt} of {cfg.max_attempts} "
                                        f"attempts failed; the last: {last}")
                return True
            note = await self._ledger.begin(tp, offset, request.id, note)
            try:
                smaller = {} if batch_size is None else {"batch_size": batch_size}
                return await asyncio.to_thread(self.updater.update, request, versions,
                                               **smaller)
            except UntrustedModelError as exc:
                log.warning("request %s refused: %s", request.id, exc)
                await self._dead_letter(record, DeadLetterReason.UNTRUSTED_MODEL, str(exc))
                return True
            except ModelLoadError as exc:
                await self._ledger.failed(tp, offset, note, exc)
                raise  # infrastructure: the supervisor sees exit status 3
            except LearnerError as exc:
                if exc.retriable:
                    raise
                log.warning("request %s cannot be trained: %s", request.id, exc)
                await self._dead_letter(record, DeadLetterReason.UNTRAINABLE_REQUEST, str(exc))
                return True
            except (ValueError, TypeError, KeyError, IndexError) as exc:
                # Data the contract let through but training cannot read: the same every time.
                log.exception("request %s broke training", request.id)
                await self._dead_letter(record, DeadLetterReason.UNTRAINABLE_REQUEST,
                                        f"{type(exc).__name__}: {exc}")
                return True
            except Exception as exc:  # anything else may pass: retried, then a dead letter
                note = await self._ledger.failed(tp, offset, note, exc)
                self.stats.failed_attempts += 1
                self.metrics.failed_attempts.inc()
                if _out_of_memory(exc) and batch_size is None:
                    batch_size = max(cfg.batch_size // 2, 1)
                    log.warning("request %s ran out of memory (attempt %d): retrying with "
                                "batch size %d", request.id, note.attempt, batch_size)
                    continue
                log.exception("request %s failed (attempt %d of %d)", request.id, note.attempt,
                              cfg.max_attempts)
                if note.attempt < cfg.max_attempts and not await self._backoff(note.attempt):
                    return False

    async def _backoff(self, attempt: int) -> bool:
        """Wait before retry ``attempt + 1``; False when a stop was asked meanwhile."""
        delay = self.settings.learner.retry_backoff_s * 2 ** (attempt - 1)
        try:
            await asyncio.wait_for(self._stopping.wait(), delay)
        except TimeoutError:
            return True
        return False

    async def _offer_to_federation(self, event: ModelVersion) -> None:
        """A site's promoted adapter goes to ``site-adapters`` (reference and count only).

        Before the version event: a crash in between re-trains nothing (the version is not
        yet published) and offers the same adapter again, which the aggregator dedupes.
        """
        site = self.settings.learner.site
        if site is None or event.status is not VersionStatus.PROMOTED:
            return
        assert self._producer is not None
        offer = await asyncio.to_thread(offer_for, event, site, self.updater.store)
        await publish_offer(self._producer, self.settings, offer)
        log.info("offered %s to the federation as site %s (%d examples)", event.version_id,
                 site, offer.examples)

    async def _hold_if_asked(self, event: ModelVersion) -> None:
        marker = os.environ.get(HOLD_BEFORE_PUBLISH_ENV)
        if not marker:
            return
        Path(marker).write_text(event.version_id, encoding="utf-8")
        log.warning("%s is set: holding %s unpublished", HOLD_BEFORE_PUBLISH_ENV,
                    event.version_id)
        await asyncio.Event().wait()  # until the process is killed

    async def _dead_letter(self, record: ConsumerRecord, reason: DeadLetterReason,
                           error: str) -> None:
        assert self._producer is not None
        raw = record.value or b""
        letter = DeadLetter(
            ts=time.time(), source_topic=record.topic, partition=record.partition,
            offset=record.offset, reason=reason, error=error[:4096],
            payload_b64=base64.b64encode(raw[:DEAD_LETTER_PAYLOAD_BYTES]).decode(),
            payload_size=len(raw), truncated=len(raw) > DEAD_LETTER_PAYLOAD_BYTES,
            key_b64=base64.b64encode(record.key).decode() if record.key else None,
            consumer=consumer_group(self.settings))
        await self._producer.send_and_wait(self.settings.kafka.topic(Topic.DEAD_LETTERS),
                                           encode(letter), key=record.topic.encode())
        self.stats.dead_letters += 1
        key = record.key.decode(errors="replace") if record.key else ""
        # A label per configured task only: a key is whatever the producer wrote.
        self.metrics.update_ended(key if key in self.settings.tasks else "other",
                                  "dead_letter", {})


def install_signal_handlers(service: LearnerService) -> None:
    """SIGTERM and SIGINT stop the service gracefully (after the request in hand)."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, service.stop)



def _out_of_memory(exc: BaseException) -> bool:
    """CUDA's out-of-memory error (a RuntimeError subclass), the host's MemoryError, or a
    data-parallel training process that ran out of memory."""
    import torch

    return (isinstance(exc, (MemoryError, torch.cuda.OutOfMemoryError))
            or getattr(exc, "out_of_memory", False) is True)
