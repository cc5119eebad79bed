"""When to ask for training: small policy objects, and a gate with minimum examples and cooldown.

Each policy looks at a :class:`TaskSignals` snapshot and says whether it wants a training run
and why. :class:`TriggerGate` asks them in a fixed priority (manual, challenge, drift,
metric, schedule), holds them back while the task has too few new examples or is still in
its cooldown, and remembers what fired, so one cause raises one training request.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..schemas.enums import TriggerKind
from .errors import ConfigurationError

__all__ = [
    "ChallengePolicy",
    "DriftPolicy",
    "ManualPolicy",
    "MetricPolicy",
    "SchedulePolicy",
    "TaskSignals",
    "TriggerDecision",
    "TriggerGate",
]


@dataclass(slots=True)
class TaskSignals:
    """What the worker knows about a task when it checks the triggers."""

    now: float
    new_examples: int
    accuracy: float | None = None
    baseline: float | None = None
    recent_outcomes: int = 0
    drift_alerts: Sequence[str] = field(default_factory=tuple)
    challenge_failures: Sequence[str] = field(default_factory=tuple)
    manual_requests: Sequence[str] = field(default_factory=tuple)
    regime_labels: int = 0
    """Labels of the current regime (interactions seen since the last shift) so far."""
    regime_next: int | None = None
    """The regime's label count at which the schedule asks again (None: no growth clause)."""
    in_flight: int = 0
    """Requests sent and not yet answered by the learner."""


@dataclass(frozen=True, slots=True)
class TriggerDecision:
    """A policy wants a training run."""

    kind: TriggerKind
    reason: str


def _positive(name: str, value: float | None, *, allow_none: bool = True) -> None:
    if value is None and allow_none:
        return
    if value is None or not math.isfinite(value) or value <= 0:
        raise ConfigurationError(f"{name} must be a positive number, got {value!r}")


class _Policy:
    kind: TriggerKind

    def check(self, signals: TaskSignals, last_fired: float | None,
              examples_at_last: int) -> TriggerDecision | None:
        raise NotImplementedError

    def get_params(self) -> dict[str, Any]:
        return {}

    def clone(self) -> _Policy:
        return type(self)(**self.get_params())

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.get_params() == other.get_params()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self).__name__, tuple(sorted(self.get_params().items()))))


class SchedulePolicy(_Policy):
    """Every ``every_seconds`` seconds, every ``every_examples`` new labeled examples, and/or
    when the current regime's labels reach the count the regime schedule set
    (``growth``: 32, 64, 128, ... labels after a shift; see
    :class:`~driftloop.streams.requests.TrainingRequests`).

    >>> SchedulePolicy(every_examples=100).check(TaskSignals(now=0, new_examples=150), None, 0)
    TriggerDecision(kind=<TriggerKind.SCHEDULE: 'schedule'>, reason='150 new examples (every 100)')
    >>> SchedulePolicy(growth=True).check(
    ...     TaskSignals(now=0, new_examples=70, regime_labels=64, regime_next=64), None, 0).reason
    '64 labels of the current regime (asked again at 64)'
    """

    kind = TriggerKind.SCHEDULE

    def __init__(self, *, every_seconds: float | None = None,
                 every_examples: int | None = None, growth: bool = False) -> None:
        _positive("every_seconds", every_seconds)
        _positive("every_examples", every_examples)
        self.every_seconds = every_seconds
        self.every_examples = every_examples
        self.growth = bool(growth)

    def check(self, signals: TaskSignals, last_fired: float | None,
              examples_at_last: int) -> TriggerDecision | None:
        if self.growth and signals.regime_next is not None \
                and signals.regime_labels >= signals.regime_next:
            return TriggerDecision(self.kind, f"{signals.regime_labels} labels of the current "
                                              f"regime (asked again at {signals.regime_next})")
        if self.every_examples is not None and signals.new_examples >= self.every_examples:
            return TriggerDecision(self.kind, f"{signals.new_examples} new examples "
                                              f"(every {self.every_examples})")
        if self.every_seconds is not None and last_fired is not None \
                and signals.now - last_fired >= self.every_seconds:
            return TriggerDecision(self.kind, f"{signals.now - last_fired:.0f} s since the last "
                                              f"training (every {self.every_seconds:g} s)")
        return None

    def get_params(self) -> dict[str, Any]:
        return {"every_seconds": self.every_seconds, "every_examples": self.every_examples,
                "growth": self.growth}


class DriftPolicy(_Policy):
    """A drift alert of the task since the last training, once the regime it opened has
    ``min_labels`` labels: a request sent at the alert would train on the old regime.

    >>> policy = DriftPolicy(min_labels=32)
    >>> alert = TaskSignals(now=0, new_examples=90, drift_alerts=["live/embedding"],
    ...                     regime_labels=10)
    >>> policy.check(alert, None, 0) is None  # 90 labels, but 10 of the new regime
    True
    >>> alert.regime_labels = 32
    >>> policy.check(alert, None, 0).reason
    'drift: live/embedding (32 labels since)'
    """

    kind = TriggerKind.DRIFT

    def __init__(self, *, min_labels: int = 0) -> None:
        if not isinstance(min_labels, int) or min_labels < 0:
            raise ConfigurationError(f"min_labels must be an integer >= 0, got {min_labels!r}")
        self.min_labels = min_labels

    def check(self, signals: TaskSignals, last_fired: float | None,
              examples_at_last: int) -> TriggerDecision | None:
        if signals.drift_alerts and signals.regime_labels >= self.min_labels:
            return TriggerDecision(self.kind, "drift: " + ", ".join(signals.drift_alerts[:5])
                                   + f" ({signals.regime_labels} labels since)")
        return None

    def get_params(self) -> dict[str, Any]:
        return {"min_labels": self.min_labels}


class MetricPolicy(_Policy):
    """Rolling accuracy below ``threshold``, or more than ``max_drop`` below the baseline."""

    kind = TriggerKind.METRIC

    def __init__(self, *, threshold: float | None = 0.7, max_drop: float | None = 0.1,
                 min_outcomes: int = 100) -> None:
        for name, value in (("threshold", threshold), ("max_drop", max_drop)):
            if value is not None and not 0.0 <= value <= 1.0:
                raise ConfigurationError(f"{name} must be in [0, 1], got {value!r}")
        if not isinstance(min_outcomes, int) or min_outcomes < 1:
            raise ConfigurationError(
                f"min_outcomes must be a positive integer, got {min_outcomes!r}")
        self.threshold = threshold
        self.max_drop = max_drop
        self.min_outcomes = min_outcomes

    def check(self, signals: TaskSignals, last_fired: float | None,
              examples_at_last: int) -> TriggerDecision | None:
        acc = signals.accuracy
        if acc is None or signals.recent_outcomes < self.min_outcomes:
            return None
        if self.threshold is not None and acc < self.threshold:
            return TriggerDecision(self.kind, f"accuracy {acc:.3f} < {self.threshold}")
        if self.max_drop is not None and signals.baseline is not None \
                and signals.baseline - acc > self.max_drop:
            return TriggerDecision(self.kind, f"accuracy {acc:.3f} dropped more than "
                                              f"{self.max_drop} from {signals.baseline:.3f}")
        return None

    def get_params(self) -> dict[str, Any]:
        return {"threshold": self.threshold, "max_drop": self.max_drop,
                "min_outcomes": self.min_outcomes}


class ChallengePolicy(_Policy):
    """The current model version failed challenge prompts (from ``model-versions``)."""

    kind = TriggerKind.CHALLENGE

    def check(self, signals: TaskSignals, last_fired: float | None,
              examples_at_last: int) -> TriggerDecision | None:
        if signals.challenge_failures:
            failures = ", ".join(signals.challenge_failures[:5])
            return TriggerDecision(self.kind, f"challenge failures: {failures}")
        return None


class ManualPolicy(_Policy):
    """An operator asked (``driftloop worker trigger --task T``)."""

    kind = TriggerKind.MANUAL

    def check(self, signals: TaskSignals, last_fired: float | None,
              examples_at_last: int) -> TriggerDecision | None:
        if signals.manual_requests:
            return TriggerDecision(self.kind, "manual: " + "; ".join(signals.manual_requests[:3]))
        return None


_PRIORITY = (TriggerKind.MANUAL, TriggerKind.CHALLENGE, TriggerKind.DRIFT, TriggerKind.METRIC,
             TriggerKind.SCHEDULE)


class TriggerGate:
    """Ask the policies in priority order; enforce minimum examples and cooldown per task.

    A manual request skips the cooldown (an operator asked for it now) but not the minimum
    number of examples (there must be something to train on). While ``max_in_flight``
    requests are unanswered by the learner, no other policy fires: the learner's own pace is
    the cooldown, and what arrives meanwhile goes into the next request.

    Examples
    --------
    >>> gate = TriggerGate([DriftPolicy(), SchedulePolicy(every_examples=500)],
    ...                    min_examples=10, cooldown_seconds=60)
    >>> gate.decide(TaskSignals(now=0, new_examples=5, drift_alerts=["score"])) is None
    True
    >>> gate.decide(TaskSignals(now=1, new_examples=20, drift_alerts=["score"])).kind.value
    'drift'
    >>> gate.fired(now=1, examples=20)
    >>> gate.decide(TaskSignals(now=30, new_examples=600)) is None  # cooldown
    True
    """

    def __init__(self, policies: Sequence[_Policy] | None = None, *, min_examples: int = 32,
                 cooldown_seconds: float = 300.0, max_in_flight: int = 0) -> None:
        if not isinstance(min_examples, int) or min_examples < 1:
            raise ConfigurationError(
                f"min_examples must be a positive integer, got {min_examples!r}")
        if not math.isfinite(cooldown_seconds) or cooldown_seconds < 0:
            raise ConfigurationError(f"cooldown_seconds must be >= 0, got {cooldown_seconds!r}")
        chosen = list(policies) if policies is not None else [
            ManualPolicy(), ChallengePolicy(), DriftPolicy(), MetricPolicy()]
        kinds = [p.kind for p in chosen]
        if len(set(kinds)) != len(kinds):
            raise ConfigurationError(f"one policy per kind, got {[k.value for k in kinds]}")
        self.policies = sorted(chosen, key=lambda p: _PRIORITY.index(p.kind))
        self.min_examples = min_examples
        self.cooldown_seconds = float(cooldown_seconds)
        if not isinstance(max_in_flight, int) or max_in_flight < 0:
            raise ConfigurationError(
                f"max_in_flight must be an integer >= 0, got {max_in_flight!r}")
        self.max_in_flight = max_in_flight
        self._reset()

    def _reset(self) -> None:
        self.started: float | None = None  # a schedule counts from here before any training
        self.last_fired: float | None = None
        self.examples_at_last = 0
        self.fired_count = 0

    def decide(self, signals: TaskSignals) -> TriggerDecision | None:
        if self.started is None:
            self.started = signals.now
        if signals.new_examples < self.min_examples:
            return None
        cooling = (self.last_fired is not None
                   and signals.now - self.last_fired < self.cooldown_seconds) or (
            self.max_in_flight > 0 and signals.in_flight >= self.max_in_flight)
        for policy in self.policies:
            if cooling and policy.kind is not TriggerKind.MANUAL:
                continue
            since = self.last_fired if self.last_fired is not None else self.started
            decision = policy.check(signals, since, self.examples_at_last)
            if decision is not None:
                return decision
        return None

    def fired(self, *, now: float, examples: int) -> None:
        """Record that a training request was sent."""
        self.last_fired = now
        self.examples_at_last = examples
        self.fired_count += 1

    def clone(self) -> TriggerGate:
        return TriggerGate([p.clone() for p in self.policies], **self.get_params())

    def get_params(self) -> dict[str, Any]:
        return {"min_examples": self.min_examples, "cooldown_seconds": self.cooldown_seconds,
                "max_in_flight": self.max_in_flight}
