"""The gate: promote a candidate only when it is better on new data and no worse elsewhere.

Parent and candidate are scored on the same texts: (a) recent traffic (``holdout``: the
request's held-out new examples and the pooled ones of the current regime), (b) older
traffic (``replay``: its held-out replayed examples and the pooled ones of earlier regimes;
forgetting) and (c) the task's challenge-prompt suite.

With each version's per-example outcomes (the learner's gate), (a) and (b) are paired tests
with a stated error rate (:mod:`.paired`): "better" is McNemar's exact test on the answers
(or, with ``evidence="scores"``, a sign-flip test on per-example proper scores, one minus
half the Brier score) and always needs more answers right; "worse" (forgetting) is McNemar's
test on the answers. The candidate is promoted
when it is better on (a) at level ``alpha``, or, when (a) alone is too small to show it,
better on (a) and (b) pooled at level ``alpha`` and not behind on (a); in both cases it must
not be significantly worse on (b) at the same level, and (c) stays within a tolerance. A
candidate no better than its parent is promoted at most ``2 * alpha`` of the time (two
tests, a union bound); one that only matches its parent is not promoted.
Each reason names the test's figures: scores, effect, its 95% interval, the discordant
pairs and the p-value.

With scores alone (the federated merge's gate), "improves" compares scores first (accuracy or
exact match), then, on a tie, the held-out loss: small held-out slices tie often, and a lower
loss on the same answers is still a better model; (b) stays within ``replay_tolerance``.

A slice of n examples cannot show a drop smaller than one example (1/n): when the metrics carry
``<part>_count``, the tolerance of (b) and (c) is at least one example's worth. Without that, a
replay slice of 9 examples and a tolerance of 0.1 called every single flipped answer forgetting.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from .paired import PairedComparison, pool

__all__ = ["GateDecision", "GateRule"]

Metrics = dict[str, float]


@dataclass(frozen=True, slots=True)
class GateDecision:
    """Promote or not, and every reason, readable by an operator."""

    promote: bool
    reasons: tuple[str, ...] = field(default_factory=tuple)

    @property
    def summary(self) -> str:
        return "; ".join(self.reasons)


@dataclass(frozen=True, slots=True)
class GateRule:
    """Tolerances of the promote rule.

    Parameters
    ----------
    min_improvement
        How much the held-out score must rise (0: any rise, or an equal score and lower loss).
    replay_tolerance
        How far the replay score may fall (forgetting allowed on old examples).
    challenge_tolerance
        How far the challenge-suite score may fall.
    robust_tolerance
        How far the robust accuracy may fall (the held-out texts perturbed,
        :mod:`driftloop.learner.gate.perturb`; only when measured).
    slice_tolerance
        How far the accuracy of any one slice (``slice.<name>`` metrics,
        :mod:`driftloop.learner.gate.slices`) may fall, even when the mean rises; at least
        one text of the slice. None: the worst slice is reported, never refused.
    alpha
        Level of the paired tests: the most a candidate no better than its parent is promoted
        (per decision), and the evidence needed to call older traffic forgotten.
    evidence
        What "better" reads: ``"answers"`` (McNemar) or ``"scores"`` (per-example proper
        scores, when measured).
    min_stability
        Least ``prompt_stability`` of the candidate (share of probes answered the same under
        every paraphrase of its prompt; :mod:`driftloop.learner.gate.stability`). None: not
        required. A candidate without the metric (classification, no probes, no paraphrases)
        is not held to it; the reasons say so.

    Examples
    --------
    >>> rule = GateRule(replay_tolerance=0.05)
    >>> before = {"holdout_score": 0.6, "holdout_loss": 0.7, "replay_score": 0.9}
    >>> rule.decide(before, {"holdout_score": 0.8, "holdout_loss": 0.5,
    ...                      "replay_score": 0.88}).promote
    True
    >>> decision = rule.decide(before, {"holdout_score": 0.8, "holdout_loss": 0.5,
    ...                                 "replay_score": 0.6})
    >>> decision.promote, decision.reasons[-1]
    (False, 'replay: 0.600 < 0.900 - 0.05 (forgetting)')
    """

    min_improvement: float = 0.0
    replay_tolerance: float = 0.02
    challenge_tolerance: float = 0.02
    min_stability: float | None = None
    alpha: float = 0.1
    evidence: str = "answers"
    robust_tolerance: float = 0.02
    slice_tolerance: float | None = None

    def __post_init__(self) -> None:
        if not 0.0 < self.alpha < 0.5:
            raise ValueError(f"alpha must be in (0, 0.5), got {self.alpha}")
        if self.evidence not in ("answers", "scores"):
            raise ValueError(f"evidence must be 'answers' or 'scores', got {self.evidence!r}")
        for name in ("min_improvement", "replay_tolerance", "challenge_tolerance",
                     "robust_tolerance", "slice_tolerance", "min_stability"):
            value = getattr(self, name)
            if value is None:
                continue
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")

    def decide(self, before: Metrics, after: Metrics,
               paired: Mapping[str, PairedComparison] | None = None) -> GateDecision:
        """Apply the rule to parent (``before``) and candidate (``after``) metrics; with
        ``paired`` comparisons of ``holdout`` (and ``replay``), by the paired tests."""
        reasons: list[str] = []
        if paired is not None and "holdout" in paired:
            ok = self._paired(paired, reasons)
            ok &= self._tolerated(before, after, reasons,
                                  parts=(("challenge", "challenge prompts"),
                                         ("robust", "less robust")))
        else:
            ok = self._improved(before, after, reasons)
            ok &= self._tolerated(before, after, reasons,
                                  parts=(("replay", "forgetting"),
                                         ("challenge", "challenge prompts"),
                                         ("robust", "less robust")))
        if self.min_stability is not None:
            ok &= _stability_reason(self.min_stability, after, reasons)
        ok &= self._worst_slice(before, after, reasons)
        return GateDecision(ok, tuple(reasons))

    def _worst_slice(self, before: Metrics, after: Metrics, reasons: list[str]) -> bool:
        """Name the slice whose accuracy fell most; with ``slice_tolerance``, refuse when it
        fell by more (at least one of its texts' worth).

        >>> reasons = []
        >>> GateRule(slice_tolerance=0.05)._worst_slice(
        ...     {"slice.domain=a": 0.9, "slice.domain=b": 0.5},
        ...     {"slice.domain=a": 0.7, "slice.domain=a_count": 40.0, "slice.domain=b": 0.8},
        ...     reasons), reasons
        (False, ['worst slice: domain=a 0.700 vs 0.900 on 40 (-0.200 > 0.05: a slice fell)'])
        """
        names = [key for key in after if key.startswith("slice.")
                 and not key.endswith("_count") and key in before]
        if not names:
            return True
        worst = max(names, key=lambda key: before[key] - after[key])
        drop = before[worst] - after[worst]
        count = after.get(f"{worst}_count")
        text = (f"worst slice: {worst.removeprefix('slice.')} {after[worst]:.3f} vs "
                f"{before[worst]:.3f}" + (f" on {count:.0f}" if count else "")
                + f" ({-drop:+.3f}")
        if self.slice_tolerance is None:
            reasons.append(text + ")")
            return True
        tolerance = _resolution_floor(self.slice_tolerance, count)
        if drop > tolerance + 1e-9:
            reasons.append(text + f" > {tolerance:.3g}: a slice fell)")
            return False
        reasons.append(text + f" within {tolerance:.3g})")
        return True

    def _paired(self, paired: Mapping[str, PairedComparison], reasons: list[str]) -> bool:
        recent = paired["holdout"]
        old = paired.get("replay")
        better = self._shown_better(recent)
        p = self._p_better(recent)
        # Which p-value decided, when the per-example proper scores did (the last one named).
        by = " (proper scores)" if self.evidence == "scores" and recent.score_diffs else ""
        if better:
            verdict = f"< {self.alpha:g}{by}: better"
        elif p >= self.alpha:
            verdict = f">= {self.alpha:g}{by}: not shown better"
        else:
            verdict = (f"< {self.alpha:g}{by}, but the effect is not above "
                       f"{self.min_improvement:g}")
        reasons.append(f"recent: {recent.describe()} {verdict}")
        if old is None or not old.n:
            return better
        worse = old.p_worse < self.alpha
        reasons.append(f"older: {old.describe()}, p(worse)={old.p_worse:.2g}"
                       + (" (forgetting)" if worse else ""))
        if better or worse:
            return better and not worse
        # A shift seen on few labels: the recent slice alone is too small to show a gain the
        # older one shows too. Better on both together, and not behind on the recent one.
        both = pool(recent, old)
        overall = self._shown_better(both) and recent.effect >= 0.0
        reasons.append(f"both: {both.describe()}"
                       + (f" < {self.alpha:g}: better" if overall else ": not shown better"))
        return overall

    def _p_better(self, comparison: PairedComparison) -> float:
        if self.evidence == "scores" and comparison.score_diffs:
            return comparison.p_better_scores
        return comparison.p_better

    def _shown_better(self, comparison: PairedComparison) -> bool:
        """Ahead on accuracy, and significantly so: by McNemar's test on the answers, or
        with ``evidence="scores"`` on the per-example proper scores when they were measured
        (every example carries evidence)."""
        return (self._p_better(comparison) < self.alpha
                and comparison.effect > self.min_improvement)

    def _improved(self, before: Metrics, after: Metrics, reasons: list[str]) -> bool:
        ok = True
        old, new = before["holdout_score"], after["holdout_score"]
        old_loss, new_loss = before.get("holdout_loss"), after.get("holdout_loss")
        if new > old + self.min_improvement:
            reasons.append(f"holdout: {new:.3f} > {old:.3f}")
        elif (self.min_improvement == 0.0 and new == old and old_loss is not None
              and new_loss is not None and new_loss < old_loss):
            reasons.append(f"holdout: {new:.3f} = {old:.3f}, loss {new_loss:.4f} < {old_loss:.4f}")
        else:
            ok = False
            reasons.append(f"holdout: {new:.3f} not better than {old:.3f}"
                           + (f" + {self.min_improvement}" if self.min_improvement else ""))
        return ok

    def _tolerated(self, before: Metrics, after: Metrics, reasons: list[str], *,
                   parts: tuple[tuple[str, str], ...]) -> bool:
        ok = True
        tolerances = {"replay": self.replay_tolerance, "challenge": self.challenge_tolerance,
                      "robust": self.robust_tolerance}
        for part, why in parts:
            tol = tolerances[part]
            key = f"{part}_score"
            if key not in before or key not in after:
                continue
            tol = _resolution_floor(tol, after.get(f"{part}_count"))
            if after[key] < before[key] - tol - 1e-9:
                ok = False
                reasons.append(f"{part}: {after[key]:.3f} < {before[key]:.3f} - {tol:.3g} ({why})")
            else:
                reasons.append(f"{part}: {after[key]:.3f} within {tol:.3g} of {before[key]:.3f}")
        return ok


def _stability_reason(minimum: float, after: Metrics, reasons: list[str]) -> bool:
    """Hold the candidate to the minimum prompt stability; append why; False to refuse.

    >>> reasons = []
    >>> _stability_reason(0.8, {"prompt_stability": 0.5}, reasons), reasons
    (False, ['prompt stability: 0.500 < 0.8 (answers change with the wording)'])
    >>> _stability_reason(0.8, {}, []), _stability_reason(0.8, {"prompt_stability": 0.9}, [])
    (True, True)
    """
    value = after.get("prompt_stability")
    if value is None:
        reasons.append("prompt stability: not measured (no prompt, paraphrases or probes)")
        return True
    if value < minimum - 1e-9:
        reasons.append(f"prompt stability: {value:.3f} < {minimum:.3g} "
                       "(answers change with the wording)")
        return False
    reasons.append(f"prompt stability: {value:.3f} >= {minimum:.3g}")
    return True


def _resolution_floor(tolerance: float, count: float | None) -> float:
    """The tolerance, raised to one example of the slice when the slice is that small.

    >>> _resolution_floor(0.02, 10.0), _resolution_floor(0.02, 200.0), _resolution_floor(0.02, None)
    (0.1, 0.02, 0.02)
    """
    return max(tolerance, 1.0 / count) if count else tolerance
