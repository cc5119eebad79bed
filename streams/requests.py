"""A task's training requests: the signals waiting for its trigger gate, and the requests it
sends when the gate fires, built from the task's replay buffer.

:class:`TrainingRequests` is part of a task's state (:class:`~driftloop.streams.pipeline.
TaskState` holds one): the drift alerts, operator triggers and failing challenges not yet
acted on, the promoted version the next request trains from, and the sequence number that
makes request ids deterministic (``tr-<task>-<seq>``: a state replayed after a crash sends
the same ids again). Under a task's ``adapter_per_domain`` one trigger sends one request per
domain with new examples, each with a sequence number of its own.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from ..schemas.commands import Command
from ..schemas.enums import CommandKind, ExampleOrigin, TaskKind, TriggerKind
from ..schemas.events import TrainingRequest
from ..schemas.settings import TaskSettings, WorkerSettings
from .buffer import ReplayBuffer
from .quality import QualityTracker
from .triggers import (
    ChallengePolicy,
    DriftPolicy,
    ManualPolicy,
    MetricPolicy,
    SchedulePolicy,
    TaskSignals,
    TriggerDecision,
    TriggerGate,
)

__all__ = ["TrainingRequests", "trigger_gate"]


def trigger_gate(worker: WorkerSettings) -> TriggerGate:
    """The trigger gate of one task, with the policies the worker's settings turn on."""
    t = worker.triggers
    policies: list[Any] = [ManualPolicy(), ChallengePolicy()]
    if t.on_drift:
        policies.append(DriftPolicy(min_labels=t.min_examples))
    if t.metric_threshold is not None or t.metric_max_drop is not None:
        policies.append(MetricPolicy(threshold=t.metric_threshold, max_drop=t.metric_max_drop,
                                     min_outcomes=t.metric_min_outcomes))
    if t.every_s is not None or t.every_examples is not None or t.regime_growth is not None:
        policies.append(SchedulePolicy(every_seconds=t.every_s, every_examples=t.every_examples,
                                       growth=t.regime_growth is not None))
    return TriggerGate(policies, min_examples=t.min_examples, cooldown_seconds=t.cooldown_s,
                       max_in_flight=t.max_in_flight)


class TrainingRequests:
    """When one task asks for training, and the requests it sends.

    Examples
    --------
    >>> from collections import Counter
    >>> from driftloop.streams.buffer import LabeledExample
    >>> worker = WorkerSettings(triggers={"min_examples": 1})
    >>> training = TrainingRequests("sentiment", worker, TaskSettings())
    >>> buffer, quality = ReplayBuffer(), QualityTracker()
    >>> _ = buffer.add(LabeledExample("good", "pos"))
    >>> training.check(buffer, quality, Counter(), now=1.0)  # no signal yet
    []
    >>> training.take(Command(id="c1", task="sentiment", kind="trigger"))
    >>> [(r.id, r.trigger.value) for r in training.check(buffer, quality, Counter(), now=2.0)]
    [('tr-sentiment-000001', 'manual')]
    """

    def __init__(self, task: str, worker: WorkerSettings, task_settings: TaskSettings) -> None:
        self.task = task
        self.task_kind = TaskKind(task_settings.kind).value  # plain str: safe to unpickle
        self.labels = list(task_settings.labels) or None
        self.prompt_template_id = task_settings.prompt_template_id
        # One request per domain (see check); the worker refreshes it from the settings on
        # every load, so turning it on applies to states already persisted.
        self.adapter_per_domain = task_settings.adapter_per_domain
        self.buffer_settings = worker.buffer
        self.triggers = worker.triggers
        self.gate = trigger_gate(worker)
        self.sequence = 0
        # The regime: the traffic since the last shift the worker detected (a drift alert,
        # a new domain name). Its labels drive the growth schedule and the drift trigger.
        self.regime = 0
        self.regime_labels = 0
        self.regime_next: int | None = worker.triggers.min_examples
        # Requests sent and not yet answered by the learner: id -> when sent.
        self.in_flight: dict[str, float] = {}
        self.parent_version: str | None = None
        self.pending_drift: list[str] = []
        self.pending_manual: list[str] = []
        self.pending_challenge: list[str] = []

    def take(self, command: Command) -> None:
        """Keep what a (first seen) command means for training: an operator's trigger, a
        failing challenge, or the promoted version the next request trains from."""
        if command.kind is CommandKind.TRIGGER:
            self.pending_manual.append(command.reason or command.id)
        elif command.kind is CommandKind.CHALLENGE:
            self.pending_challenge.append(command.reason or str(command.version))
        elif command.kind is CommandKind.PROMOTED:
            self.parent_version = command.version
        elif command.kind is CommandKind.ANSWERED and command.request is not None:
            self.in_flight.pop(command.request, None)

    def new_regime(self) -> bool:
        """A shift was detected: later interactions belong to a new regime. An alert before
        the current regime gathered one request's worth of labels is the same shift seen by
        another signal: it joins the current regime. True when a new one opened."""
        if self.regime_labels < self.gate.min_examples and self.regime > 0:
            return False
        self.regime += 1
        self.regime_labels = 0
        self.regime_next = self.triggers.min_examples
        return True

    def labelled(self, regime: int) -> None:
        """A new example joined the buffer; ``regime`` is that of its interaction."""
        if regime == self.regime:
            self.regime_labels += 1

    def _grow(self) -> None:
        """After a request: the regime schedule asks again once its labels grew enough."""
        growth = self.triggers.regime_growth
        if growth is None:
            self.regime_next = None
            return
        self.regime_next = max(self.triggers.min_examples, min(
            round(self.regime_labels * growth), self.regime_labels + self.triggers.max_interval))

    def _unanswered(self, now: float) -> int:
        timeout = self.triggers.answer_timeout_s
        self.in_flight = {ident: sent for ident, sent in self.in_flight.items()
                          if now - sent < timeout}
        return len(self.in_flight)

    def check(self, buffer: ReplayBuffer, quality: QualityTracker, counters: Counter[str], *,
              now: float) -> list[TrainingRequest]:
        """Ask the gate; when it fires, the requests to send (their new examples are then
        committed to the buffer's reservoir), counted in ``counters``."""
        signals = TaskSignals(
            now=now, new_examples=buffer.new_count, accuracy=quality.accuracy(),
            baseline=quality.baseline, recent_outcomes=quality.recent_outcomes,
            drift_alerts=tuple(self.pending_drift),
            challenge_failures=tuple(self.pending_challenge),
            manual_requests=tuple(self.pending_manual),
            regime_labels=self.regime_labels, regime_next=self.regime_next,
            in_flight=self._unanswered(now))
        decision = self.gate.decide(signals)
        if decision is None:
            return []
        if getattr(self, "adapter_per_domain", False):  # states pickled before: False
            requests = self._per_domain(buffer, decision, quality, counters, now)
        else:
            request = self._request(buffer, decision, quality, counters, now, domain=None)
            requests = [] if request is None else [request]
        if not requests:
            return []
        self.gate.fired(now=now, examples=sum(len(r.examples) for r in requests))
        self.in_flight.update((r.id, now) for r in requests)
        self._grow()
        counters[f"training_requests_{decision.kind.value}"] += len(requests)
        if decision.kind is TriggerKind.DRIFT or self.pending_drift:
            self.pending_drift = []
        if decision.kind is TriggerKind.MANUAL:
            self.pending_manual = []
        if decision.kind is TriggerKind.CHALLENGE:
            self.pending_challenge = []
        return requests

    def _per_domain(self, buffer: ReplayBuffer, decision: TriggerDecision,
                    quality: QualityTracker, counters: Counter[str],
                    now: float) -> list[TrainingRequest]:
        """One request per domain with new examples: the learner refuses a request whose
        new examples span domains when it keeps an adapter per domain.

        A domain with fewer than ``min_examples`` new examples stays in the buffer for a
        later trigger, unless an operator asked (a manual trigger sends every domain). The
        gate itself still counts the task's new examples of all domains; when no domain
        has enough, nothing is sent and the trigger's signals wait.
        """
        manual = decision.kind is TriggerKind.MANUAL
        domains = [domain for domain, count in buffer.new_domain_counts().items()
                   if manual or count >= self.gate.min_examples]
        requests = []
        for domain in domains:  # sorted by name: the same ids when a replayed state re-fires
            request = self._request(buffer, decision, quality, counters, now, domain=domain)
            if request is not None:
                requests.append(request)
        return requests

    def _request(self, buffer: ReplayBuffer, decision: TriggerDecision,
                 quality: QualityTracker, counters: Counter[str], now: float, *,
                 domain: str | None) -> TrainingRequest | None:
        """Build one request (of one domain's new examples when ``domain`` is given) and
        commit the new examples it was built from; None when there is nothing to send."""
        b = self.buffer_settings
        examples = buffer.build_batch(size=b.batch_size, replay_ratio=b.replay_ratio,
                                      balance=b.balance, curriculum=b.curriculum,
                                      max_bytes=b.batch_max_bytes, domain=domain)
        new = sum(1 for e in examples if e.origin == ExampleOrigin.NEW)
        if not examples and domain is None:
            return None
        if domain is not None and new == 0:
            # Every new example of the domain is larger than a request may be: replayed
            # examples alone would train a lineage the learner picks from their domains.
            # They can never be sent; into the reservoir they go, skipped like any oversize.
            counters["oversized_examples_skipped"] += buffer.new_domain_counts()[domain]
            buffer.commit(domain)
            return None
        self.sequence += 1
        metadata: dict[str, Any] = {
            "new_examples": new, "replayed_examples": len(examples) - new,
            "accuracy": quality.accuracy(), "sequence": self.sequence, "regime": self.regime,
            "regime_labels": self.regime_labels}
        # Per domain, no parent: the learner's ``_parent`` resolves a None parent to the
        # domain's own promoted head (``VersionLog.domain_head``), or a transfer donor for a
        # new domain; the task's last promotion may be another domain's, which it refuses.
        parent = self.parent_version
        if domain is not None:
            metadata["domain"] = domain
            parent = None
        request = TrainingRequest(
            id=f"tr-{self.task}-{self.sequence:06d}", ts=now, task=self.task,
            task_kind=self.task_kind, trigger=decision.kind, reason=decision.reason[:1000],
            parent_version=parent, prompt_template_id=self.prompt_template_id,
            labels=self.labels, examples=examples, metadata=metadata)
        if getattr(b, "resend_until_promoted", False):  # settings pickled before: off
            buffer.carry(domain)  # sent again until a version is promoted
        else:
            buffer.commit(domain)
        return request
