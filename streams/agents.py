"""The worker's wiring: its topics, tables, agents, timers, web pages and revoke hook.

One agent reads ``interactions`` and ``feedback`` (co-partitioned by task, so a task's state
lives in one partition) and hands each record to the :class:`~driftloop.streams.step.Step`,
which applies it and writes the tables (:mod:`~driftloop.streams.tables`). A second agent
turns ``model-versions`` entries into commands for the task's partition, and a timer sends
clock ticks (:mod:`~driftloop.streams.relay`). Another timer runs the stall watchdog
(:mod:`~driftloop.streams.watchdog`). ``/metrics`` and ``/health`` report the tasks this
worker owns (:mod:`~driftloop.streams.ownership`) and its liveness
(:mod:`~driftloop.streams.liveness`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import faust

from ..schemas.settings import Settings
from ..schemas.topics import TOPIC_SPECS, Topic
from .liveness import Liveness
from .metrics import CONTENT_TYPE, worker_page
from .ownership import Ownership
from .relay import CommandRelay
from .source_order import SourceOrder
from .step import Step
from .tables import WorkerTables
from .watchdog import StallWatchdog
from .write_gap import install_write_gap

__all__ = ["WorkerParts", "wire"]

_TOPICS = (Topic.INTERACTIONS, Topic.FEEDBACK, Topic.DRIFT_ALERTS, Topic.LABEL_REQUESTS,
           Topic.TRAINING_REQUESTS, Topic.DEAD_LETTERS, Topic.MODEL_VERSIONS)


@dataclass(frozen=True)
class WorkerParts:
    """What :func:`wire` put together on an app, each piece with one job."""

    topics: dict[Topic, faust.TopicT]
    tables: WorkerTables
    ownership: Ownership
    order: SourceOrder
    liveness: Liveness
    step: Step
    relay: CommandRelay
    watchdog: StallWatchdog


def _parts(app: faust.App, settings: Settings) -> WorkerParts:
    topics = {topic: app.topic(settings.kafka.topic(topic), key_serializer="raw",
                               value_serializer="raw", partitions=TOPIC_SPECS[topic].partitions)
              for topic in _TOPICS}
    tables = WorkerTables.create(app, settings)
    ownership = Ownership(app, settings)
    order = SourceOrder(settings, group_id=app.conf.id)
    liveness = Liveness()
    return WorkerParts(
        topics=topics, tables=tables, ownership=ownership, order=order, liveness=liveness,
        step=Step(settings, topics, tables, ownership, order, liveness, consumer_id=app.conf.id),
        relay=CommandRelay(settings, topics[Topic.FEEDBACK], tables, ownership, liveness),
        watchdog=StallWatchdog(app, settings, order, ownership, liveness))


def _agents(app: faust.App, settings: Settings, parts: WorkerParts) -> None:
    kafka = settings.kafka
    source = app.topic(kafka.topic(Topic.INTERACTIONS), kafka.topic(Topic.FEEDBACK),
                       key_serializer="raw", value_serializer="raw")

    @app.agent(source, name="driftloop.ingest")
    async def ingest(stream: faust.StreamT) -> None:
        async for event in stream.events():
            await parts.step.handle(event.message)

    @app.agent(parts.topics[Topic.MODEL_VERSIONS], name="driftloop.versions")
    async def versions(stream: faust.StreamT) -> None:
        async for value in stream:
            await parts.relay.forward_version(value)


def _timers(app: faust.App, settings: Settings, parts: WorkerParts) -> None:
    @app.timer(interval=max(1.0, settings.worker.stall_timeout_s / 4))
    async def watch_liveness() -> None:
        await parts.watchdog.check()

    every_s = settings.worker.triggers.every_s
    if every_s is not None:
        # A timed schedule must fire on an idle stream too: a tick per task, a few per period.
        @app.timer(interval=min(max(1.0, every_s / 4), 60.0))
        async def clock() -> None:
            await parts.relay.send_ticks()


def _pages(app: faust.App, parts: WorkerParts) -> None:
    @app.page("/metrics")
    async def metrics(web: Any, request: Any) -> Any:
        figures = parts.liveness.figures(app, parts.order)
        return web.text(worker_page(parts.tables, parts.ownership, figures),
                        content_type=CONTENT_TYPE)

    @app.page("/health")
    async def health(web: Any, request: Any) -> Any:
        return web.json({"status": "ok", **parts.liveness.figures(app, parts.order)})


def _on_revoke(app: faust.App, parts: WorkerParts) -> None:
    @app.on_partitions_revoked.connect
    async def on_revoked(sender: Any, revoked: Any, **kwargs: Any) -> None:
        # Tables will be rebuilt for the new assignment; the caches follow them.
        parts.tables.forget_joins()
        # A partition assigned again starts from the group's committed offset, not from
        # where this worker once was.
        parts.order.forget([(tp.topic, tp.partition) for tp in revoked])


def wire(app: faust.App, settings: Settings) -> WorkerParts:
    """Add the topics, tables, agents, timers and web pages of the worker to ``app``."""
    parts = _parts(app, settings)
    _agents(app, settings, parts)
    _timers(app, settings, parts)
    _pages(app, parts)
    _on_revoke(app, parts)
    if parts.tables.shared is not None:
        install_write_gap(parts.tables.shared.changelog_topic)  # a test hook, off unless set
    return parts
