"""Paired comparison of two versions on the same texts: McNemar's exact test.

Parent and candidate answer the same held-out examples; only the discordant pairs carry
evidence: ``b`` examples the candidate gets right and the parent wrong, ``c`` the other
way round. Under "the candidate is no better" each discordant pair is at most a fair coin
for the candidate, so ``P(Bin(b + c, 1/2) >= b)`` bounds the chance of seeing this much
improvement by luck: promoting only when it is below ``alpha`` keeps the false-promotion
rate of each decision at most ``alpha``, whatever the accuracies are. The same tail the
other way tests "significantly worse" (forgetting on older traffic).

The effect is the paired accuracy difference ``(b - c) / n`` with a Wald interval on it
(Agresti & Min's simple form; wide on small slices, as it should be).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["PairedComparison", "binomial_tail", "compare", "pool"]

_Z = {0.80: 1.2816, 0.90: 1.6449, 0.95: 1.9600, 0.99: 2.5758}


def binomial_tail(successes: int, trials: int) -> float:
    """``P(Bin(trials, 1/2) >= successes)``, exactly (1.0 when nothing was tried).

    >>> binomial_tail(9, 10), binomial_tail(0, 10), binomial_tail(0, 0)
    (0.0107421875, 1.0, 1.0)
    """
    if successes <= 0:
        return 1.0
    if successes > trials:
        return 0.0
    # Exact integers: Python divides big ints with correct rounding, and a float's 2**trials
    # would overflow past a thousand pairs.
    return sum(math.comb(trials, k) for k in range(successes, trials + 1)) / (1 << trials)


@dataclass(frozen=True, slots=True)
class PairedComparison:
    """Candidate against parent on ``n`` shared examples.

    Attributes
    ----------
    n
        Examples both answered.
    wins, losses
        Examples only the candidate got right (``b``), only the parent (``c``).
    parent_score, candidate_score
        Accuracies on the ``n`` examples.
    """

    n: int
    wins: int
    losses: int
    parent_score: float
    candidate_score: float

    @property
    def effect(self) -> float:
        """Candidate minus parent accuracy."""
        return (self.wins - self.losses) / self.n if self.n else 0.0

    @property
    def p_better(self) -> float:
        """One-sided p-value of "the candidate is no better than the parent"."""
        return binomial_tail(self.wins, self.wins + self.losses)

    @property
    def p_worse(self) -> float:
        """One-sided p-value of "the candidate is no worse than the parent"."""
        return binomial_tail(self.losses, self.wins + self.losses)

    def interval(self, level: float = 0.95) -> tuple[float, float]:
        """A two-sided interval of :attr:`effect` (Wald, on the paired difference)."""
        if not self.n:
            return (-1.0, 1.0)
        z = _Z.get(level)
        if z is None:
            raise ValueError(f"level must be one of {sorted(_Z)}, got {level}")
        d = self.effect
        variance = ((self.wins + self.losses) / self.n - d * d) / self.n
        half = z * math.sqrt(max(variance, 0.0))
        return (max(-1.0, d - half), min(1.0, d + half))

    def describe(self) -> str:
        """One line for an operator: scores, effect, interval, discordant pairs, p-values.

        >>> compare([True] * 12 + [False] * 8, [False] * 8 + [True] * 4 + [False] * 8
        ...         ).describe()
        '0.600 vs 0.200 on 20: +0.400 [+0.185, +0.615], 8 won 0 lost, p(better)=0.0039'
        """
        low, high = self.interval()
        return (f"{self.candidate_score:.3f} vs {self.parent_score:.3f} on {self.n}: "
                f"{self.effect:+.3f} [{low:+.3f}, {high:+.3f}], {self.wins} won "
                f"{self.losses} lost, p(better)={self.p_better:.2g}")


def compare(candidate: Sequence[bool], parent: Sequence[bool]) -> PairedComparison:
    """Pair the two versions' per-example outcomes (same examples, same order).

    >>> c = compare([True, True, False, True], [False, True, False, False])
    >>> c.wins, c.losses, c.effect, round(c.p_better, 3)
    (2, 0, 0.5, 0.25)
    """
    if len(candidate) != len(parent):
        raise ValueError(f"{len(candidate)} candidate outcomes for {len(parent)} of the parent")
    n = len(candidate)
    wins = sum(1 for a, b in zip(candidate, parent, strict=True) if a and not b)
    losses = sum(1 for a, b in zip(candidate, parent, strict=True) if b and not a)
    return PairedComparison(n=n, wins=wins, losses=losses,
                            parent_score=sum(parent) / n if n else 0.0,
                            candidate_score=sum(candidate) / n if n else 0.0)


def pool(*comparisons: PairedComparison) -> PairedComparison:
    """The comparisons of disjoint slices as one (their pairs added up).

    >>> both = pool(compare([True, False], [False, False]), compare([True], [False]))
    >>> both.n, both.wins, both.losses, round(both.candidate_score, 3)
    (3, 2, 0, 0.667)
    """
    n = sum(c.n for c in comparisons)
    return PairedComparison(
        n=n, wins=sum(c.wins for c in comparisons), losses=sum(c.losses for c in comparisons),
        parent_score=sum(c.parent_score * c.n for c in comparisons) / n if n else 0.0,
        candidate_score=sum(c.candidate_score * c.n for c in comparisons) / n if n else 0.0)
