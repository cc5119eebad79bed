"""A/B promotion: a canaried candidate against the head, on the task's live feedback.

Serving answers a share of requests with the task's newest ``candidate`` version (the canary
split, ``serving.canary_fraction``) and stamps each interaction with the ``model_version``
that answered. The worker joins feedback to interactions; each joined label or correction
is an *outcome* (right or wrong) of one version. :class:`CanaryComparison` keeps, per task:

- which version is the head (from ``promoted`` commands) and which candidate is under test
  (from ``candidate`` commands, which carry the candidate's ``model-versions`` event);
- a pairing of outcomes (:class:`~driftloop.streams.pairing.OutcomePairing`): within a
  domain, an outcome of one arm is paired with the newest waiting outcome of the other arm.
  Unpaired outcomes wait, at most ``pair_window`` per domain;
- a :class:`~driftloop.streams.sprt.PairedSPRT` on the pairs, which promotes or rejects.

When the test decides, it returns the status event to publish on ``model-versions``: a copy
of the candidate's event with status ``promoted`` or ``rejected`` and the evidence as reason
(:meth:`~driftloop.schemas.ModelVersion.with_status`, the copy the registry makes too). A
candidate is decided once: the decision is kept in the state (a Faust table with a
changelog), outcomes are counted once per interaction id (duplicate feedback, a second
label of the same interaction), and outcomes of other versions are ignored and counted. A
newer candidate of the task supersedes an undecided one, which is rejected (serving
canaries only the newest, so the older one would get no more traffic). A new head
restarts the test (the comparison is with the head in front of users).
"""

from __future__ import annotations

import logging
from collections import Counter, OrderedDict
from collections.abc import Iterable
from typing import Any

import orjson

from ..schemas.codec import decode
from ..schemas.commands import Command
from ..schemas.enums import CommandKind, VersionStatus
from ..schemas.errors import ValidationError
from ..schemas.events import ModelVersion
from ..schemas.settings import ABTestSettings
from .pairing import OutcomePairing
from .sprt import PairedSPRT, Verdict

__all__ = ["CANARY_COMMAND_KINDS", "CanaryComparison", "Outcome"]

log = logging.getLogger(__name__)

CANARY_COMMAND_KINDS = frozenset({CommandKind.CANDIDATE, CommandKind.PROMOTED,
                                  CommandKind.REJECTED})
Outcome = tuple[str, str, str, bool]
"""(interaction id, domain, model version, right?) of one joined label or correction."""
_DECISIONS_REMEMBERED = 1000


def _candidate_event(task: str, command: Command) -> ModelVersion | None:
    """The ``candidate`` event a command carries, when it is one of ``task``'s candidates."""
    try:
        event = decode(orjson.dumps(command.event), ModelVersion)
    except (ValidationError, TypeError) as exc:
        log.warning("%s: candidate command %s carries no valid event: %s", task, command.id,
                    exc)
        return None
    if (event.task != task or event.version_id != command.version
            or event.status is not VersionStatus.CANDIDATE):
        log.warning("%s: candidate command %s carries the %s event of %s/%s", task,
                    command.id, event.status.value, event.task, event.version_id)
        return None
    return event


class CanaryComparison:
    """The A/B test state of one task (``canary|<task>`` in the worker's ``worker-state`` table).

    Parameters
    ----------
    task
        The task tested.
    alpha, beta, odds_ratio, min_samples, max_samples
        The :class:`~driftloop.streams.sprt.PairedSPRT` of each candidate.
    pair_window
        Unpaired outcomes kept per domain (the oldest go first).

    Examples
    --------
    >>> from driftloop.schemas import ModelVersion, encode
    >>> from driftloop.streams.commands import commands_from_version
    >>> def event(version, status):
    ...     return ModelVersion(version_id=version, ts=1.0, task="t", base_model="m",
    ...                         adapter_uri=f"file:///a/{version}", sha256="0" * 64,
    ...                         size_bytes=1, status=status)
    >>> ab = CanaryComparison("t", min_samples=5)
    >>> for e in (event("v1", "promoted"), event("v2", "candidate")):
    ...     for command in commands_from_version(e, challenge_min_score=None, candidates=True):
    ...         _ = ab.on_command(command, now=2.0)
    >>> ab.head, ab.candidate
    ('v1', 'v2')
    >>> outcomes = [(f"i{n}", "news", "v2" if n % 2 else "v1", n % 2 == 1) for n in range(40)]
    >>> [(e.version_id, e.status.value) for e in ab.on_outcomes(outcomes, now=3.0)]
    [('v2', 'promoted')]
    >>> ab.on_outcomes(outcomes, now=4.0), ab.decided["v2"]
    ([], 'promote')
    """

    def __init__(self, task: str, *, alpha: float = 0.05, beta: float = 0.2,
                 odds_ratio: float = 1.5, min_samples: int = 20, max_samples: int = 2000,
                 pair_window: int = 32) -> None:
        OutcomePairing(pair_window)  # invalid settings fail here, not at the first test
        self.task = task
        self.alpha, self.beta, self.odds_ratio = alpha, beta, odds_ratio
        self.min_samples, self.max_samples = min_samples, max_samples
        self.pair_window = pair_window
        PairedSPRT(**self._test_params())  # likewise
        self._reset()

    @classmethod
    def from_settings(cls, task: str, settings: ABTestSettings) -> CanaryComparison:
        return cls(task, alpha=settings.alpha, beta=settings.beta,
                   odds_ratio=settings.odds_ratio, min_samples=settings.min_samples,
                   max_samples=settings.max_samples, pair_window=settings.pair_window)

    def _test_params(self) -> dict[str, Any]:
        return {"alpha": self.alpha, "beta": self.beta, "odds_ratio": self.odds_ratio,
                "min_samples": self.min_samples, "max_samples": self.max_samples}

    def _reset(self) -> None:
        self.head: str | None = None
        self.candidate: str | None = None
        self.candidate_event: dict[str, Any] | None = None
        self.test: PairedSPRT | None = None
        self.last_summary = ""
        self.decided: OrderedDict[str, str] = OrderedDict()
        """Version -> what ended its test (a verdict, or "promoted"/"rejected" elsewhere)."""
        self.counters: Counter[str] = Counter()
        self.pairing = OutcomePairing(self.pair_window)
        self._changed = False

    # -- commands ----------------------------------------------------------------------------
    def on_command(self, command: Command, *, now: float) -> list[ModelVersion]:
        """Apply a ``candidate``, ``promoted`` or ``rejected`` command (idempotent); return
        status events to publish (the rejection of a superseded candidate)."""
        if command.task != self.task or command.version is None:
            self.counters["commands_ignored"] += 1
            return []
        version = command.version
        if command.kind is CommandKind.PROMOTED:
            self._end(version, VersionStatus.PROMOTED.value)
            if version != self.head:
                self.head = version
                self._changed = True
                if self.test is not None:
                    self._restart("a new head")
            return []
        if command.kind is CommandKind.REJECTED:
            self._end(version, VersionStatus.REJECTED.value)
            return []
        if command.kind is CommandKind.CANDIDATE:
            return self._start(command, now)
        self.counters["commands_ignored"] += 1
        return []

    def _start(self, command: Command, now: float) -> list[ModelVersion]:
        version = command.version
        if version in self.decided or version == self.candidate or version == self.head:
            # A replayed log or a redelivered command: already tested or testing.
            self.counters["candidates_replayed"] += 1
            self._changed = True
            return []
        event = _candidate_event(self.task, command)
        if event is None:
            self.counters["bad_candidates"] += 1
            return []
        published = []
        if self.candidate is not None:
            superseded = self.candidate
            self.last_summary = self.test.summary() if self.test else ""
            published.append(self._decision_event(
                VersionStatus.REJECTED, now,
                f"superseded by candidate {version} before its A/B test decided "
                f"({self.last_summary})"))
            self._forget(superseded, "superseded")
        self.candidate = version
        self.candidate_event = orjson.loads(orjson.dumps(command.event))
        self.test = PairedSPRT(**self._test_params())
        self.pairing = OutcomePairing(self.pair_window)
        self._changed = True
        self.counters["candidates"] += 1
        log.info("%s: A/B test of candidate %s against %s started", self.task, version,
                 self.head)
        return published

    def _end(self, version: str, why: str) -> None:
        """Another writer (the learner, an operator, this worker) decided ``version``."""
        if version == self.candidate:
            self.last_summary = self.test.summary() if self.test else ""
            self._forget(version, why)
            log.info("%s: A/B test of %s ended: %s elsewhere", self.task, version, why)

    def _forget(self, version: str, why: str) -> None:
        self.decided[version] = why
        while len(self.decided) > _DECISIONS_REMEMBERED:
            self.decided.popitem(last=False)
        self.candidate = self.candidate_event = self.test = None
        self.pairing = OutcomePairing(self.pair_window)
        self._changed = True

    def _restart(self, why: str) -> None:
        self.counters["restarts"] += 1
        self.test = PairedSPRT(**self._test_params())
        self.pairing = OutcomePairing(self.pair_window)
        log.info("%s: A/B test of %s restarted against %s: %s", self.task, self.candidate,
                 self.head, why)

    # -- outcomes ----------------------------------------------------------------------------
    def on_outcomes(self, outcomes: Iterable[Outcome], *, now: float) -> list[ModelVersion]:
        """Pair and test outcomes; return the decision event when the test decides."""
        test = self.test
        if test is None:
            return []
        candidate, head, counters = self.candidate, self.head, self.counters
        for interaction_id, domain, version, correct in outcomes:
            if version != candidate and (version != head or head is None):
                counters["outcomes_other_version"] += 1
                continue
            taken, pair = self.pairing.add(interaction_id, domain,
                                           candidate=version == candidate, correct=correct)
            counters[f"outcomes_{taken}"] += 1
            if taken == "duplicate":
                continue
            self._changed = True
            if pair is not None:
                test.update(*pair)
                if test.verdict is not None:
                    return [self._decide(test, now)]
        return []

    def _decide(self, test: PairedSPRT, now: float) -> ModelVersion:
        assert self.candidate is not None and test.verdict is not None
        self.last_summary = test.summary()
        status = (VersionStatus.PROMOTED if test.verdict is Verdict.PROMOTE
                  else VersionStatus.REJECTED)
        event = self._decision_event(status, now, f"{self.last_summary} (against {self.head})")
        self.counters[f"decisions_{test.verdict.value}"] += 1
        log.info("%s: %s %s: %s", self.task, test.verdict.value, self.candidate,
                 self.last_summary)
        self._forget(self.candidate, test.verdict.value)
        return event

    def _decision_event(self, status: VersionStatus, now: float, reason: str) -> ModelVersion:
        assert self.candidate_event is not None
        event = decode(orjson.dumps(self.candidate_event), ModelVersion)
        return event.with_status(status, ts=now, reason=reason[:4000])

    # -- persistence -------------------------------------------------------------------------
    def take_changed(self) -> bool:
        """True once after a change that must be written to the table."""
        changed, self._changed = self._changed, False
        return changed

    @property
    def waiting(self) -> int:
        """Outcomes waiting for a partner."""
        return self.pairing.waiting

    def clone(self) -> CanaryComparison:
        return CanaryComparison(self.task, **self.get_params())

    def get_params(self) -> dict[str, Any]:
        return {**self._test_params(), "pair_window": self.pair_window}

