"""The command contract: operator and registry commands for one task, on the ``feedback`` topic.

A command is a small JSON object (``schemas/json/command.schema.json``) in a message keyed by
the task and marked with the header ``driftloop-command`` (its value the kind). Riding on
``feedback`` (instead of a topic of its own) puts it in the same partition as the task's
state, in order with the task's feedback, so the worker that owns the task applies it exactly
where it owns the state. Unlike an event it carries no ``schema_name``: the header marks it.
Kinds (:class:`~driftloop.schemas.enums.CommandKind`): ``trigger`` (an operator asks for
training now), ``challenge`` (a version failed its challenge prompts), ``promoted`` (a new
current version, the parent of the next training), ``candidate`` (a version for the A/B
test, its ``model-versions`` event carried in ``event``), ``rejected`` (a version rejected or
rolled back: an A/B test of it ends), ``tick`` (the worker's clock: time-based triggers
are checked even when no event arrives) and ``answered`` (the learner decided the training
request named in ``request``, whatever the version's status: the worker may send the next).

What a worker makes of a ``model-versions`` entry is the worker's business
(:func:`driftloop.streams.commands.commands_from_version`); this module is only the wire.

Examples
--------
>>> key, value, headers = encode_command(manual_trigger("sentiment", reason="x", id="c1"))
>>> key, headers
(b'sentiment', [('driftloop-command', b'trigger')])
>>> decode_command(value).kind
<CommandKind.TRIGGER: 'trigger'>
"""

from __future__ import annotations

import math
import re
import time
import uuid
from dataclasses import asdict, dataclass
from typing import Any

import orjson

from .enums import CommandKind
from .errors import CommandError
from .fields import SLUG_PATTERN

__all__ = ["COMMAND_HEADER", "MAX_COMMAND_BYTES", "MAX_EVENT_COMMAND_BYTES", "Command",
           "decode_command", "encode_command", "manual_trigger"]

COMMAND_HEADER = "driftloop-command"
# A command is a few short fields; the feedback topic would carry 8 MiB.
MAX_COMMAND_BYTES = 64 * 1024
# A candidate command carries its version's event (metrics, metadata): the bound of the
# model-versions topic (the broker's default message size), not of a few short fields.
MAX_EVENT_COMMAND_BYTES = 1024 * 1024
# A tuple, not a set: a kind of the wrong type (a list) is refused, not a TypeError.
_KINDS = tuple(CommandKind)


@dataclass(frozen=True, slots=True)
class Command:
    """One command for one task; ``id`` makes it idempotent (applied once per task).

    ``kind`` is read as a :class:`~driftloop.schemas.enums.CommandKind`; an unknown kind, an
    empty task or id raise :class:`~driftloop.schemas.errors.CommandError`.

    Examples
    --------
    >>> Command(id="c1", task="sentiment", kind="promoted", version="v2").kind
    <CommandKind.PROMOTED: 'promoted'>
    >>> Command(id="c1", task="sentiment", kind="explode")
    Traceback (most recent call last):
    ...
    driftloop.schemas.errors.CommandError: unknown command 'explode'; valid: trigger, ...
    """

    id: str
    task: str
    kind: CommandKind
    reason: str = ""
    version: str | None = None
    ts: float = 0.0
    event: dict[str, Any] | None = None
    """The ``model-versions`` event (JSON) of a ``candidate`` command."""
    request: str | None = None
    """The training request an ``answered`` command answers."""

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise CommandError(f"unknown command {self.kind!r}; "
                               f"valid: {', '.join(CommandKind)}")
        if not self.task or not self.id:
            raise CommandError("a command needs a task and an id")
        object.__setattr__(self, "kind", CommandKind(self.kind))


def encode_command(command: Command) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    """Key, value and headers of the Kafka message that carries ``command``."""
    body = asdict(command)
    if body["request"] is None:  # added later: commands without one keep their bytes
        del body["request"]
    return (command.task.encode(), orjson.dumps(body), [(COMMAND_HEADER, command.kind.encode())])


def decode_command(value: bytes | None) -> Command:
    """Read a command message; raises :class:`CommandError` naming what is wrong.

    >>> decode_command(b'{"id": "c1", "task": "sentiment", "kind": "tick", "ts": 5}').ts
    5
    >>> decode_command(b'{"id": "c1", "task": "sentiment"}')
    Traceback (most recent call last):
    ...
    driftloop.schemas.errors.CommandError: invalid command: ... missing ... 'kind'
    """
    if value is not None and len(value) > MAX_EVENT_COMMAND_BYTES:
        raise CommandError(f"command is {len(value)} bytes, limit is {MAX_EVENT_COMMAND_BYTES}")
    try:
        data: Any = orjson.loads(value or b"")
    except orjson.JSONDecodeError as exc:
        raise CommandError(f"command is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise CommandError("command must be a JSON object")
    if len(value or b"") > MAX_COMMAND_BYTES and data.get("kind") != CommandKind.CANDIDATE:
        raise CommandError(f"command is {len(value or b'')} bytes, limit is {MAX_COMMAND_BYTES}")
    fields = {k: v for k, v in data.items() if k in _FIELD_TYPES}
    # A command is applied to table state keyed by its task: a task that is not a name (a
    # list, a number) or a reason that is not text would crash the agent, not just this step.
    for name, value in fields.items():
        if not isinstance(value, _FIELD_TYPES[name]) or isinstance(value, bool):
            raise CommandError(f"invalid command: {name} has the wrong type "
                               f"({type(value).__name__})")
    for name, limit in _MAX_CHARS.items():
        if len(fields.get(name) or "") > limit:
            raise CommandError(f"invalid command: {name} is longer than {limit} characters")
    task = fields.get("task")
    # fullmatch: the pattern's ``$`` alone would let a final newline through, which the JSON
    # Schema (ECMA-262) and the events' task names refuse.
    if isinstance(task, str) and (len(task) > 128 or not _SLUG.fullmatch(task)):
        raise CommandError(f"invalid command: task {task[:40]!r} is not a task name")
    ts = fields.get("ts", 0.0)
    if not math.isfinite(ts) or ts < 0:
        raise CommandError(f"invalid command: ts {ts!r} is not a time")
    try:
        return Command(**fields)
    except TypeError as exc:
        raise CommandError(f"invalid command: {exc}") from None


_FIELD_TYPES: dict[str, Any] = {"id": str, "task": str, "kind": str, "reason": str,
                                "version": (str, type(None)), "ts": (int, float),
                                "event": (dict, type(None)), "request": (str, type(None))}
_SLUG = re.compile(SLUG_PATTERN)
# Ids and reasons are kept in the task's state (and its changelog): bounded like event fields.
_MAX_CHARS = {"id": 256, "reason": 4096, "version": 256, "request": 256}


def manual_trigger(task: str, *, reason: str = "", id: str | None = None) -> Command:
    """An operator's request to train ``task`` now.

    >>> manual_trigger("sentiment", id="c1").reason
    'operator request'
    """
    return Command(id=id or f"manual-{uuid.uuid4().hex}", task=task, kind=CommandKind.TRIGGER,
                   reason=reason or "operator request", ts=time.time())
