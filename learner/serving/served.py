"""Which version each task of a replica is served with, and which versions stay loaded.

The served version of a task is one pointer: :meth:`ServedVersions.promote` moves it in one
assignment, so the next request uses the new version and no request sees a mix. The
previous ``keep_versions`` versions stay in a per-task history and loaded, so a rollback
is a pointer move, not a load. With a canary fraction, a share of requests (chosen by a
hash of the request id, so a retried request lands on the same version) goes to the
task's canary candidate. A task with one adapter per domain (``adapter_per_domain``) also
has one pointer per domain that has a head: a request naming that domain is answered by it,
any other by the task's.
"""

from __future__ import annotations

import hashlib
import time
from collections import deque
from dataclasses import dataclass

from ...schemas.enums import ServingStatus
from ...schemas.events import ServingAck

__all__ = ["ServedVersions", "ServingChange", "canary_bucket"]


@dataclass(frozen=True, slots=True)
class ServingChange:
    """A task's served version moved (promotion, rollback, or the first version).

    >>> change = ServingChange("t", "v2", "v1", "promoted", event_read_at=time.monotonic(),
    ...                        load_seconds=0.25, fetch_seconds=0.01)
    >>> ack = change.ack("pod-1")
    >>> ack.status.value, ack.previous_version, ack.metadata["load_seconds"]
    ('serving', 'v1', 0.25)
    >>> 0 <= ack.ts - ack.metadata["read_ts"] < 1
    True
    """

    task: str
    version_id: str
    previous_version: str | None
    reason: str
    event_read_at: float
    """``time.monotonic()`` when the event that caused it was read from the topic."""
    load_seconds: float
    """Fetch, check and load of the adapter (0 when it was loaded already)."""
    fetch_seconds: float = 0.0
    """Of :attr:`load_seconds`, the fetch from the store and the sha256 check."""
    domain: str | None = None
    """The domain whose requests moved (a task with one adapter per domain); None: the
    task's own version, which answers every other domain."""

    def ack(self, replica: str) -> ServingAck:
        """``replica``'s acknowledgement: it serves :attr:`version_id` now. Its metadata says
        when the event was read (``read_ts``, wall clock) and how long the fetch and the
        whole load took (``fetch_seconds``, ``load_seconds``): the serving phases of a
        version's way from its trigger to the first answer (``bench freshness``)."""
        now, wall = time.monotonic(), time.time()
        return ServingAck(ts=wall, replica=replica, task=self.task,
                          version_id=self.version_id, status=ServingStatus.SERVING,
                          reason=self.reason, previous_version=self.previous_version,
                          metadata={"load_seconds": round(self.load_seconds, 4),
                                    "fetch_seconds": round(self.fetch_seconds, 4),
                                    # unrounded, as ``ts``: rounded, it could come after it
                                    "read_ts": wall - (now - self.event_read_at)}
                          | ({"domain": self.domain} if self.domain is not None else {}))


class ServedVersions:
    """The served version and canary candidate of each task, and its recent history.

    Parameters
    ----------
    keep_versions
        How many of the latest served versions of a task stay loaded (the current one
        included).
    canary_fraction
        Share of requests routed to a task's candidate, when it has one.

    Examples
    --------
    >>> served = ServedVersions(keep_versions=2)
    >>> for version in ("v1", "v2", "v3"):
    ...     served.promote("t", version)
    >>> served.serving("t"), sorted(served.kept("t"))
    ('v3', ['v2', 'v3'])
    >>> served.promote("t", "v2")  # a rollback: v2 is loaded still
    >>> served.serving("t"), sorted(served.kept("t"))
    ('v2', ['v2', 'v3'])
    >>> served.route("t", "request-1"), served.route("other", "request-1") is None
    ('v2', True)
    >>> served.promote_domain("t", "movies", "v4")  # movies' own lineage has a head
    >>> served.route("t", "request-1", "movies"), served.route("t", "request-1", "news")
    ('v4', 'v2')
    >>> sorted(served.kept("t"))
    ['v2', 'v3', 'v4']
    """

    def __init__(self, *, keep_versions: int = 3, canary_fraction: float = 0.0) -> None:
        if keep_versions < 1:
            raise ValueError(f"keep_versions must be >= 1, got {keep_versions}")
        if not 0.0 <= canary_fraction <= 1.0:
            raise ValueError(f"canary_fraction must be in [0, 1], got {canary_fraction}")
        self.keep_versions = keep_versions
        self.canary_fraction = canary_fraction
        self._serving: dict[str, str] = {}
        self._candidate: dict[str, str] = {}
        self._history: dict[str, deque[str]] = {}
        self._domains: dict[str, dict[str, str]] = {}

    def serving(self, task: str, domain: str | None = None) -> str | None:
        """The version ``task`` is served with now (None before its first version); with
        ``domain``, the version serving that domain's requests."""
        if domain is not None and domain in self._domains.get(task, {}):
            return self._domains[task][domain]
        return self._serving.get(task)

    def domains(self, task: str) -> dict[str, str]:
        """The domains of ``task`` served by their own lineage's head, and that head."""
        return dict(self._domains.get(task, {}))

    def candidate(self, task: str) -> str | None:
        """The canary candidate of ``task``, when one is loaded."""
        return self._candidate.get(task)

    def served(self) -> dict[str, str]:
        """Every served task and its version."""
        return dict(self._serving)

    def candidates(self) -> dict[str, str]:
        """Every task with a canary candidate, and that candidate."""
        return dict(self._candidate)

    def route(self, task: str, request_id: str, domain: str | None = None) -> str | None:
        """The version answering one request: the served one (its ``domain``'s own head when
        it has one), or the candidate for the canary share (decided by a hash of the request
        id, so a retried request is stable).
        """
        candidate = self._candidate.get(task)
        if candidate is not None and canary_bucket(request_id) < self.canary_fraction:
            return candidate
        return self.serving(task, domain)

    def promote(self, task: str, version_id: str) -> None:
        """Serve ``version_id`` for ``task`` from the next request on; keep it in the history.

        Safe to call from the model host's thread right after the load (readers on the
        event loop see the old state or the new, never half of it: each is one assignment).
        """
        self._serving[task] = version_id  # the atomic swap: the next request uses it
        history = deque(self._history.get(task, ()))  # a new deque: readers keep theirs
        if version_id in history:
            history.remove(version_id)
        history.append(version_id)
        while len(history) > self.keep_versions:
            history.popleft()
        self._history[task] = history

    def promote_domain(self, task: str, domain: str, version_id: str) -> None:
        """Serve ``domain``'s requests of ``task`` with ``version_id`` from the next on (one
        assignment of a new mapping: readers see the old or the new, never half)."""
        self._domains[task] = {**self._domains.get(task, {}), domain: version_id}

    def drop_domain(self, task: str, domain: str) -> None:
        """Serve ``domain``'s requests of ``task`` with the task's version again."""
        self._domains[task] = {d: v for d, v in self._domains.get(task, {}).items()
                               if d != domain}

    def set_candidate(self, task: str, version_id: str | None) -> bool:
        """Make ``version_id`` the canary candidate of ``task`` (None: no candidate);
        return whether that changed anything."""
        before = self._candidate.get(task)
        if version_id is None:
            self._candidate.pop(task, None)
        else:
            self._candidate[task] = version_id
        return before != version_id

    def kept(self, task: str) -> set[str]:
        """The versions of ``task`` that must stay loaded: history, served (the task's and
        each domain's) and candidate."""
        keep = set(self._history.get(task, ()))
        keep.update(v for v in (self._serving.get(task), self._candidate.get(task)) if v)
        keep.update(self._domains.get(task, {}).values())
        return keep


def canary_bucket(request_id: str) -> float:
    """A stable number in [0, 1) for a request id (the canary split).

    >>> canary_bucket("request-1") == canary_bucket("request-1"), 0 <= canary_bucket("x") < 1
    (True, True)
    """
    digest = hashlib.blake2b(request_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64
