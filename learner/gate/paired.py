"""Paired comparison of two versions on the same texts: McNemar's exact test on the answers,
and a sign-flip test on per-example proper scores.

Parent and candidate answer the same held-out examples; only the discordant pairs carry
evidence: ``b`` examples the candidate gets right and the parent wrong, ``c`` the other
way round. Under "the candidate is no better" each discordant pair is at most a fair coin
for the candidate, so ``P(Bin(b + c, 1/2) >= b)`` bounds the chance of seeing this much
improvement by luck: promoting only when it is below ``alpha`` keeps the false-promotion
rate of each decision at most ``alpha``, whatever the accuracies are. The same tail the
other way tests "significantly worse" (forgetting on older traffic).

The effect is the paired accuracy difference ``(b - c) / n`` with a Wald interval on it
(Agresti & Min's simple form; wide on small slices, as it should be).

McNemar's test reads only the discordant pairs: on the 20-60 held-out texts a gate has soon
after a shift, a candidate 15 points better shows as 4 wins and 0 losses, never significant.
With per-example proper scores (:class:`~driftloop.learner.models.task_model.Evaluation`:
one minus half the Brier score for a classifier), every text carries evidence: how much more
probability the candidate puts on the true label. :attr:`PairedComparison.p_better_scores`
tests "the candidate's mean score is no higher" by flipping the signs of the paired
differences at random (a paired permutation test; its rate of false rejections is at most the
level whenever the differences are symmetric under the null). A proper score cannot be raised
by overconfidence, so a sharper copy of the parent gains nothing from it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["PairedComparison", "binomial_tail", "compare", "pool", "stratify_weights"]

_Z = {0.80: 1.2816, 0.90: 1.6449, 0.95: 1.9600, 0.99: 2.5758}
_FLIPS = 4000  # random sign flips: a p-value's resolution is 1/4001


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
    score_diffs: tuple[float, ...] = ()
    """Per example, the candidate's proper score minus the parent's (empty: not measured)."""
    weights: tuple[float, ...] = ()
    """Post-stratified (:func:`stratify_weights`): each example's weight, beside ``diffs``;
    empty: every example weighs 1 and McNemar's exact test decides."""
    diffs: tuple[int, ...] = ()
    """With ``weights``: each example's candidate outcome minus the parent's (1, 0, -1)."""

    @property
    def weighted(self) -> tuple[float, ...]:
        return tuple(w * d for w, d in zip(self.weights, self.diffs, strict=True))

    @property
    def score_effect(self) -> float:
        """Mean proper-score difference (0 when not measured)."""
        return float(np.mean(self.score_diffs)) if self.score_diffs else 0.0

    @property
    def p_better_scores(self) -> float:
        """One-sided p-value of "the candidate's mean proper score is no higher", by random
        sign flips of the paired differences (deterministic: a fixed seed). 1.0 when not
        measured.

        >>> PairedComparison(4, 0, 0, 0.5, 0.5, (0.2, 0.1, 0.3, 0.2)).p_better_scores < 0.1
        True
        >>> PairedComparison(4, 0, 0, 0.5, 0.5, (0.2, -0.1, -0.3, 0.2)).p_better_scores > 0.5
        True
        """
        return _sign_flip_p(self.score_diffs)

    @property
    def effect(self) -> float:
        """Candidate minus parent accuracy (weighted when post-stratified)."""
        if self.weights:
            total = sum(self.weights)
            return sum(self.weighted) / total if total else 0.0
        return (self.wins - self.losses) / self.n if self.n else 0.0

    @property
    def p_better(self) -> float:
        """One-sided p-value of "the candidate is no better than the parent": McNemar's exact
        test, or random sign flips of the weighted discordant pairs when post-stratified."""
        if self.weights:
            return _sign_flip_p(self.weighted)
        return binomial_tail(self.wins, self.wins + self.losses)

    @property
    def p_worse(self) -> float:
        """One-sided p-value of "the candidate is no worse than the parent"."""
        if self.weights:
            return _sign_flip_p(tuple(-v for v in self.weighted))
        return binomial_tail(self.losses, self.wins + self.losses)

    def weighted_pairs(self) -> tuple[tuple[float, ...], tuple[int, ...]]:
        """``(weights, diffs)`` of every example (weight 1 each when not post-stratified;
        then in the order wins, losses, ties)."""
        if self.weights:
            return self.weights, self.diffs
        ties = self.n - self.wins - self.losses
        return (1.0,) * self.n, (1,) * self.wins + (-1,) * self.losses + (0,) * ties

    def interval(self, level: float = 0.95) -> tuple[float, float]:
        """A two-sided interval of :attr:`effect` (Wald, on the paired difference)."""
        if not self.n:
            return (-1.0, 1.0)
        z = _Z.get(level)
        if z is None:
            raise ValueError(f"level must be one of {sorted(_Z)}, got {level}")
        d = self.effect
        if self.weights:  # the same Wald form, each example with its weight
            w = np.asarray(self.weights)
            variance = float(np.sum((w * (np.asarray(self.diffs) - d)) ** 2)) / w.sum() ** 2
        else:
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
        text = (f"{self.candidate_score:.3f} vs {self.parent_score:.3f} on {self.n}: "
                f"{self.effect:+.3f} [{low:+.3f}, {high:+.3f}], {self.wins} won "
                f"{self.losses} lost, p(better)={self.p_better:.2g}")
        if self.weights:
            text += " (post-stratified by label)"
        if self.score_diffs:
            # An aside, not a clause of its own: a gate reason's verdict follows the whole
            # comparison, and its clauses are split at semicolons (the report groups them).
            text += (f" (proper score {self.score_effect:+.3f}, "
                     f"p(better)={self.p_better_scores:.2g})")
        return text


def compare(candidate: Sequence[bool], parent: Sequence[bool], *,
            candidate_scores: Sequence[float] = (),
            parent_scores: Sequence[float] = (),
            weights: Sequence[float] = ()) -> PairedComparison:
    """Pair the two versions' per-example outcomes (same examples, same order), and their
    proper scores when both are given; with ``weights`` (:func:`stratify_weights`), the
    accuracies, the effect and the tests are weighted.

    >>> c = compare([True, True, False, True], [False, True, False, False])
    >>> c.wins, c.losses, c.effect, round(c.p_better, 3)
    (2, 0, 0.5, 0.25)
    >>> compare([True], [True], candidate_scores=[0.9], parent_scores=[0.7]).score_diffs
    (0.2,)
    """
    if len(candidate) != len(parent):
        raise ValueError(f"{len(candidate)} candidate outcomes for {len(parent)} of the parent")
    n = len(candidate)
    diffs: tuple[float, ...] = ()
    if candidate_scores and parent_scores:
        if not len(candidate_scores) == len(parent_scores) == n:
            raise ValueError(f"{len(candidate_scores)} and {len(parent_scores)} scores for "
                             f"{n} outcomes")
        diffs = tuple(round(a - b, 6) for a, b in zip(candidate_scores, parent_scores,
                                                      strict=True))
    wins = sum(1 for a, b in zip(candidate, parent, strict=True) if a and not b)
    losses = sum(1 for a, b in zip(candidate, parent, strict=True) if b and not a)
    if weights:
        if len(weights) != n or any(w < 0 for w in weights) or not sum(weights):
            raise ValueError(f"need {n} non-negative weights, not all 0, got {len(weights)}")
        total = float(sum(weights))
        return PairedComparison(
            n=n, wins=wins, losses=losses,
            parent_score=sum(w for w, b in zip(weights, parent, strict=True) if b) / total,
            candidate_score=sum(w for w, a in zip(weights, candidate, strict=True) if a) / total,
            score_diffs=diffs, weights=tuple(float(w) for w in weights),
            diffs=tuple(int(a) - int(b) for a, b in zip(candidate, parent, strict=True)))
    return PairedComparison(n=n, wins=wins, losses=losses,
                            parent_score=sum(parent) / n if n else 0.0,
                            candidate_score=sum(candidate) / n if n else 0.0,
                            score_diffs=diffs)


def stratify_weights(targets: Sequence[str], traffic: Sequence[str]) -> list[float]:
    """Post-stratification by label: each held-out example weighs its label's share of the
    ``traffic`` labels (add-one smoothed) over its share of ``targets``, so a small slice with
    more of one label than the traffic counts it as the traffic does.

    A gate's slice of a few dozen texts has a label mix that can be far from the traffic's
    (a third positive where half the traffic is), and two versions that disagree on the
    label prior are then compared on the slice's mix more than on their answers; the mix of
    every label the request carries is known four times as well.

    >>> [round(w, 2) for w in stratify_weights(["pos", "neg", "neg", "neg"],
    ...                                        ["pos"] * 50 + ["neg"] * 50)]
    [2.0, 0.67, 0.67, 0.67]
    >>> stratify_weights(["pos", "neg"], [])  # nothing to stratify by: all weigh 1
    [1.0, 1.0]
    """
    if not targets or not traffic:
        return [1.0] * len(targets)
    labels = set(targets) | set(traffic)
    seen = {label: sum(1 for t in traffic if t == label) for label in labels}
    held = {label: sum(1 for t in targets if t == label) for label in labels}
    share = {label: (seen[label] + 1) / (len(traffic) + len(labels)) for label in labels}
    return [share[t] / (held[t] / len(targets)) for t in targets]


def pool(*comparisons: PairedComparison) -> PairedComparison:
    """The comparisons of disjoint slices as one (their pairs added up).

    >>> both = pool(compare([True, False], [False, False]), compare([True], [False]))
    >>> both.n, both.wins, both.losses, round(both.candidate_score, 3)
    (3, 2, 0, 0.667)
    """
    n = sum(c.n for c in comparisons)
    measured = all(len(c.score_diffs) == c.n for c in comparisons)
    if any(c.weights for c in comparisons):
        pairs = [c.weighted_pairs() for c in comparisons]
        weights = [w for ws, _ in pairs for w in ws]
        total = sum(weights)
        return PairedComparison(
            n=n, wins=sum(c.wins for c in comparisons),
            losses=sum(c.losses for c in comparisons),
            parent_score=sum(c.parent_score * sum(ws) for c, (ws, _) in zip(
                comparisons, pairs, strict=True)) / total if total else 0.0,
            candidate_score=sum(c.candidate_score * sum(ws) for c, (ws, _) in zip(
                comparisons, pairs, strict=True)) / total if total else 0.0,
            score_diffs=tuple(d for c in comparisons for d in c.score_diffs) if measured else (),
            weights=tuple(weights), diffs=tuple(d for _, ds in pairs for d in ds))
    return PairedComparison(
        n=n, wins=sum(c.wins for c in comparisons), losses=sum(c.losses for c in comparisons),
        parent_score=sum(c.parent_score * c.n for c in comparisons) / n if n else 0.0,
        candidate_score=sum(c.candidate_score * c.n for c in comparisons) / n if n else 0.0,
        score_diffs=tuple(d for c in comparisons for d in c.score_diffs) if measured else ())


def _sign_flip_p(diffs: Sequence[float]) -> float:
    """``P(mean of randomly sign-flipped diffs >= observed mean)``, one-sided.

    >>> _sign_flip_p(()), _sign_flip_p((0.0, 0.0))
    (1.0, 1.0)
    """
    values = np.asarray(diffs, dtype=np.float64)
    if not values.size or not np.any(values):
        return 1.0
    observed = values.mean()
    signs = np.random.default_rng(0).integers(0, 2, size=(_FLIPS, values.size), dtype=np.int8)
    flipped = ((signs * 2 - 1) * values).mean(axis=1)
    # The observed arrangement counts as one of the draws: a p-value is never 0.
    return float((1 + np.count_nonzero(flipped >= observed - 1e-12)) / (_FLIPS + 1))
