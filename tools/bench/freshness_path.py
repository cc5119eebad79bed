"""One update's way from its trigger to the first answer of the version it made, in phases.

Every process stamps its part with the wall clock of one machine: the worker the training
request (``ts``: when the trigger fired), Kafka each record (``CreateTime``: when its
producer was handed it, so the delivery to the broker counts in the next phase), the learner
the version (``metadata.received_ts`` and the update's ``metadata.timings``, and ``ts`` when
the update ended), the replica its acknowledgement (``metadata.read_ts``, ``fetch_seconds``,
``load_seconds``), and the benchmark's client the first ``/predict`` answer that names the
version. :func:`update_path` turns those stamps into phases that add up to the whole.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ...learner.registry.version_log import RECEIVED_METADATA_KEY

__all__ = ["PHASES", "UpdatePath", "spread", "update_path"]

# In order; each is a span of the trigger -> first answer path (seconds).
PHASES: tuple[tuple[str, str], ...] = (
    ("request_publish", "worker: trigger fired -> request handed to its producer"),
    ("consume", "request sent -> learner took it (delivery, poll)"),
    ("prepare", "learner: version log, attempt ledger"),
    ("fetch_parent", "parent adapter fetched and checked"),
    ("score_parent", "parent scored for the gate"),
    ("train", "LoRA training"),
    ("gate", "candidate scored, the gate's tests"),
    ("store", "adapter written to the store"),
    ("update_other", "the rest of the update (models built, base lent)"),
    ("publish", "update ended -> version sent"),
    ("subscribe", "version sent -> replica read it"),
    ("fetch", "replica: adapter fetched and checked"),
    ("load", "replica: PEFT load"),
    ("switch", "loaded -> first /predict answer by it"),
)

# Timings of the update that are phases of their own (the rest is "update_other").
_UPDATE_PHASES = {"fetch_parent": "fetch_parent_seconds", "score_parent": "score_parent_seconds",
                  "train": "train_seconds", "gate": "score_candidate_seconds",
                  "store": "store_seconds"}


@dataclass(frozen=True, slots=True)
class UpdatePath:
    """The phases of one promoted update, and the whole path (seconds)."""

    version_id: str
    total: float
    """Trigger fired -> first answer by the version."""
    phases: dict[str, float] = field(default_factory=dict)
    update: float = 0.0
    """The learner's update alone (``timings.update_seconds``): the work the path carries."""
    examples: int = 0


def update_path(*, request: Any, request_sent: float, version: Any, version_sent: float,
                ack: Any, first_answer: float) -> UpdatePath:
    """The phases of one update from its events' stamps (wall-clock seconds).

    ``request`` and ``version`` are the ``TrainingRequest`` and ``ModelVersion`` events,
    ``request_sent`` and ``version_sent`` their Kafka records' timestamps, ``ack`` the
    replica's ``ServingAck`` of the version, ``first_answer`` when the first ``/predict``
    answer naming the version came back.

    Examples
    --------
    >>> from types import SimpleNamespace as E
    >>> timings = {"update_seconds": 2.0, "fetch_parent_seconds": 0.05,
    ...            "score_parent_seconds": 0.2, "train_seconds": 1.4,
    ...            "score_candidate_seconds": 0.2, "store_seconds": 0.05}
    >>> path = update_path(
    ...     request=E(ts=100.0, examples=[0] * 128), request_sent=100.01,
    ...     version=E(version_id="v1", ts=102.2, metadata={"received_ts": 100.1,
    ...                                                    "timings": timings}),
    ...     version_sent=102.25,
    ...     ack=E(metadata={"read_ts": 102.3, "fetch_seconds": 0.01, "load_seconds": 0.04}),
    ...     first_answer=102.36)
    >>> round(path.total, 2), round(sum(path.phases.values()), 2)
    (2.36, 2.36)
    >>> {k: round(v, 2) for k, v in path.phases.items() if k in ("consume", "prepare", "load")}
    {'consume': 0.09, 'prepare': 0.1, 'load': 0.03}
    """
    timings: Mapping[str, float] = version.metadata.get("timings", {})
    update = float(timings.get("update_seconds", 0.0))
    received = float(version.metadata.get(RECEIVED_METADATA_KEY, request_sent))
    update_started = version.ts - update
    read = float(ack.metadata.get("read_ts", version_sent))
    fetch = float(ack.metadata.get("fetch_seconds", 0.0))
    load = float(ack.metadata.get("load_seconds", 0.0))
    phases = {"request_publish": request_sent - request.ts, "consume": received - request_sent,
              "prepare": update_started - received}
    for phase, key in _UPDATE_PHASES.items():
        phases[phase] = float(timings.get(key, 0.0))
    phases["update_other"] = update - sum(phases[p] for p in _UPDATE_PHASES)
    phases |= {"publish": version_sent - version.ts, "subscribe": read - version_sent,
               "fetch": fetch, "load": load - fetch, "switch": first_answer - (read + load)}
    return UpdatePath(version.version_id, first_answer - request.ts, phases, update,
                      len(request.examples))


def spread(values: Sequence[float]) -> dict[str, float]:
    """Median, p95 (nearest rank) and max of ``values``.

    >>> spread([1.0, 2.0, 3.0, 4.0])
    {'p50': 2.5, 'p95': 4.0, 'max': 4.0}
    """
    ordered = sorted(values)
    rank = min(len(ordered) - 1, max(0, -(-95 * len(ordered) // 100) - 1))
    return {"p50": statistics.median(ordered), "p95": ordered[rank], "max": ordered[-1]}
