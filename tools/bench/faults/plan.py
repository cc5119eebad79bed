"""What a fault scenario runs (:class:`FaultPlan`) and what it found (:class:`ScenarioResult`)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from ...ops.accounting import Ledger
from .rig import Traffic

__all__ = ["FaultPlan", "ScenarioResult"]


@dataclass(frozen=True, slots=True)
class FaultPlan:
    """Sizes of a run (``quick`` for the test suite, the default for the bench).

    >>> plan = FaultPlan.named(quick=True)
    >>> plan.kills, plan.traffic().events, len(plan.traffic().messages())
    (2, 3000, 300)
    """

    events: int = 12_000
    batch: int = 10  # events per message
    rate: float = 20.0  # messages per second: the stream lasts events / batch / rate seconds
    kills: int = 4
    requests: int = 3
    outage_s: float = 5.0
    seed: int = 0
    write_gap_s: float = 0.0
    """The worker's pause after each state record (a test hook, streams/write_gap.py): kills
    then land in the middle of a step's writes more often."""

    @classmethod
    def named(cls, quick: bool, seed: int = 0) -> FaultPlan:
        if quick:
            return cls(events=3_000, rate=15.0, kills=2, requests=2, outage_s=3.0, seed=seed)
        return cls(seed=seed)

    def with_kills(self, kills: int) -> FaultPlan:
        """The plan with ``kills`` worker kills, the stream lengthened to keep as many events
        per kill (a worker restarts in seconds: kills closer than that would find it idle).

        >>> plan = FaultPlan().with_kills(50)
        >>> plan.kills, plan.events
        (50, 150000)
        """
        per_kill = self.events // self.kills
        return replace(self, kills=kills, events=max(self.events, per_kill * kills))

    def traffic(self, offset: int = 0) -> Traffic:
        return Traffic(events=self.events, batch=self.batch, rate=self.rate,
                       seed=self.seed + offset)


@dataclass(slots=True)
class ScenarioResult:
    """What one scenario did and what the accounting found."""

    name: str
    ledger: Ledger
    faults: int
    recovery_s: list[float] = field(default_factory=list)
    unplanned_restarts: int = 0
    seconds: float = 0.0
    not_run: str | None = None
    """Why the scenario could not run on this machine (it then fails nothing)."""

    @property
    def ok(self) -> bool:
        return self.not_run is not None or self.ledger.ok

    def row(self) -> dict[str, object]:
        ledger = self.ledger
        return {"scenario": self.name, "faults": self.faults,
                "produced": ledger.produced_total, "processed": ledger.processed_total,
                "dead_lettered": ledger.dead_lettered, "lost": ledger.lost,
                "double_counted": ledger.double_counted,
                "labels_lost": ledger.labels_lost, "labels_twice": ledger.labels_twice,
                "training_requests": ledger.training_requests,
                "unanswered_requests": len(ledger.unanswered_requests),
                "duplicate_versions": len(ledger.duplicate_versions),
                "recovery_s_max": round(max(self.recovery_s), 2) if self.recovery_s else None,
                "unplanned_restarts": self.unplanned_restarts,
                "seconds": round(self.seconds, 1), "ok": self.ok,
                "not_run": self.not_run, "problems": ledger.problems()}
