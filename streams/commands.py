"""What the worker makes of commands: its clock's ticks and its reading of ``model-versions``.

The command contract (the type, the ``driftloop-command`` header, the size limits, encode and
decode) is :mod:`driftloop.schemas.commands`; this module holds the worker's side of it.
"""

from __future__ import annotations

import time
import uuid

import orjson

from ..schemas.codec import encode
from ..schemas.commands import (
    COMMAND_HEADER,
    Command,
    decode_command,
    encode_command,
)
from ..schemas.enums import CommandKind, VersionStatus
from ..schemas.events import ModelVersion

# The contract is re-exported for the worker modules that import it from here, and so that
# table state pickled while ``Command`` lived here (``driftloop.streams.commands.Command``)
# still loads from a changelog.
__all__ = ["COMMAND_HEADER", "Command", "clock_tick", "commands_from_version",
           "decode_command", "encode_command"]


def clock_tick(task: str, *, now: float | None = None) -> Command:
    """The worker clock's nudge: check ``task``'s time-based triggers now.

    Sent through the task's partition so the worker that owns the task's state checks
    them, in order with its events. Ticks are not remembered as applied commands: a
    repeated tick only checks again, and the trigger's own state decides.

    >>> clock_tick("sentiment", now=5.0).kind
    <CommandKind.TICK: 'tick'>
    """
    ts = time.time() if now is None else now
    return Command(id=f"tick-{uuid.uuid4().hex}", task=task, kind=CommandKind.TICK, ts=ts)


def commands_from_version(version: ModelVersion, *, challenge_min_score: float | None,
                          candidates: bool = False) -> list[Command]:
    """What a ``model-versions`` entry means for the worker: a new parent, failed challenges,
    with ``candidates`` (A/B tests on) a candidate to test or the end of one, and, first,
    that the training request it came from was answered (whatever the status), so the
    task's next request may go.

    >>> event = ModelVersion(version_id="v2", ts=1.0, task="t", base_model="m",
    ...                      adapter_uri="file:///a/v2", sha256="0" * 64, size_bytes=1,
    ...                      status=VersionStatus.CANDIDATE)
    >>> [(c.kind.value, c.version, c.event["status"])
    ...  for c in commands_from_version(event, challenge_min_score=None, candidates=True)]
    [('candidate', 'v2', 'candidate')]
    """
    out = []
    if version.training_request_id is not None:
        out.append(Command(id=f"answered-{version.version_id}", task=version.task,
                           kind=CommandKind.ANSWERED, version=version.version_id,
                           ts=version.ts, request=version.training_request_id))
    if candidates and version.status is VersionStatus.CANDIDATE:
        out.append(Command(id=f"candidate-{version.version_id}", task=version.task,
                           kind=CommandKind.CANDIDATE, version=version.version_id, ts=version.ts,
                           event=orjson.loads(encode(version))))
    elif candidates and version.status in (VersionStatus.REJECTED, VersionStatus.ROLLED_BACK):
        out.append(Command(id=f"rejected-{_event_key(version)}", task=version.task,
                           kind=CommandKind.REJECTED, version=version.version_id, ts=version.ts,
                           reason=version.reason[:1000]))
    if version.status is VersionStatus.PROMOTED:
        out.append(Command(id=f"promoted-{_event_key(version)}", task=version.task,
                           kind=CommandKind.PROMOTED, version=version.version_id, ts=version.ts))
        score = version.metrics_after.get("challenge_score")
        if challenge_min_score is not None and score is not None and score < challenge_min_score:
            out.append(Command(id=f"challenge-{version.version_id}", task=version.task,
                               kind=CommandKind.CHALLENGE, version=version.version_id,
                               ts=version.ts,
                               reason=f"{version.version_id} challenge_score {score:.3f} < "
                                      f"{challenge_min_score}"))
    return out


def _event_key(version: ModelVersion) -> str:
    """One status event of a version: its id and the event's time. A version promoted again
    (a rollback to it, an operator's ``versions promote``) is a new event and a new command:
    with the version id alone the worker took it for one it had seen, and kept naming the
    rolled-back version as the parent of its next request. Relaying the same event twice
    gives the same key, so the worker still applies it once.

    >>> event = ModelVersion(version_id="v2", ts=1.5, task="t", base_model="m",
    ...                      adapter_uri="file:///a/v2", sha256="0" * 64, size_bytes=1,
    ...                      status=VersionStatus.PROMOTED)
    >>> _event_key(event), _event_key(event.with_status(VersionStatus.PROMOTED, ts=9.0))
    ('v2@1.5', 'v2@9.0')
    """
    return f"{version.version_id}@{version.ts!r}"
