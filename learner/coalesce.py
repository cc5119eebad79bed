"""A backlog of training requests, coalesced: the newest of a task and domain supersedes.

When triggers fire faster than updates finish, requests for one task queue up behind the
update in hand, and each would train on a snapshot of the worker's buffer older than the
next. The learner takes the queued requests of the same task, kind and domain that follow
one another on a partition, trains once on the newest, and adds the older ones' examples it
does not already carry (newest first, within the topic's byte bound). The version names
the requests it superseded (``metadata["superseded"]``), so a re-read after a crash skips
them as it skips a published request.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import orjson

from ..schemas.codec import encode
from ..schemas.events import ModelVersion, TrainingExample, TrainingRequest
from .errors import TrainingRequestError
from .registry.version_log import SUPERSEDED_METADATA_KEY, trained_requests

__all__ = ["Coalesced", "coalesce", "coalesce_key", "covered_requests"]


def coalesce_key(request: TrainingRequest) -> tuple[object, ...] | None:
    """What two requests must share to be merged (None: this one is never merged).

    >>> request = TrainingRequest(id="r", ts=0, task="t", trigger="drift", examples=[
    ...     {"input": "a", "target": "x", "domain": "movies"}])
    >>> coalesce_key(request)[:3]
    ('t', 'classification', 'movies')
    """
    # Here, not at import: the service imports this module before torch, and the message
    # of a base install without the learner extra must come from torch's absence.
    from .training.transfer import request_domain

    if request.examples_ref is not None:  # examples in the store: trained as it is
        return None
    try:
        domain = request_domain(request)
    except TrainingRequestError:  # new examples of several domains: trained as it is
        return None
    labels = tuple(request.labels) if request.labels is not None else None
    return (request.task, request.task_kind.value, domain, request.prompt_template_id, labels,
            request.parent_version)


@dataclass(frozen=True, slots=True)
class Coalesced:
    """One request to train in place of several: the merged request and what it dropped."""

    request: TrainingRequest
    superseded: tuple[str, ...]
    examples_added: int
    examples_dropped: int
    repeated: int = 0
    """Records folded in that superseded nothing: the same request again, or one trained."""
    first_offset: int | None = None
    """Offset of the run's first record, where the learner counts the update's attempts."""


def _example_key(example: TrainingExample) -> tuple[str, str, str | None]:
    return example.input, example.target, example.interaction_id


def coalesce(requests: Sequence[TrainingRequest], *, max_bytes: int) -> Coalesced:
    """Merge queued requests (oldest first, one :func:`coalesce_key`) into the newest.

    The newest keeps its id, trigger, parent and examples; the older ones' examples it lacks
    are added newest first while the encoded request stays within ``max_bytes``.

    Examples
    --------
    >>> def request(i, *texts):
    ...     return TrainingRequest(id=f"r{i}", ts=i, task="t", trigger="drift", examples=[
    ...         {"input": text, "target": "x"} for text in texts])
    >>> merged = coalesce([request(1, "a", "b"), request(2, "b", "c")], max_bytes=2**20)
    >>> merged.request.id, [e.input for e in merged.request.examples], merged.superseded
    ('r2', ['b', 'c', 'a'], ('r1',))
    """
    if not requests:
        raise ValueError("nothing to coalesce")
    newest = requests[-1]
    if len(requests) == 1:
        return Coalesced(newest, (), 0, 0)
    examples = list(newest.examples)
    seen = {_example_key(e) for e in examples}
    size = len(encode(newest)) + 256  # room for the superseded ids in the metadata
    added = dropped = 0
    for older in reversed(requests[:-1]):
        for example in older.examples:
            key = _example_key(example)
            if key in seen:
                continue
            seen.add(key)
            cost = len(orjson.dumps(example.model_dump(mode="json", exclude_defaults=True))) + 1
            if size + cost > max_bytes:
                dropped += 1
                continue
            size += cost
            examples.append(example)
            added += 1
    superseded = tuple(r.id for r in requests[:-1])
    metadata = {**newest.metadata, SUPERSEDED_METADATA_KEY: list(superseded)}
    merged = newest.model_copy(update={"examples": examples, "metadata": metadata})
    return Coalesced(merged, superseded, added, dropped)


def covered_requests(versions: Iterable[ModelVersion]) -> set[tuple[str, str]]:
    """``(task, request id)`` of the requests the published versions trained: their own and
    those they superseded (two tasks may use one request id).

    >>> covered_requests([])
    set()
    """
    return {(event.task, i) for event in versions for i in trained_requests(event)}
