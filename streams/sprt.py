"""A sequential test of "is the candidate better than the head?" on paired live outcomes.

Each observation is a *pair*: one labelled outcome of the candidate and one of the head,
taken close together in time and in the same domain (see :mod:`.ab_test`). Only
*discordant* pairs (exactly one of the two right) carry information about which is better:
given a discordant pair, the candidate is the right one with probability

    theta = p_c (1 - p_h) / (p_c (1 - p_h) + p_h (1 - p_c)),

and ``theta / (1 - theta)`` is the odds ratio of the two accuracies. "Not better" is
``theta <= 1/2``; the effect to detect is an odds ratio ``r`` (``theta_1 = r / (1 + r)``).
This is McNemar's comparison made sequential, Wald's SPRT of ``theta = 1/2`` against
``theta = theta_1`` on the discordant pairs.

Why the error rates hold under continuous monitoring
---------------------------------------------------
The likelihood ratio ``L_n = prod (theta_1 / (1/2))^win ((1 - theta_1) / (1/2))^loss``
starts at 1 and, whenever the candidate is not better at the time of a pair
(``theta_t <= 1/2``, even if both accuracies drift), is a nonnegative supermartingale. Ville's
inequality then gives ``P(sup_n L_n >= 1/alpha) <= alpha``: promoting only when
``L_n >= 1/alpha`` keeps the chance of promoting a candidate that is not better at most
``alpha`` however often the test is looked at, and whatever the minimum and maximum sample
sizes (deferring or truncating a decision cannot raise a supremum bound). Symmetrically
``1 / L_n`` is a supermartingale when ``theta_t >= theta_1``, so rejecting when
``L_n <= beta`` rejects a candidate at least as good as the effect with probability at most
``beta`` before the maximum sample size. These are Wald's boundaries without his
approximations (``1/alpha`` instead of ``(1 - beta)/alpha``), a little more conservative and
exact. At ``max_samples`` pairs without a decision the candidate is rejected: that costs
power (a better candidate may be rejected), never the ``alpha`` bound. Candidates between
"not better" and the effect (``1/2 < theta < theta_1``) may go either way.
"""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Any

from .errors import ConfigurationError

__all__ = ["PairedSPRT", "Verdict"]


class Verdict(StrEnum):
    PROMOTE = "promote"
    REJECT = "reject"


class PairedSPRT:
    """Wald's SPRT on paired outcomes (candidate, head), with Ville's thresholds.

    Parameters
    ----------
    alpha
        Bound on P(promote) when the candidate is not better (any monitoring).
    beta
        Bound on P(early reject) when the candidate's odds ratio is at least ``odds_ratio``.
    odds_ratio
        The effect the test is tuned to detect (odds of a right answer, candidate / head).
    min_samples
        Pairs before any decision.
    max_samples
        Pairs after which an undecided test rejects.

    Examples
    --------
    >>> import random
    >>> rng = random.Random(7)
    >>> test = PairedSPRT(alpha=0.05, beta=0.2, odds_ratio=1.5, min_samples=20)
    >>> while test.verdict is None:
    ...     _ = test.update(rng.random() < 0.9, rng.random() < 0.6)  # candidate 0.9, head 0.6
    >>> test.verdict.value, test.pairs, test.likelihood_ratio >= 1 / 0.05
    ('promote', 62, True)
    >>> PairedSPRT(alpha=0.7)
    Traceback (most recent call last):
    ...
    driftloop.streams.errors.ConfigurationError: alpha must be in (0, 0.5), got 0.7
    """

    def __init__(self, *, alpha: float = 0.05, beta: float = 0.2, odds_ratio: float = 1.5,
                 min_samples: int = 20, max_samples: int = 2000) -> None:
        for name, value in (("alpha", alpha), ("beta", beta)):
            if not isinstance(value, int | float) or not 0.0 < value < 0.5:
                raise ConfigurationError(f"{name} must be in (0, 0.5), got {value!r}")
        if (not isinstance(odds_ratio, int | float) or not math.isfinite(odds_ratio)
                or odds_ratio <= 1.0):
            raise ConfigurationError(f"odds_ratio must be a finite number > 1, got {odds_ratio!r}")
        for name, value in (("min_samples", min_samples), ("max_samples", max_samples)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigurationError(f"{name} must be a positive integer, got {value!r}")
        if max_samples < min_samples:
            raise ConfigurationError(f"max_samples ({max_samples}) must be >= min_samples "
                                     f"({min_samples})")
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.odds_ratio = float(odds_ratio)
        self.min_samples = min_samples
        self.max_samples = max_samples
        self._reset()

    def _reset(self) -> None:
        theta = self.odds_ratio / (1.0 + self.odds_ratio)
        self._win_step = math.log(2.0 * theta)
        self._loss_step = math.log(2.0 * (1.0 - theta))
        self.upper = math.log(1.0 / self.alpha)
        self.lower = math.log(self.beta)
        self.pairs = 0
        self.wins = 0
        """Pairs where the candidate was right and the head wrong."""
        self.losses = 0
        """Pairs where the head was right and the candidate wrong."""
        self.candidate_right = 0
        self.head_right = 0
        self.log_ratio = 0.0
        self.verdict: Verdict | None = None
        self.truncated = False
        """True when the verdict came from ``max_samples``, not from the evidence."""

    def update(self, candidate_correct: bool, head_correct: bool) -> PairedSPRT:
        """Add one pair; a decided test ignores further pairs."""
        if self.verdict is not None:
            return self
        self.pairs += 1
        self.candidate_right += bool(candidate_correct)
        self.head_right += bool(head_correct)
        if candidate_correct and not head_correct:
            self.wins += 1
            self.log_ratio += self._win_step
        elif head_correct and not candidate_correct:
            self.losses += 1
            self.log_ratio += self._loss_step
        if self.pairs >= self.min_samples:
            if self.log_ratio >= self.upper:
                self.verdict = Verdict.PROMOTE
            elif self.log_ratio <= self.lower:
                self.verdict = Verdict.REJECT
        if self.verdict is None and self.pairs >= self.max_samples:
            self.verdict, self.truncated = Verdict.REJECT, True
        return self

    @property
    def likelihood_ratio(self) -> float:
        return math.exp(self.log_ratio)

    def summary(self) -> str:
        """One line of evidence, for the reason of the status event and the logs."""
        accuracy = (f"candidate {self.candidate_right}/{self.pairs} right, head "
                    f"{self.head_right}/{self.pairs}") if self.pairs else "no pairs"
        why = ""
        if self.verdict is Verdict.PROMOTE:
            why = f" >= 1/alpha = {1 / self.alpha:.4g}"
        elif self.verdict is Verdict.REJECT:
            why = (f": no decision after {self.pairs} pairs (max_samples)" if self.truncated
                   else f" <= beta = {self.beta:.4g}")
        return (f"A/B {accuracy}; discordant {self.wins} for the candidate, {self.losses} "
                f"for the head; likelihood ratio {self.likelihood_ratio:.4g}{why}")

    def clone(self) -> PairedSPRT:
        return PairedSPRT(**self.get_params())

    def get_params(self) -> dict[str, Any]:
        return {"alpha": self.alpha, "beta": self.beta, "odds_ratio": self.odds_ratio,
                "min_samples": self.min_samples, "max_samples": self.max_samples}
