"""Drift detection scored on streams whose change points are known: delay, misses, false alarms.

Each scenario makes seeded streams of what a serving layer reports per interaction: a
confidence score and a sentence embedding. A regime is a confidence distribution and an
embedding centre; a scenario says where the regime changes and how:

* ``sudden``: at the change point the new regime takes over at once;
* ``gradual``: from the change point on, the share of events drawn from the new regime grows
  linearly to 1 over ``ramp`` events (the delay still counts from the ramp's start);
* ``recurring``: the regime flips back and forth (A, B, A, B): every flip is a change;
* ``stable``: no change at all (every alert is a false alarm); the autocorrelated variant
  gives the confidence AR(1) noise, as bursts of similar traffic do.

A change is in the scores only or in the embeddings only, so a detector that watches one signal
shows what it cannot see. Candidates turn a stream into alert positions (events seen when the
alert was raised); :func:`score_alerts` matches them to the change points: the first alert
after a change and before the next one is a detection (its delay in events is reported),
later ones in that segment are extra alerts, alerts before the first change are false alarms.

Candidates: driftloop's set-up (:func:`~driftloop.streams.pipeline.new_drift_watch` with
the worker's settings: confidences and embeddings, fed in batches as the worker receives
them) and River's ADWIN at its defaults on the confidence alone, one event at a time.
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
from river import drift

from ....schemas.settings import WorkerSettings
from ....streams.errors import ConfigurationError
from ....streams.pipeline import new_drift_watch
from .calibrate import river_per_event

__all__ = [
    "CANDIDATES",
    "SCENARIOS",
    "DriftScenario",
    "DriftScore",
    "LabelledStream",
    "driftloop_watch",
    "evaluate",
    "river_adwin_on_confidence",
    "scenarios",
    "score_alerts",
]

EMBEDDING_DIM = 32
# Regimes: confidence Beta(a, b) and an embedding centre. At strength 1, B's confidence is
# Beta(7, 3), 0.1 lower on average (about 0.8 standard deviations of A's), and B's centre is
# A's moved by 0.4 noise standard deviations along every axis; strength scales both shifts.
CONFIDENCE_A = (8.0, 2.0)
EMBEDDING_SHIFT = 0.4
EMBEDDING_NOISE = 1.0
BATCH_EVENTS = 100  # events per batch envelope handed to driftloop's monitors


@dataclass(frozen=True, slots=True)
class LabelledStream:
    """One stream: per-event confidences and embeddings, and where its changes start."""

    confidences: np.ndarray
    embeddings: np.ndarray
    changes: tuple[int, ...]

    def __len__(self) -> int:
        return int(self.confidences.shape[0])


@dataclass(frozen=True, slots=True)
class DriftScenario:
    """How to make a stream: its length, where the regime flips, and which signal moves.

    Examples
    --------
    >>> s = DriftScenario("sudden", "score", length=2_000, changes=(1_000,))
    >>> stream = s.make(np.random.default_rng(0))
    >>> len(stream), stream.changes, stream.embeddings.shape
    (2000, (1000,), (2000, 32))
    >>> before, after = stream.confidences[:1000].mean(), stream.confidences[1000:].mean()
    >>> round(float(before), 1), round(float(after), 1)
    (0.8, 0.7)
    """

    kind: str
    signal: str
    length: int
    changes: tuple[int, ...] = ()
    ramp: int = 0
    ar1: float = 0.0
    strength: float = 1.0

    def __post_init__(self) -> None:
        kinds = ("sudden", "gradual", "recurring", "stable")
        if self.kind not in kinds:
            raise ConfigurationError(f"unknown kind {self.kind!r}; valid: {', '.join(kinds)}")
        if self.signal not in ("score", "embedding", "none"):
            raise ConfigurationError(f"unknown signal {self.signal!r}; valid: score, embedding, "
                                     "none")
        if not 0.0 < self.strength < CONFIDENCE_A[0]:
            raise ConfigurationError(f"strength must be in (0, {CONFIDENCE_A[0]}), "
                                     f"got {self.strength!r}")
        if (self.kind == "stable") != (not self.changes):
            raise ConfigurationError("a stable scenario has no change point; others need one")
        if any(not 0 < c < self.length for c in self.changes) \
                or list(self.changes) != sorted(set(self.changes)):
            raise ConfigurationError(f"change points {self.changes} must be increasing, "
                                     f"inside (0, {self.length})")

    @property
    def stable(self) -> bool:
        return not self.changes

    def regime_b_share(self) -> np.ndarray:
        """Per event, the probability of being drawn from regime B."""
        share = np.zeros(self.length)
        for i, change in enumerate(self.changes):
            target = 1.0 if i % 2 == 0 else 0.0  # recurring: A -> B -> A -> ...
            if self.kind == "gradual" and self.ramp > 0:
                steps = np.clip((np.arange(self.length - change) + 1) / self.ramp, 0.0, 1.0)
                share[change:] = share[change - 1] + (target - share[change - 1]) * steps
            else:
                share[change:] = target
        return share

    def make(self, rng: np.random.Generator) -> LabelledStream:
        n = self.length
        in_b = rng.random(n) < self.regime_b_share()
        conf_b = in_b if self.signal == "score" else np.zeros(n, dtype=bool)
        emb_b = in_b if self.signal == "embedding" else np.zeros(n, dtype=bool)
        a, b = CONFIDENCE_A
        shifted = rng.beta(a - self.strength, b + self.strength, n)
        confidences = np.where(conf_b, shifted, rng.beta(a, b, n))
        if self.ar1:
            # Bursts: neighbouring events share part of their deviation (mean and spread kept).
            noise = rng.normal(0.0, 0.05, n)
            wobble = np.empty(n)
            wobble[0] = noise[0]
            for i in range(1, n):
                wobble[i] = self.ar1 * wobble[i - 1] + noise[i]
            confidences = np.clip(confidences + wobble, 0.0, 1.0)
        centre = np.random.default_rng(12345).normal(0.0, 1.0, EMBEDDING_DIM) * 3.0
        direction = np.random.default_rng(54321).choice([-1.0, 1.0], EMBEDDING_DIM)
        embeddings = rng.normal(0.0, EMBEDDING_NOISE, (n, EMBEDDING_DIM)) + centre
        embeddings[emb_b] += direction * EMBEDDING_SHIFT * self.strength * EMBEDDING_NOISE
        return LabelledStream(confidences, embeddings.astype(np.float32), self.changes)


def scenarios(length: int = 40_000) -> dict[str, DriftScenario]:
    """The benchmark's scenarios for streams of ``length`` events (stable ones are 3x longer).

    >>> sorted({s.kind for s in scenarios(3_000).values()})
    ['gradual', 'recurring', 'stable', 'sudden']
    """
    third, ramp = length // 3, length // 8
    quarter = length // 4
    return {
        "stable": DriftScenario("stable", "none", length * 3),
        "stable, bursty scores": DriftScenario("stable", "none", length * 3, ar1=0.9),
        "sudden, score": DriftScenario("sudden", "score", length, (third,)),
        "sudden, embedding": DriftScenario("sudden", "embedding", length, (third,)),
        "sudden, score, small": DriftScenario("sudden", "score", length, (third,),
                                              strength=0.3),
        "sudden, embedding, small": DriftScenario("sudden", "embedding", length, (third,),
                                                  strength=0.3),
        "gradual, score": DriftScenario("gradual", "score", length, (third,), ramp=ramp),
        "gradual, embedding": DriftScenario("gradual", "embedding", length, (third,), ramp=ramp),
        "recurring, score": DriftScenario("recurring", "score", length,
                                          (quarter, 2 * quarter, 3 * quarter)),
        "recurring, embedding": DriftScenario("recurring", "embedding", length,
                                              (quarter, 2 * quarter, 3 * quarter)),
    }


SCENARIOS: dict[str, DriftScenario] = scenarios()

Candidate = Callable[[LabelledStream], list[int]]


def driftloop_watch(worker: WorkerSettings | None = None, *,
                    batch_events: int = BATCH_EVENTS) -> Candidate:
    """driftloop's monitors as the worker builds them, fed confidences and embeddings in
    batches; an alert's position is the end of the batch that raised it (when the worker
    would publish it)."""
    settings = worker or WorkerSettings()

    def run(stream: LabelledStream) -> list[int]:
        watch = new_drift_watch(settings)
        alerts: list[int] = []
        for start in range(0, len(stream), batch_events):
            end = min(start + batch_events, len(stream))
            findings = watch.update("d", confidences=stream.confidences[start:end],
                                    embeddings=stream.embeddings[start:end])
            alerts.extend(end for _ in findings)
        return alerts
    return run


def river_adwin_on_confidence() -> Candidate:
    """River's ADWIN at its defaults, one confidence at a time (the usual single-signal set-up)."""
    per_event = river_per_event(drift.ADWIN)
    return lambda stream: per_event(stream.confidences)


CANDIDATES: dict[str, Callable[[], Candidate]] = {
    "driftloop (worker set-up)": driftloop_watch,
    "River ADWIN on confidence": river_adwin_on_confidence,
}


@dataclass(slots=True)
class DriftScore:
    """One candidate on one scenario, summed over its seeded streams."""

    candidate: str
    scenario: str
    streams: int = 0
    events: int = 0
    changes: int = 0
    detected: int = 0
    delays: list[int] = field(default_factory=list)
    extra_alerts: int = 0
    false_alarms: int = 0
    seconds: float = 0.0

    @property
    def missed(self) -> int:
        return self.changes - self.detected

    @property
    def median_delay(self) -> float | None:
        return statistics.median(self.delays) if self.delays else None

    @property
    def false_alarms_per_100k(self) -> float:
        """False alarms per 100,000 events before the first change (all events if stable)."""
        return 100_000 * self.false_alarms / self.events if self.events else 0.0

    def to_dict(self) -> dict[str, object]:
        return {"candidate": self.candidate, "scenario": self.scenario, "streams": self.streams,
                "stable_events": self.events, "changes": self.changes,
                "detected": self.detected, "missed": self.missed,
                "median_delay_events": self.median_delay,
                "delays_events": list(self.delays), "extra_alerts": self.extra_alerts,
                "false_alarms": self.false_alarms,
                "false_alarms_per_100k": round(self.false_alarms_per_100k, 3),
                "seconds": round(self.seconds, 3)}


def score_alerts(alerts: Iterable[int], changes: Sequence[int], length: int,
                 score: DriftScore) -> DriftScore:
    """Add one stream's alerts to ``score``: detections with delays, extra alerts, false alarms.

    >>> s = score_alerts([500, 1_200, 1_300, 2_900], [1_000, 2_000], 3_000, DriftScore("c", "s"))
    >>> s.detected, s.delays, s.extra_alerts, s.false_alarms, s.events
    (2, [200, 900], 1, 1, 1000)
    >>> score_alerts([10], [], 5_000, DriftScore("c", "stable")).false_alarms_per_100k
    20.0
    """
    bounds = [*changes, length + 1]
    alerts = sorted(alerts)
    score.streams += 1
    score.events += changes[0] if changes else length
    score.false_alarms += sum(1 for a in alerts if a <= bounds[0]) if changes else len(alerts)
    score.changes += len(changes)
    for start, end in itertools.pairwise(bounds):
        inside = [a for a in alerts if start < a <= end]
        if inside:
            score.detected += 1
            score.delays.append(inside[0] - start)
            score.extra_alerts += len(inside) - 1
    return score


def evaluate(scenarios: dict[str, DriftScenario] | None = None, *, runs: int = 10,
             seed: int = 0, candidates: Sequence[str] | None = None,
             progress: Callable[[int], None] | None = None) -> list[DriftScore]:
    """Every candidate on ``runs`` seeded streams of every scenario (the same streams for all).

    ``progress`` is called with 1 after each stream (for a progress bar).
    """
    import time

    chosen = list(candidates or CANDIDATES)
    unknown = sorted(set(chosen) - set(CANDIDATES))
    if unknown:
        raise ConfigurationError(f"unknown candidates {unknown}; valid: {sorted(CANDIDATES)}")
    if not isinstance(runs, int) or runs < 1:
        raise ConfigurationError(f"runs must be a positive integer, got {runs!r}")
    scores: list[DriftScore] = []
    for index, (name, scenario) in enumerate((scenarios or SCENARIOS).items()):
        row = {c: DriftScore(c, name) for c in chosen}
        runners = {c: CANDIDATES[c]() for c in chosen}
        for run in range(runs):
            stream = scenario.make(np.random.default_rng([seed, index, run]))
            for candidate in chosen:
                started = time.perf_counter()
                alerts = runners[candidate](stream)
                row[candidate].seconds += time.perf_counter() - started
                score_alerts(alerts, stream.changes, len(stream), row[candidate])
            if progress is not None:
                progress(1)
        scores.extend(row.values())
    return scores
