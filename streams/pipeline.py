"""The per-task state of the worker and what one batch of events does to it.

:class:`TaskState` holds a task's drift monitors, quality, active-learning budget, trigger
gate, counters and sequence numbers; it is one table value (pickled, with a changelog).
The join window and the replay buffer are passed in (they are persisted in tables of their
own, written only when they change). Nothing here knows Faust or Kafka: the agents decode
messages, call :meth:`TaskState.on_interactions` / :meth:`TaskState.on_feedback`, publish
the returned :class:`Effects` and write the state back.

Effects are idempotent under redelivery: ids derive from the task and a sequence number kept
in the state (``tr-<task>-<seq>``, ``drift-<task>-<seq>``) or from the interaction id
(``lr-<interaction id>``), and a message whose offset the state has already applied is
skipped (:meth:`TaskState.seen`). Under a task's ``adapter_per_domain`` a trigger sends one
training request per domain with new examples, each with a sequence number of its own.
"""

from __future__ import annotations

from collections import Counter, OrderedDict, defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..schemas.enums import FeedbackKind, LabelRequestReason, TaskKind, TriggerKind
from ..schemas.events import DriftAlert, Feedback, Interaction, LabelRequest, TrainingRequest
from ..schemas.settings import TaskSettings, WorkerSettings
from .active import ActiveSampler, probability_matrix
from .buffer import LabeledExample, ReplayBuffer
from .commands import Command
from .detectors import DriftMonitor
from .drift import DriftWatch
from .join import JoinedPair, JoinWindow
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

__all__ = ["Effects", "TaskState", "new_buffer", "new_drift_watch", "new_join_window"]

STATE_VERSION = 1
_REASONS = {"least_confidence": LabelRequestReason.UNCERTAINTY,
            "margin": LabelRequestReason.MARGIN, "entropy": LabelRequestReason.ENTROPY}
# Automatic labels are cheaper and noisier than a person's.
_SOURCE_WEIGHT = {"user": 1.0, "reviewer": 1.0, "auto": 0.5}
_COMMANDS_REMEMBERED = 1000


@dataclass(slots=True)
class Effects:
    """What one batch asks the worker to publish."""

    drift_alerts: list[DriftAlert] = field(default_factory=list)
    label_requests: list[LabelRequest] = field(default_factory=list)
    training_requests: list[TrainingRequest] = field(default_factory=list)
    buffer_changed: bool = False
    # (interaction id, domain, model version, correct) of each joined label or correction:
    # what the A/B test of a canaried candidate reads (see streams/canary.py).
    outcomes: list[tuple[str, str, str, bool]] = field(default_factory=list)

    def extend(self, other: Effects) -> None:
        self.drift_alerts += other.drift_alerts
        self.label_requests += other.label_requests
        self.training_requests += other.training_requests
        self.buffer_changed |= other.buffer_changed
        self.outcomes += other.outcomes


def new_join_window(worker: WorkerSettings) -> JoinWindow:
    return JoinWindow(window_seconds=worker.join.window_s, max_entries=worker.join.max_entries)


def new_buffer(worker: WorkerSettings) -> ReplayBuffer:
    b = worker.buffer
    return ReplayBuffer(capacity=b.capacity, max_new=b.max_new, max_bytes=b.max_bytes,
                        seed=b.seed)


def _gate(worker: WorkerSettings) -> TriggerGate:
    t = worker.triggers
    policies: list[Any] = [ManualPolicy(), ChallengePolicy()]
    if t.on_drift:
        policies.append(DriftPolicy())
    if t.metric_threshold is not None or t.metric_max_drop is not None:
        policies.append(MetricPolicy(threshold=t.metric_threshold, max_drop=t.metric_max_drop,
                                     min_outcomes=t.metric_min_outcomes))
    if t.every_s is not None or t.every_examples is not None:
        policies.append(SchedulePolicy(every_seconds=t.every_s, every_examples=t.every_examples))
    return TriggerGate(policies, min_examples=t.min_examples, cooldown_seconds=t.cooldown_s)


def _monitor(worker: WorkerSettings) -> DriftMonitor:
    d = worker.drift
    params: dict[str, Any] = {}
    if d.detector == "page_hinkley":
        params = {"threshold": d.threshold, "delta": d.delta, "min_instances": 5, "alpha": 1.0}
    elif d.detector == "adwin":
        params = {"delta": d.adwin_delta, "clock": 1}
    return DriftMonitor(detector=d.detector, params=params, block_size=d.block_size,
                        warmup_blocks=d.warmup_blocks, min_effect=d.min_effect,
                        cooldown_blocks=d.cooldown_blocks, seed=d.seed)


def new_drift_watch(worker: WorkerSettings) -> DriftWatch:
    """The drift monitors of one task, as the worker's settings configure them."""
    return DriftWatch(monitor=_monitor(worker), projections=worker.drift.projections,
                      centroid_events=worker.drift.centroid_events, seed=worker.drift.seed)


class _Lazy:
    """``events[picked[i]].<attr>`` on demand: the sampler reads only the rows it chooses."""

    def __init__(self, events: list[Interaction], picked: list[int], attr: str) -> None:
        self.events, self.picked, self.attr = events, picked, attr

    def __len__(self) -> int:
        return len(self.picked)

    def __getitem__(self, index: int) -> str:
        return getattr(self.events[self.picked[index]], self.attr)


class TaskState:
    """Everything the worker remembers about one task, except its join window and buffer.

    Examples
    --------
    >>> from driftloop.schemas.settings import WorkerSettings
    >>> from driftloop.schemas import Interaction, Feedback
    >>> worker = WorkerSettings(triggers={"min_examples": 1})
    >>> state = TaskState("sentiment", worker, TaskSettings())
    >>> join, buffer = new_join_window(worker), new_buffer(worker)
    >>> fb = Feedback(id="f1", interaction_id="i1", ts=1, task="sentiment", kind="label",
    ...               value="pos")
    >>> state.on_feedback([fb], join=join, buffer=buffer, bucket="fb:0:0", now=1.0).buffer_changed
    False
    >>> ix = Interaction(id="i1", ts=0, task="sentiment", model_version="v1", input="good",
    ...                  prediction="neg", scores={"confidence": 0.55})
    >>> effects = state.on_interactions([ix], join=join, buffer=buffer, bucket="ix:0:0", now=2.0)
    >>> effects.buffer_changed, state.counters["joined"], state.quality.accuracy()
    (True, 1, 0.0)
    >>> state.on_command(Command(id="c1", task="sentiment", kind="trigger"), now=3.0)
    True
    >>> [r.trigger.value for r in state.check_triggers(buffer, now=3.0)]
    ['manual']
    """

    def __init__(self, task: str, worker: WorkerSettings, task_settings: TaskSettings) -> None:
        self.version = STATE_VERSION
        self.task = task
        self.task_kind = TaskKind(task_settings.kind).value  # plain str: safe to unpickle
        self.labels = list(task_settings.labels) or None
        self.prompt_template_id = task_settings.prompt_template_id
        # One request per domain (see check_triggers); the worker refreshes it from the
        # settings on every load, so turning it on applies to states already persisted.
        self.adapter_per_domain = task_settings.adapter_per_domain
        self.buffer_settings = worker.buffer
        self.drift = new_drift_watch(worker)
        self.quality = QualityTracker(window=worker.triggers.quality_window)
        a = worker.active
        self.sampler = ActiveSampler(strategy=a.strategy, threshold=a.threshold,
                                     budget=a.budget, window_seconds=a.window_s)
        self.gate = _gate(worker)
        self.challenge_min_score = worker.triggers.challenge_min_score
        self.counters: Counter[str] = Counter()
        self.domain_counts: Counter[str] = Counter()
        self.applied: dict[str, int] = {}
        self.training_seq = 0
        self.alert_seq = 0
        self.parent_version: str | None = None
        self.pending_drift: list[str] = []
        self.pending_manual: list[str] = []
        self.pending_challenge: list[str] = []
        self.commands_seen: OrderedDict[str, None] = OrderedDict()
        self.last_event_ts = 0.0

    # -- redelivery ----------------------------------------------------------------------
    def seen(self, topic: str, partition: int, offset: int) -> bool:
        """True when this message was already applied (a redelivery after a crash or a
        rebalance); otherwise records it as applied."""
        key = f"{topic}:{partition}"
        if offset <= self.applied.get(key, -1):
            self.counters["redelivered_skipped"] += 1
            return True
        self.applied[key] = offset
        return False

    # -- interactions ----------------------------------------------------------------------
    def on_interactions(self, events: list[Interaction], *, join: JoinWindow,
                        buffer: ReplayBuffer, bucket: str, now: float) -> Effects:
        effects = Effects()
        # One pass over the events; everything after it works on arrays.
        domains: list[str] = []
        confidences: list[float] = []
        probabilities: list[dict[str, float] | None] = []
        entries = []
        add_domain, add_conf = domains.append, confidences.append
        add_probs, add_entry = probabilities.append, entries.append
        last_ts = self.last_event_ts
        nan = float("nan")
        for event in events:
            scores = event.scores
            probs = scores.probabilities or None
            conf = scores.confidence
            if conf is None and probs:
                conf = max(probs.values())
            domain, ts = event.domain, event.ts
            add_domain(domain)
            add_conf(nan if conf is None else conf)
            add_probs(probs)
            add_entry({"id": event.id, "ts": ts, "input": event.input,
                       "prediction": event.prediction, "output": event.output,
                       "confidence": conf, "domain": domain,
                       "model_version": event.model_version})
            if ts > last_ts:
                last_ts = ts
        self.last_event_ts = last_ts
        self.counters["interactions"] += len(events)
        conf_array = np.asarray(confidences, dtype=np.float64)
        groups: dict[str, list[int]] = defaultdict(list)
        if len(set(domains)) == 1:
            groups[domains[0]] = list(range(len(events)))
        else:
            for index, domain in enumerate(domains):
                groups[domain].append(index)
        for domain, indices in groups.items():
            self.domain_counts[domain] += len(indices)
            self._drift_on_interactions(domain, [events[i] for i in indices],
                                        conf_array[indices], effects, now)
        self._sample(events, conf_array, probabilities, effects, now)
        pairs = join.add_interactions(bucket, entries)
        self._count_expired(join)
        self._on_pairs(pairs, buffer, effects, now)
        effects.training_requests += self.check_triggers(buffer, now=now)
        return effects

    def _drift_on_interactions(self, domain: str, group: list[Interaction],
                               confidences: np.ndarray, effects: Effects, now: float) -> None:
        vectors = [e.embedding for e in group if e.embedding is not None]
        embeddings = None
        if vectors:
            try:
                embeddings = np.asarray(vectors, dtype=np.float64)
            except ValueError:  # mixed sizes (no size configured for the task): not drift
                embeddings = None
            if embeddings is not None and embeddings.ndim != 2:
                embeddings = None
        findings = self.drift.update(domain, confidences=confidences[np.isfinite(confidences)],
                                     embeddings=embeddings)
        self._alerts(findings, group[-1].model_version, effects, now)

    def _alerts(self, findings: list[Any], model_version: str | None, effects: Effects,
                now: float) -> None:
        for finding in findings:
            self.alert_seq += 1
            self.counters[f"drift_alerts_{finding.signal.value}"] += 1
            self.pending_drift.append(f"{finding.domain}/{finding.signal.value}")
            effects.drift_alerts.append(DriftAlert(
                id=f"drift-{self.task}-{self.alert_seq:06d}", ts=now, task=self.task,
                domain=finding.domain, signal=finding.signal,
                detector=finding.detection.detector, model_version=model_version,
                events_seen=self.drift.domain(finding.domain).events,
                statistics=finding.statistics()))

    def _sample(self, events: list[Interaction], confidences: np.ndarray,
                probabilities: list[dict[str, float] | None], effects: Effects,
                now: float) -> None:
        if self.sampler.remaining <= 0 and self.sampler.window_of(now) == self.sampler.window:
            return  # budget spent for this window: skip the scoring altogether
        known = np.flatnonzero(np.isfinite(confidences))
        if known.size == 0:
            return
        with_probs = [i for i in known.tolist() if probabilities[i] is not None]
        if not with_probs:
            c = confidences[known]
            # Confidence only: the model's two-way view [c, 1 - c], sorted high to low.
            matrix = np.column_stack([np.maximum(c, 1.0 - c), np.minimum(c, 1.0 - c)])
        else:
            rows = [list(probabilities[i].values()) if probabilities[i] is not None  # type: ignore[union-attr]
                    else [confidences[i], 1.0 - confidences[i]] for i in known.tolist()]
            matrix = probability_matrix(rows)
        picked = known.tolist()
        chosen = self.sampler.select(_Lazy(events, picked, "id"), _Lazy(events, picked, "input"),
                                     matrix, now=now)
        reason = _REASONS[self.sampler.strategy]
        for index, priority in chosen:
            event = events[picked[index]]
            effects.label_requests.append(LabelRequest(
                id=f"lr-{event.id}", ts=now, task=self.task, domain=event.domain,
                interaction=event, reason=reason, priority=min(max(priority, 0.0), 1.0),
                score=priority))
        self.counters["label_requests"] += len(chosen)

    # -- feedback ----------------------------------------------------------------------------
    def on_feedback(self, events: list[Feedback], *, join: JoinWindow, buffer: ReplayBuffer,
                    bucket: str, now: float) -> Effects:
        effects = Effects()
        self.counters["feedback"] += len(events)
        entries = [{"id": e.id, "interaction_id": e.interaction_id, "ts": e.ts,
                    "kind": e.kind.value, "value": e.value, "source": e.source.value}
                   for e in events]
        pairs = join.add_feedback(bucket, entries)
        self._count_expired(join)
        self._on_pairs(pairs, buffer, effects, now)
        effects.training_requests += self.check_triggers(buffer, now=now)
        return effects

    def _count_expired(self, join: JoinWindow) -> None:
        # Feedback that left the window unjoined is counted, never dropped silently.
        expired = join.take_expired_feedback()
        if expired:
            self.counters["feedback_expired"] += expired

    def _on_pairs(self, pairs: list[JoinedPair], buffer: ReplayBuffer, effects: Effects,
                  now: float) -> None:
        if not pairs:
            return
        errors: dict[str, list[float]] = defaultdict(list)
        model_version: str | None = None
        for pair in pairs:
            ix, fb = pair.interaction, pair.feedback
            domain, model_version = ix["domain"], ix["model_version"]
            self.counters["joined"] += 1
            if fb["kind"] == FeedbackKind.RATING:
                self.quality.record_rating(domain, model_version, float(fb["value"]))
                continue
            said = ix["prediction"] if fb["kind"] == FeedbackKind.LABEL else ix["output"]
            if said is None:
                said = ix["prediction"] if ix["prediction"] is not None else ix["output"]
            correct = said == fb["value"]
            self.quality.record_outcome(domain, model_version, correct)
            effects.outcomes.append((ix["id"], domain, model_version, correct))
            errors[domain].append(0.0 if correct else 1.0)
            confidence = ix["confidence"]
            example = LabeledExample(
                input=ix["input"], target=str(fb["value"]), domain=domain,
                weight=_SOURCE_WEIGHT.get(fb["source"], 1.0),
                difficulty=None if confidence is None else round(1.0 - confidence, 6),
                interaction_id=ix["id"], model_answer=said, feedback_kind=fb["kind"])
            if buffer.add(example):
                self.counters["examples"] += 1
                effects.buffer_changed = True
        for domain, bits in errors.items():
            findings = self.drift.update(domain, errors=np.asarray(bits))
            self._alerts(findings, model_version, effects, now)

    # -- commands ----------------------------------------------------------------------------
    def on_command(self, command: Command, *, now: float) -> bool:
        """Apply an operator or registry command once; False when already seen."""
        if command.kind == "tick":
            # Only a reason to check the triggers: recording thousands of ticks would push
            # real command ids out of the bounded memory below.
            self.counters["commands_tick"] += 1
            return True
        if command.id in self.commands_seen:
            return False
        self.commands_seen[command.id] = None
        while len(self.commands_seen) > _COMMANDS_REMEMBERED:
            self.commands_seen.popitem(last=False)
        self.counters[f"commands_{command.kind}"] += 1
        if command.kind == "trigger":
            self.pending_manual.append(command.reason or command.id)
        elif command.kind == "challenge":
            self.pending_challenge.append(command.reason or str(command.version))
        elif command.kind == "promoted":
            self.parent_version = command.version
            self.quality.reset_baseline()
        return True

    # -- triggers ----------------------------------------------------------------------------
    def check_triggers(self, buffer: ReplayBuffer, *, now: float) -> list[TrainingRequest]:
        signals = TaskSignals(
            now=now, new_examples=buffer.new_count, accuracy=self.quality.accuracy(),
            baseline=self.quality.baseline, recent_outcomes=self.quality.recent_outcomes,
            drift_alerts=tuple(self.pending_drift),
            challenge_failures=tuple(self.pending_challenge),
            manual_requests=tuple(self.pending_manual))
        decision = self.gate.decide(signals)
        if decision is None:
            return []
        if getattr(self, "adapter_per_domain", False):  # states pickled before: False
            requests = self._per_domain_requests(buffer, decision, now)
        else:
            request = self._request(buffer, decision, now, domain=None)
            requests = [] if request is None else [request]
        if not requests:
            return []
        self.gate.fired(now=now, examples=sum(len(r.examples) for r in requests))
        self.counters[f"training_requests_{decision.kind.value}"] += len(requests)
        if decision.kind is TriggerKind.DRIFT or self.pending_drift:
            self.pending_drift = []
        if decision.kind is TriggerKind.MANUAL:
            self.pending_manual = []
        if decision.kind is TriggerKind.CHALLENGE:
            self.pending_challenge = []
        return requests

    def _per_domain_requests(self, buffer: ReplayBuffer, decision: TriggerDecision,
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
            request = self._request(buffer, decision, now, domain=domain)
            if request is not None:
                requests.append(request)
        return requests

    def _request(self, buffer: ReplayBuffer, decision: TriggerDecision, now: float, *,
                 domain: str | None) -> TrainingRequest | None:
        """Build one request (of one domain's new examples when ``domain`` is given) and
        commit the new examples it was built from; None when there is nothing to send."""
        b = self.buffer_settings
        examples = buffer.build_batch(size=b.batch_size, replay_ratio=b.replay_ratio,
                                      balance=b.balance, curriculum=b.curriculum,
                                      max_bytes=b.batch_max_bytes, domain=domain)
        new = sum(1 for e in examples if e.origin.value == "new")
        if not examples and domain is None:
            return None
        if domain is not None and new == 0:
            # Every new example of the domain is larger than a request may be: replayed
            # examples alone would train a lineage the learner picks from their domains.
            # They can never be sent; into the reservoir they go, skipped like any oversize.
            self.counters["oversized_examples_skipped"] += buffer.new_domain_counts()[domain]
            buffer.commit(domain)
            return None
        self.training_seq += 1
        metadata: dict[str, Any] = {
            "new_examples": new, "replayed_examples": len(examples) - new,
            "accuracy": self.quality.accuracy(), "sequence": self.training_seq}
        # Per domain, no parent: the learner's ``_parent`` resolves a None parent to the
        # domain's own promoted head (``VersionLog.domain_head``), or a transfer donor for a
        # new domain; the task's last promotion may be another domain's, which it refuses.
        parent = self.parent_version
        if domain is not None:
            metadata["domain"] = domain
            parent = None
        request = TrainingRequest(
            id=f"tr-{self.task}-{self.training_seq:06d}", ts=now, task=self.task,
            task_kind=self.task_kind, trigger=decision.kind, reason=decision.reason[:1000],
            parent_version=parent, prompt_template_id=self.prompt_template_id,
            labels=self.labels, examples=examples, metadata=metadata)
        buffer.commit(domain)
        return request
