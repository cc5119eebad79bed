"""The adapter subscriber: follows ``model-versions`` and hot-swaps what a replica serves.

:class:`AdapterSubscriber` puts four parts together, one idea each:

- :class:`~.feed.VersionFeed` reads the whole log from the beginning without a consumer
  group and folds it with the learner's version log;
- :mod:`.choice` says what each task should serve: the promoted head, the last promoted
  version after a rollback, the newest candidate for a canary;
- :class:`~.loader.AdapterLoader` fetches the adapter, verifies its sha256 and loads it
  into the host (an :class:`~.adapter_host.AdapterHost`: driftloop's :class:`ModelHost`, or
  :class:`~.push.PushHost` for another server), or says why it cannot (:mod:`.refusals`
  remembers it: the current version stays);
- :class:`~.served.ServedVersions` moves the served-version pointer in one assignment (the
  next request uses it, no request sees a mix) and keeps the previous ``keep_versions``
  loaded, so a rollback is a pointer move. A task with one adapter per domain has one more
  pointer per domain with a head; a request naming that domain follows it.

After catching up, each task's served version follows the log's head. Callbacks are told
"now serving version V" (and of refusals); each replica acknowledges on ``serving-acks``.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from aiokafka.errors import KafkaError

from ...schemas.events import ModelVersion, ServingAck
from ...schemas.settings import Settings
from ..errors import ServingError
from ..trust import Trust
from .acks import AckPublisher
from .adapter_host import AdapterHost
from .choice import domain_targets, newest_candidate, served_target
from .feed import VersionFeed
from .loader import AdapterLoader, LoadResult, serving_store
from .refusals import RefusedVersions
from .served import ServedVersions, ServingChange

__all__ = ["AdapterSubscriber"]

log = logging.getLogger(__name__)


Callback = Callable[[Any], Awaitable[None] | None]


class AdapterSubscriber:
    """Keeps a host (:class:`ModelHost`, or any :class:`AdapterHost`) serving each task's
    promoted version.

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
    >>> from driftloop.learner.serving.model_host import ModelHost
    >>> from driftloop.schemas.settings import Settings
    >>> subscriber = AdapterSubscriber(Settings(serving={"tasks": ["sentiment"]}),
    ...                                ModelHost(ResidentModels()), replica="pod-1")
    >>> subscriber.serving("sentiment") is None, subscriber.caught_up
    (True, False)
    >>> subscriber.route("sentiment", "request-1") is None
    True
    """

    def __init__(self, settings: Settings, host: AdapterHost, *, replica: str,
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
        self.store = serving_store(settings)
        self.feed = VersionFeed(settings)
        self.versions = self.feed.versions  # the folded log (the feed keeps this one object)
        self.loader = AdapterLoader(self.store, host, trust=Trust(settings))
        self.slots = ServedVersions(keep_versions=settings.serving.keep_versions,
                                    canary_fraction=settings.serving.canary_fraction)
        self.refusals = RefusedVersions()
        self.refused = self.refusals.reasons
        """Why each refused version was refused, by version id."""
        self.caught_up = False
        self.ack_failures = 0
        self._task: asyncio.Task[None] | None = None
        self._in_hand: asyncio.Future[None] | None = None  # the switch being made
        self._caught_up = asyncio.Event()

    # -- what a request reads ----------------------------------------------------------

    def serving(self, task: str, domain: str | None = None) -> str | None:
        """The version ``task`` is served with now (None before its first version); with
        ``domain``, the version answering that domain's requests."""
        return self.slots.serving(task, domain)

    def domains(self, task: str) -> dict[str, str]:
        """The domains of ``task`` answered by their own lineage's head, and that head."""
        return self.slots.domains(task)

    def candidate(self, task: str) -> str | None:
        """The canary candidate of ``task``, when canarying is on and one is loaded."""
        return self.slots.candidate(task)

    def served(self) -> dict[str, str]:
        """Every served task and its version."""
        return self.slots.served()

    def candidates(self) -> dict[str, str]:
        """Every task with a canary candidate loaded, and that candidate."""
        return self.slots.candidates()

    def route(self, task: str, request_id: str, domain: str | None = None) -> str | None:
        """The version answering one request (see :meth:`ServedVersions.route`)."""
        return self.slots.route(task, request_id, domain)

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    @property
    def bad_records(self) -> int:
        """Records of ``model-versions`` that were not a readable ModelVersion (skipped)."""
        return self.feed.bad_records

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Assign every partition of ``model-versions`` from offset 0 and start following."""
        if self._task is not None:
            return
        await self.feed.start()
        self._task = asyncio.create_task(self._follow(), name="driftloop-subscriber")

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
        """Stop following (idempotent); the served versions stay as they are. A switch in
        hand (load, evict, ack) is finished first, so what a replica serves is acked."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
        in_hand, self._in_hand = self._in_hand, None
        if in_hand is not None:
            try:
                await in_hand
            except Exception as exc:  # the follow loop would have raised it; stopping anyway
                log.error("the switch in hand when stopping failed: %s", exc)
        await self.feed.stop()

    async def __aenter__(self) -> AdapterSubscriber:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- the follow loop ---------------------------------------------------------------

    async def _follow(self) -> None:
        pending: dict[str, float] = {}
        while True:
            read_at, events = await self.feed.read()
            for event in events:
                if not self.tasks or event.task in self.tasks:
                    pending.setdefault(event.task, read_at)
            if await self.feed.behind():
                continue  # a fresh replica loads only the heads, not every past version
            for task, first_read in list(pending.items()):
                del pending[task]
                # Shielded: stop() cancels the loop, never a switch half made.
                self._in_hand = asyncio.ensure_future(self._reconcile(task, first_read))
                await asyncio.shield(self._in_hand)
                self._in_hand = None
            if not self._caught_up.is_set():
                self.caught_up = True
                self._caught_up.set()
                log.info("subscriber caught up: serving %s", self.served() or "nothing yet")

    async def _reconcile(self, task: str, read_at: float) -> None:
        current = self.slots.serving(task)
        target = served_target(self.versions, task, current, self.refusals)
        if target is not None and target.version_id != current:
            await self._switch(task, target, current, read_at)
        for domain, head in domain_targets(self.versions, task, self.slots.domains(task),
                                           self.refusals).items():
            await self._switch_domain(task, domain, head, read_at)
        if self.slots.canary_fraction > 0:
            await self._follow_candidate(task)

    async def _switch(self, task: str, event: ModelVersion, current: str | None,
                      read_at: float) -> None:
        # The swap on the host's thread right after the load, before the forward passes
        # queued behind it (they follow the serving version): no stale pass in between.
        loaded = await self.loader.load(
            event, then=lambda: self.slots.promote(task, event.version_id))
        if loaded.refused is not None:
            await self._refuse(event, loaded.refused, current)
            return
        self.slots.promote(task, event.version_id)  # the atomic swap: next request uses it
        await self._served(event, current, loaded, read_at, domain=None)

    async def _switch_domain(self, task: str, domain: str, event: ModelVersion | None,
                             read_at: float) -> None:
        """Answer ``domain``'s requests with its lineage's head ``event`` (None: with the
        task's version again), loaded first; a refused head leaves the domain as it is."""
        current = self.slots.serving(task, domain)
        if event is None:
            self.slots.drop_domain(task, domain)
            await self.loader.keep_only(task, self.slots.kept(task))
            log.info("%s: domain %s has no head any more, served by %s", task, domain,
                     self.slots.serving(task))
            return
        loaded = await self.loader.load(event)
        if loaded.refused is not None:
            await self._refuse(event, loaded.refused, current)
            return
        self.slots.promote_domain(task, domain, event.version_id)
        await self._served(event, current, loaded, read_at, domain=domain)

    async def _served(self, event: ModelVersion, current: str | None, loaded: LoadResult,
                      read_at: float, *, domain: str | None) -> None:
        """After a swap to ``event`` (the task's version, or ``domain``'s head): drop what
        is no longer kept, then acknowledge and tell the listeners."""
        task = event.task
        await self.loader.keep_only(task, self.slots.kept(task))
        change = ServingChange(task, event.version_id, current,
                               event.reason or event.status.value, read_at, loaded.seconds,
                               loaded.fetch_seconds, domain=domain)
        serves = task if domain is None else f"{task} domain {domain}"
        log.info("%s: serving %s (was %s): %s", serves, event.version_id, current, change.reason)
        await self._ack(change.ack(self.replica))
        await _notify(self.on_serving, change)

    async def _follow_candidate(self, task: str) -> None:
        newest = newest_candidate(self.versions, task)
        if newest is None or newest in self.refusals:
            if self.slots.set_candidate(task, None):
                await self.loader.keep_only(task, self.slots.kept(task))
            return
        if self.slots.candidate(task) == newest.version_id:
            return
        loaded = await self.loader.load(newest)
        if loaded.refused is not None:
            await self._refuse(newest, loaded.refused, self.slots.serving(task), ack=False)
            return
        self.slots.set_candidate(task, newest.version_id)
        await self.loader.keep_only(task, self.slots.kept(task))

    async def _refuse(self, event: ModelVersion, reason: str, current: str | None, *,
                      ack: bool = True) -> None:
        refusal = self.refusals.add(event, reason, serving=current)
        log.error("%s: refused %s, still serving %s: %s", event.task, event.version_id,
                  current, reason)
        if ack:
            await self._ack(refusal.ack(self.replica))
        await _notify(self.on_refused, refusal)

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


async def _notify(callbacks: list[Callback], value: Any) -> None:
    for callback in callbacks:
        try:
            result = callback(value)
            if inspect.isawaitable(result):
                await result
        except Exception:
            # A broken observer must not stop the subscriber from following versions.
            log.exception("serving callback %r failed", callback)
