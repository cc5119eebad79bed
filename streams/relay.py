"""The commands a worker sends itself: its clock's ticks, and what ``model-versions`` says.

A command goes through its task's partition of ``feedback``, so the worker that owns the
task's state applies it in order with the task's events (:mod:`driftloop.schemas.commands`
has the contract). Two sources inside the worker make commands: a timer, so a timed trigger
schedule fires on an idle stream too, and the learner's ``model-versions`` log, whose
entries set the next parent, report failed challenges and start or end canary comparisons
(:func:`~driftloop.streams.commands.commands_from_version`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from ..schemas.codec import decode
from ..schemas.commands import Command, encode_command
from ..schemas.errors import ValidationError
from ..schemas.events import ModelVersion
from ..schemas.settings import Settings
from ..schemas.signing import deployment_key, version_signature_ok
from .commands import clock_tick, commands_from_version
from .liveness import Liveness
from .ownership import Ownership
from .tables import WorkerTables

__all__ = ["CommandRelay"]

log = logging.getLogger(__name__)


@dataclass
class CommandRelay:
    """Sends the worker's own commands to ``feedback`` (a Faust topic, or anything with an
    async ``send(key=, value=, headers=)``).

    Examples
    --------
    >>> import asyncio
    >>> from driftloop.schemas import encode
    >>> class Topic:
    ...     def __init__(self): self.sent = []
    ...     async def send(self, *, key, value, headers): self.sent.append(key)
    >>> tables = WorkerTables(Settings(), states={}, buffers={}, buckets={}, dead_counts={},
    ...                       canaries={})
    >>> relay = CommandRelay(Settings(), Topic(), tables, Ownership(None, Settings()),
    ...                      Liveness())
    >>> asyncio.run(relay.forward_version(b"{not json"))  # logged, counted, skipped
    >>> relay.liveness.unreadable_versions
    1
    >>> tables.states["sentiment"] = tables.state("sentiment")
    >>> asyncio.run(relay.send_ticks()), relay.feedback.sent
    (1, [b'sentiment'])
    """

    settings: Settings
    feedback: Any
    tables: WorkerTables
    ownership: Ownership
    liveness: Liveness

    async def send_ticks(self) -> int:
        """A :func:`clock_tick` to each task this worker holds state of; returns how many.

        The tick goes through the task's partition, so the owner checks the triggers in
        order with its events. Only tasks whose partition this worker owns: the tables also
        hold standby copies and the state of partitions lost in a rebalance.
        """
        owned = self.ownership.owned(self.ownership.owned_partitions())
        tasks = [task for task, state in self.tables.states.items()
                 if state is not None and owned(task)]
        for task in tasks:
            await self._send(clock_tick(task))
        return len(tasks)

    async def forward_version(self, value: bytes) -> None:
        """The commands a ``model-versions`` entry means, sent; an unreadable entry, or one a
        signing deployment cannot verify, is logged, counted and skipped (the learner owns
        that log)."""
        try:
            version = decode(value, ModelVersion)
        except ValidationError as exc:
            self.liveness.unreadable_versions += 1
            log.error("unreadable model-versions entry skipped (%s): %s", exc.code, exc)
            return
        key = deployment_key(self.settings)
        if key is not None and not version_signature_ok(version, key):
            # A forged entry must not set a parent, start a canary or re-learn references.
            self.liveness.untrusted_versions += 1
            log.error("model-versions entry %s of task %s skipped: %s (trust.signing_key "
                      "is set)", version.version_id, version.task,
                      "unsigned" if version.signature is None else "wrong signature")
            return
        worker = self.settings.worker
        for command in commands_from_version(
                version, challenge_min_score=worker.triggers.challenge_min_score,
                candidates=worker.ab_test.enabled):
            await self._send(command)

    async def _send(self, command: Command) -> None:
        key, body, headers = encode_command(command)
        await self.feedback.send(key=key, value=body, headers=headers)
