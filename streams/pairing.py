"""Pairing the outcomes of a canaried candidate with the head's, for the paired test.

A canary comparison tests pairs, not two separate tallies: within a domain, an outcome of
one arm (the candidate, or the head in front of users) is paired with the newest waiting
outcome of the other arm, so the two sides of a pair saw the same kind of input at about the
same time and slow drift shared by both arms cancels out. Unpaired outcomes wait, at most
``window`` per domain (the oldest go first, and may count again later since they never
counted). An interaction counts once, whatever feedback comes for it again.

Kept apart from :class:`~driftloop.streams.canary.CanaryComparison`, which decides what a
pair means (the candidate's lifecycle and its :class:`~driftloop.streams.sprt.PairedSPRT`).
"""

from __future__ import annotations

import hashlib
from collections import deque

from .errors import ConfigurationError

__all__ = ["MAX_DOMAINS", "OutcomePairing"]

MAX_DOMAINS = 1000
"""Domains with waiting outcomes at most: a flood of made-up domains cannot grow the state."""


def _key(interaction_id: str) -> int:
    # 8 bytes per remembered interaction instead of its id: the set is pickled on each write.
    return int.from_bytes(hashlib.blake2b(interaction_id.encode(), digest_size=8).digest(),
                          "big")


class OutcomePairing:
    """Outcomes of the two arms of one test, waiting for a partner in their domain.

    Parameters
    ----------
    window
        Unpaired outcomes kept per domain.

    Examples
    --------
    :meth:`add` says what became of an outcome, and gives the pair it completed as
    (candidate right?, head right?):

    >>> pairing = OutcomePairing(window=2)
    >>> pairing.add("i1", "news", candidate=False, correct=True)
    ('head', None)
    >>> pairing.add("i2", "movies", candidate=True, correct=True), pairing.waiting
    (('candidate', None), 2)
    >>> pairing.add("i3", "news", candidate=True, correct=False)
    ('candidate', (False, True))
    >>> pairing.add("i3", "news", candidate=True, correct=True)  # its feedback again
    ('duplicate', None)
    """

    def __init__(self, window: int) -> None:
        if isinstance(window, bool) or not isinstance(window, int) or window < 1:
            raise ConfigurationError(f"pair_window must be a positive integer, got {window!r}")
        self.window = window
        self._waiting: dict[str, deque[tuple[bool, int, bool]]] = {}
        self._used: set[int] = set()

    @property
    def waiting(self) -> int:
        """Outcomes waiting for a partner."""
        return sum(len(queue) for queue in self._waiting.values())

    def add(self, interaction_id: str, domain: str, *, candidate: bool,
            correct: bool) -> tuple[str, tuple[bool, bool] | None]:
        """Take one outcome of an arm (``candidate`` or the head).

        Returns what became of it (``"candidate"`` or ``"head"`` when taken,
        ``"duplicate"`` when its interaction already counted, ``"too_many_domains"`` when a
        new domain found :data:`MAX_DOMAINS` waiting) and the pair it completed, if any.
        """
        key = _key(interaction_id)
        if key in self._used:
            return "duplicate", None
        queue = self._waiting.get(domain)
        if queue is None:
            if len(self._waiting) >= MAX_DOMAINS:
                return "too_many_domains", None
            queue = self._waiting[domain] = deque()
        self._used.add(key)
        arm = "candidate" if candidate else "head"
        if queue and queue[-1][0] is not candidate:
            _, _, other = queue.pop()
            return arm, ((correct, other) if candidate else (other, correct))
        if len(queue) >= self.window:
            self._used.discard(queue.popleft()[1])  # never counted: may count later
        queue.append((candidate, key, bool(correct)))
        return arm, None
