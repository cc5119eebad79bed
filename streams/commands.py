"""Operator and registry commands for one task, carried on the ``feedback`` topic.

A command is a small JSON object in a message keyed by the task and marked with the header
``driftloop-command``. Riding on ``feedback`` (instead of a topic of its own) puts it in the
same partition as the task's state, in order with the task's feedback, so the worker that
owns the task applies it exactly where it owns the state. Kinds: ``trigger`` (an operator
asks for training now), ``challenge`` (a version failed its challenge prompts),
``promoted`` (a new current version, the parent of the next training), ``candidate`` (a
version for the A/B test, its ``model-versions`` event carried in ``event``),
``rejected`` (a version rejected or rolled back: an A/B test of it ends) and ``tick`` (the
worker's clock: time-based triggers are checked even when no event arrives).
"""

from __future__ import annotations

import math
import re
import time
import uuid
from dataclasses import asdict, dataclass
from typing import Any

import orjson

from ..schemas.codec import encode
from ..schemas.enums import VersionStatus
from ..schemas.events import ModelVersion
from ..schemas.fields import SLUG_PATTERN
from .errors import TriggerError

__all__ = ["COMMAND_HEADER", "COMMAND_KINDS", "MAX_COMMAND_BYTES", "MAX_EVENT_COMMAND_BYTES",
           "Command", "clock_tick", "commands_from_version", "decode_command", "encode_command",
           "manual_trigger"]

COMMAND_HEADER = "driftloop-command"
COMMAND_KINDS = ("trigger", "challenge", "promoted", "candidate", "rejected", "tick")
# A command is a few short fields; the feedback topic would carry 8 MiB.
MAX_COMMAND_BYTES = 64 * 1024
# A candidate command carries its version's event (metrics, metadata): the bound of the
# model-versions topic (the broker's default message size), not of a few short fields.
MAX_EVENT_COMMAND_BYTES = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Command:
    """One command for one task; ``id`` makes it idempotent (applied once per task)."""

    id: str
    task: str
    kind: str
    reason: str = ""
    version: str | None = None
    ts: float = 0.0
    event: dict[str, Any] | None = None
    """The ``model-versions`` event (JSON) of a ``candidate`` command."""

    def __post_init__(self) -> None:
        if self.kind not in COMMAND_KINDS:
            raise TriggerError(f"unknown command {self.kind!r}; valid: {', '.join(COMMAND_KINDS)}")
        if not self.task or not self.id:
            raise TriggerError("a command needs a task and an id")


def encode_command(command: Command) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    """Key, value and headers of the Kafka message that carries ``command``."""
    return (command.task.encode(), orjson.dumps(asdict(command)),
            [(COMMAND_HEADER, command.kind.encode())])


def decode_command(value: bytes | None) -> Command:
    """Read a command message; raises :class:`TriggerError` naming what is wrong.

    >>> key, value, headers = encode_command(manual_trigger("sentiment", reason="x", id="c1"))
    >>> decode_command(value).kind
    'trigger'
    """
    if value is not None and len(value) > MAX_EVENT_COMMAND_BYTES:
        raise TriggerError(f"command is {len(value)} bytes, limit is {MAX_EVENT_COMMAND_BYTES}")
    try:
        data: Any = orjson.loads(value or b"")
    except orjson.JSONDecodeError as exc:
        raise TriggerError(f"command is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise TriggerError("command must be a JSON object")
    if len(value or b"") > MAX_COMMAND_BYTES and data.get("kind") != "candidate":
        raise TriggerError(f"command is {len(value or b'')} bytes, limit is {MAX_COMMAND_BYTES}")
    fields = {k: v for k, v in data.items() if k in _FIELD_TYPES}
    # A command is applied to table state keyed by its task: a task that is not a name (a
    # list, a number) or a reason that is not text would crash the agent, not just this step.
    for name, value in fields.items():
        if not isinstance(value, _FIELD_TYPES[name]) or isinstance(value, bool):
            raise TriggerError(f"invalid command: {name} has the wrong type "
                               f"({type(value).__name__})")
    for name, limit in _MAX_CHARS.items():
        if len(fields.get(name) or "") > limit:
            raise TriggerError(f"invalid command: {name} is longer than {limit} characters")
    task = fields.get("task")
    if isinstance(task, str) and (len(task) > 128 or not _SLUG.match(task)):
        raise TriggerError(f"invalid command: task {task[:40]!r} is not a task name")
    ts = fields.get("ts", 0.0)
    if not math.isfinite(ts) or ts < 0:
        raise TriggerError(f"invalid command: ts {ts!r} is not a time")
    try:
        return Command(**fields)
    except TypeError as exc:
        raise TriggerError(f"invalid command: {exc}") from None


_FIELD_TYPES: dict[str, Any] = {"id": str, "task": str, "kind": str, "reason": str,
                                "version": (str, type(None)), "ts": (int, float),
                                "event": (dict, type(None))}
_SLUG = re.compile(SLUG_PATTERN)
# Ids and reasons are kept in the task's state (and its changelog): bounded like event fields.
_MAX_CHARS = {"id": 256, "reason": 4096, "version": 256}


def manual_trigger(task: str, *, reason: str = "", id: str | None = None) -> Command:
    """An operator's request to train ``task`` now."""
    return Command(id=id or f"manual-{uuid.uuid4().hex}", task=task, kind="trigger",
                   reason=reason or "operator request", ts=time.time())


def clock_tick(task: str, *, now: float | None = None) -> Command:
    """The worker clock's nudge: check ``task``'s time-based triggers now.

    Sent through the task's partition so the worker that owns the task's state checks
    them, in order with its events. Ticks are not remembered as applied commands: a
    repeated tick only checks again, and the trigger's own state decides.

    >>> clock_tick("sentiment", now=5.0).kind
    'tick'
    """
    ts = time.time() if now is None else now
    return Command(id=f"tick-{uuid.uuid4().hex}", task=task, kind="tick", ts=ts)


def commands_from_version(version: ModelVersion, *, challenge_min_score: float | None,
                          candidates: bool = False) -> list[Command]:
    """What a ``model-versions`` entry means for the worker: a new parent, failed challenges,
    and with ``candidates`` (A/B tests on) a candidate to test or the end of one.

    >>> event = ModelVersion(version_id="v2", ts=1.0, task="t", base_model="m",
    ...                      adapter_uri="file:///a/v2", sha256="0" * 64, size_bytes=1,
    ...                      status="candidate")
    >>> [(c.kind, c.version, c.event["status"])
    ...  for c in commands_from_version(event, challenge_min_score=None, candidates=True)]
    [('candidate', 'v2', 'candidate')]
    """
    out = []
    if candidates and version.status is VersionStatus.CANDIDATE:
        out.append(Command(id=f"candidate-{version.version_id}", task=version.task,
                           kind="candidate", version=version.version_id, ts=version.ts,
                           event=orjson.loads(encode(version))))
    elif candidates and version.status in (VersionStatus.REJECTED, VersionStatus.ROLLED_BACK):
        out.append(Command(id=f"rejected-{version.version_id}", task=version.task,
                           kind="rejected", version=version.version_id, ts=version.ts,
                           reason=version.reason[:1000]))
    if version.status is VersionStatus.PROMOTED:
        out.append(Command(id=f"promoted-{version.version_id}", task=version.task,
                           kind="promoted", version=version.version_id, ts=version.ts))
        score = version.metrics_after.get("challenge_score")
        if challenge_min_score is not None and score is not None and score < challenge_min_score:
            out.append(Command(id=f"challenge-{version.version_id}", task=version.task,
                               kind="challenge", version=version.version_id, ts=version.ts,
                               reason=f"{version.version_id} challenge_score {score:.3f} < "
                                      f"{challenge_min_score}"))
    return out
