"""A step written whole or not at all: the task state record carries what the rest of the step
writes, and a step a kill cut short is finished when the task is next read.

Why this holds: the worker's tables share one changelog topic (:mod:`.tables`), and a task's
values all go to one partition of it (the partition of the source record being applied), in
the order a step writes them. A producer sends a partition's records in order, one request at
a time, and the broker appends a request whole, so what reaches a partition before a kill -9
is a prefix of what was written to it. A step writes its task state first, holding a
:class:`StepRedo` (the buffer's changes since the buffer was last written, the join buckets the
step changed or deleted, the canary comparison if it changed), then those values. After a
kill, a partition holds every earlier step whole and, of the last step, either nothing (the
source record is applied again) or its state and some of its other values; :func:`finish`
then writes what is missing. The state record decides whether the step happened.

The step's effects (training and label requests, drift alerts, canary decisions) go to other
topics, so their order against the state record is not kept by Kafka: the step waits for the
broker to acknowledge them before it writes the state (:mod:`.step`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .buffer import BufferOp
from .canary import CanaryComparison
from .join import Bucket
from .state_codec import dumps

if TYPE_CHECKING:
    from .tables import WorkerTables

__all__ = ["StepRedo", "finish"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class StepRedo:
    """What step ``seq`` of a task wrote besides its state, enough to write it again.

    Examples
    --------
    >>> from driftloop.streams.buffer import LabeledExample
    >>> redo = StepRedo(7, buffer_ops=(("add", LabeledExample("good", "pos")),),
    ...                 deleted=("interactions:0:3",))
    >>> redo.seq, redo.empty, StepRedo(8).empty
    (7, False, True)
    """

    seq: int
    buffer_ops: tuple[BufferOp, ...] = ()
    buckets: Mapping[str, Bucket] = field(default_factory=dict)
    deleted: tuple[str, ...] = ()
    canary: CanaryComparison | None = None

    @property
    def empty(self) -> bool:
        return not (self.buffer_ops or self.buckets or self.deleted or self.canary is not None)


def finish(tables: WorkerTables, task: str, redo: StepRedo) -> list[str]:
    """Write whatever of step ``redo.seq`` is missing from the tables; what was written.

    Idempotent: the buffer is rebuilt only when its record is older than the step (its
    ``step_seq``), buckets and the canary comparison are written when they differ. Call it
    from inside a step of the task's partition (table writes go to the current record's
    partition), before the task's join window is built.
    """
    done: list[str] = []
    if redo.buffer_ops:
        buffer = tables.buffers.get(task)
        if buffer is None or buffer.step_seq < redo.seq:
            from .pipeline import new_buffer  # pipeline imports the tables' value types

            buffer = buffer if buffer is not None else new_buffer(tables.settings.worker)
            buffer.replay(redo.buffer_ops)
            buffer.take_journal()
            buffer.step_seq = redo.seq
            tables.buffers[task] = buffer
            done.append(f"buffer ({len(redo.buffer_ops)} changes)")
    rewritten = 0
    for key, bucket in redo.buckets.items():
        full = f"{task}|{key}"
        if _differs(tables.buckets.get(full), bucket):
            tables.buckets[full] = bucket
            rewritten += 1
    removed = 0
    for key in redo.deleted:
        full = f"{task}|{key}"
        if full in tables.buckets:
            del tables.buckets[full]
            removed += 1
    if rewritten or removed:
        done.append(f"join buckets ({rewritten} written, {removed} deleted)")
    if redo.canary is not None and _differs(tables.canaries.get(task), redo.canary):
        tables.canaries[task] = redo.canary
        done.append("canary comparison")
    if done:
        log.warning("task %s: step %d was cut short by a stop; finished it from its state "
                    "record: %s", task, redo.seq, ", ".join(done))
    return done


def _differs(stored: Any, wanted: Any) -> bool:
    """Whether the stored value is not the one the redo wants (by value, not identity).

    >>> from driftloop.streams.canary import CanaryComparison
    >>> _differs(CanaryComparison("t"), CanaryComparison("t")), _differs(None, 1)
    (False, True)
    """
    if stored is None:
        return True
    if type(stored).__eq__ is object.__eq__:  # no value equality: compare what is stored
        return dumps(stored) != dumps(wanted)
    try:
        return bool(stored != wanted)
    except (TypeError, ValueError):  # no usable equality (arrays): write again, idempotent
        return True
