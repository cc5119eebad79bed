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
skipped (:meth:`TaskState.seen`). What the trigger gate sends is built by the state's
:class:`~driftloop.streams.requests.TrainingRequests`; which interactions become label
requests is :func:`~driftloop.streams.active.label_requests`.
"""

from __future__ import annotations

import logging
from collections import Counter, OrderedDict, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..schemas.commands import Command
from ..schemas.enums import CommandKind, FeedbackKind, FeedbackSource
from ..schemas.events import DriftAlert, Feedback, Interaction, LabelRequest, TrainingRequest
from ..schemas.settings import TaskSettings, WorkerSettings
from .active import ActiveSampler, label_requests
from .buffer import LabeledExample, ReplayBuffer
from .detectors import DriftMonitor
from .drift import DriftWatch
from .join import JoinedPair, JoinWindow
from .quality import QualityTracker
from .requests import TrainingRequests
from .shifts import ShiftAlerts

if TYPE_CHECKING:
    from .redo import StepRedo

__all__ = ["Effects", "TaskState", "new_buffer", "new_drift_watch", "new_join_window"]

STATE_VERSION = 3  # 2: the training side moved into TaskState.training; 3: regimes, shifts
# Automatic labels are cheaper and noisier than a person's (a reviewer's weighs
# worker.buffer.reviewer_weight, see TaskState.reviewer_weight).
_SOURCE_WEIGHT = {FeedbackSource.USER: 1.0, FeedbackSource.AUTO: 0.5}
_COMMANDS_REMEMBERED = 1000
_MANY_DOMAINS = 64  # domains of one task before the worker warns (see _warn_many_domains)

log = logging.getLogger(__name__)


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


def _monitor(worker: WorkerSettings) -> DriftMonitor:
    d = worker.drift
    params: dict[str, Any] = {}
    if d.detector == "cusum":
        params = {"threshold": d.threshold, "delta": d.delta}
    elif d.detector == "page_hinkley":
        params = {"threshold": d.threshold, "delta": d.delta, "min_instances": 5, "alpha": 1.0}
    elif d.detector == "adwin":
        params = {"delta": d.adwin_delta, "clock": 1}
    return DriftMonitor(detector=d.detector, params=params, block_size=d.block_size,
                        warmup_blocks=d.warmup_blocks,
                        reference_blocks=max(d.reference_blocks, d.warmup_blocks),
                        min_effect=d.min_effect, cooldown_blocks=d.cooldown_blocks, seed=d.seed)


def new_drift_watch(worker: WorkerSettings) -> DriftWatch:
    """The drift monitors of one task, as the worker's settings configure them."""
    return DriftWatch(monitor=_monitor(worker), projections=worker.drift.projections,
                      centroid_events=worker.drift.centroid_events, seed=worker.drift.seed,
                      input_features=worker.drift.input_features)


def _revision(feedback: Feedback) -> int:
    """Which change of a reviewer's answer ``feedback`` is: 0 for a first answer, n for
    feedback that ``revises`` an earlier one (review/answers.py writes both keys).

    >>> from driftloop.schemas import Feedback
    >>> _revision(Feedback(id="f.2", interaction_id="i", ts=0, task="t", kind="label",
    ...                    value="neg", metadata={"revises": "f.1", "revision": 2}))
    2
    >>> _revision(Feedback(id="f", interaction_id="i", ts=0, task="t", kind="label",
    ...                    value="neg", metadata={"revision": "2"}))
    0
    """
    revision = feedback.metadata.get("revision")
    if "revises" not in feedback.metadata or type(revision) is not int or revision < 0:
        return 0
    return revision


def _warn_many_domains(task: str, count: int) -> None:
    """Say so when a task reaches 64, 128, 256... domains: each has drift monitors in the
    task state, which every step writes (about 4 KB a domain)."""
    if count >= _MANY_DOMAINS and count & (count - 1) == 0:
        log.warning("task %r has seen %d domains: each keeps drift monitors in the task's "
                    "state, which every step writes (about %d KB now); name domains that "
                    "shift together, not one per customer", task, count, count * 4)


def _by_domain(domains: list[str]) -> dict[str, list[int]]:
    """The positions of each domain's events in a batch (most batches hold one domain)."""
    groups: dict[str, list[int]] = defaultdict(list)
    if len(set(domains)) == 1:
        groups[domains[0]] = list(range(len(domains)))
    else:
        for index, domain in enumerate(domains):
            groups[domain].append(index)
    return groups


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
    >>> [r.trigger.value for r in effects.training_requests]  # the regime's first label
    ['schedule']
    """

    step_seq: int = 0
    """Steps written (:mod:`~driftloop.streams.step`); class defaults for older pickles."""
    redo: StepRedo | None = None
    """What the last step wrote besides this state (:mod:`~driftloop.streams.redo`)."""
    slice_keys: tuple[str, ...] = ()
    """The task's ``slice_keys`` (set from the settings whenever the state is read)."""
    reviewer_weight: float = 1.0
    """``worker.buffer.reviewer_weight`` (set from the settings whenever the state is read)."""
    max_domains: int = 128
    """``worker.max_domains`` (set from the settings whenever the state is read)."""
    overflow_domain: str = "other"
    """``worker.overflow_domain`` (set from the settings whenever the state is read)."""

    def __init__(self, task: str, worker: WorkerSettings, task_settings: TaskSettings) -> None:
        self.version = STATE_VERSION
        self.task = task
        self.drift = new_drift_watch(worker)
        self.shifts = ShiftAlerts(task, self.drift)
        self.quality = QualityTracker(window=worker.triggers.quality_window)
        a = worker.active
        self.sampler = ActiveSampler(strategy=a.strategy, threshold=a.threshold,
                                     budget=a.budget, window_seconds=a.window_s)
        self.training = TrainingRequests(task, worker, task_settings)
        self.slice_keys = tuple(task_settings.slice_keys)
        self.reviewer_weight = worker.buffer.reviewer_weight
        self.max_domains, self.overflow_domain = worker.max_domains, worker.overflow_domain
        self.counters: Counter[str] = Counter()
        self.domain_counts: Counter[str] = Counter()
        self.applied: dict[str, int] = {}
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
        probes = sum(1 for event in events if event.probe)
        if probes:  # monitoring traffic: counted, never learnt from nor watched for drift
            self.counters["probe_interactions"] += probes
            events = [event for event in events if not event.probe]
        # One pass over the events; everything after it works on arrays.
        domains: list[str] = []
        confidences: list[float] = []
        probabilities: list[dict[str, float] | None] = []
        entries = []
        add_domain, add_conf = domains.append, confidences.append
        add_probs, add_entry = probabilities.append, entries.append
        last_ts = self.last_event_ts
        nan = float("nan")
        regime = self.training.regime
        keys = self.slice_keys
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
                       "model_version": event.model_version, "regime": regime,
                       "slices": self._slices(event.metadata) if keys else ()})
            if ts > last_ts:
                last_ts = ts
        self.last_event_ts = last_ts
        self.counters["interactions"] += len(events)
        conf_array = np.asarray(confidences, dtype=np.float64)
        for domain, indices in self._within_domain_cap(_by_domain(domains), entries).items():
            if not self.domain_counts[domain] and self.domain_counts:
                self._alert([self.shifts.new_domain(
                    domain, events[indices[0]].model_version, known=len(self.domain_counts),
                    now=now)], effects, buffer)
                _warn_many_domains(self.task, len(self.domain_counts) + 1)
            self.domain_counts[domain] += len(indices)
            self._alert(self.shifts.on_interactions(
                domain, [events[i] for i in indices], conf_array[indices],
                head=self.training.parent_version, now=now), effects, buffer)
        asked = label_requests(self.sampler, self.task, events, conf_array, probabilities,
                               now=now)
        if asked is not None:
            effects.label_requests += asked
            self.counters["label_requests"] += len(asked)
        pairs = join.add_interactions(bucket, entries)
        self._count_expired(join)
        self._on_pairs(pairs, buffer, effects, now)
        effects.training_requests += self.check_triggers(buffer, now=now)
        return effects

    def _within_domain_cap(self, groups: dict[str, list[int]],
                           entries: list[dict[str, Any]]) -> dict[str, list[int]]:
        """The batch's domain groups with every domain beyond ``max_domains`` (new ones, in
        the order they first appear) folded into ``overflow_domain``, their entries too, so
        drift, quality and examples see one domain for them; counted, never dropped."""
        known = self.domain_counts
        new = [domain for domain in groups if domain not in known]
        room = self.max_domains - len(known)
        if len(new) <= room:
            return groups
        overflow = self.overflow_domain
        kept = dict(groups)
        moved: list[int] = []
        for domain in new[max(room, 0):]:
            if domain != overflow:
                moved += kept.pop(domain)
        for index in moved:
            entries[index]["domain"] = overflow
        if moved:
            kept[overflow] = sorted(kept.get(overflow, []) + moved)
        folded = len(moved)
        if folded and not self.counters["domains_overflowed"]:
            log.warning("task %r: more than %d domains; events of further domains are "
                        "tracked as %r (worker.max_domains)", self.task, self.max_domains,
                        overflow)
        self.counters["domains_overflowed"] += folded
        return kept

    def _slices(self, metadata: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
        """The (key, value) slices an interaction's metadata names under the task's keys.

        A value that cannot name a slice (not a string, number or boolean, or longer than
        128 characters) is counted in ``slice_values_refused`` and left out."""
        named = []
        for key in self.slice_keys:
            value = metadata.get(key)
            if value is None:
                continue
            text = (str(value).lower() if isinstance(value, bool)
                    else str(value) if isinstance(value, str | int | float) else "")
            if 0 < len(text) <= 128:
                named.append((key, text))
            else:
                self.counters["slice_values_refused"] += 1
        return tuple(named)

    def _alert(self, alerts: list[DriftAlert], effects: Effects, buffer: ReplayBuffer) -> None:
        """Publish the alerts, wake the drift trigger and open a new regime. Examples sent
        and not yet learnt (``buffer.resend_until_promoted``) are the old regime's traffic
        from then on: they join the reservoir, so later requests' new examples (and the
        gate's recent slice) are the new regime's."""
        for alert in alerts:
            self.counters[f"drift_alerts_{alert.signal.value}"] += 1
            self.training.pending_drift.append(f"{alert.domain}/{alert.signal.value}")
            if self.training.new_regime():
                self.counters["regimes"] += 1
                if buffer.settle():
                    effects.buffer_changed = True
            effects.drift_alerts.append(alert)

    # -- feedback ----------------------------------------------------------------------------
    def on_feedback(self, events: list[Feedback], *, join: JoinWindow, buffer: ReplayBuffer,
                    bucket: str, now: float) -> Effects:
        effects = Effects()
        self.counters["feedback"] += len(events)
        entries = [{"id": e.id, "interaction_id": e.interaction_id, "ts": e.ts,
                    "kind": e.kind.value, "value": e.value, "source": e.source.value,
                    "revision": _revision(e)}
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
        errors: dict[tuple[str, str], list[float]] = defaultdict(list)
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
            revision = fb.get("revision", 0)
            if not revision:  # a revised answer's interaction counted at its first answer
                self.quality.record_outcome(domain, model_version, correct,
                                            slices=ix.get("slices", ()))
                effects.outcomes.append((ix["id"], domain, model_version, correct))
                errors[(domain, model_version)].append(0.0 if correct else 1.0)
            confidence = ix["confidence"]
            example = LabeledExample(
                input=ix["input"], target=str(fb["value"]), domain=domain,
                weight=(self.reviewer_weight if fb["source"] == FeedbackSource.REVIEWER
                        else _SOURCE_WEIGHT.get(fb["source"], 1.0)),
                difficulty=None if confidence is None else round(1.0 - confidence, 6),
                interaction_id=ix["id"], model_answer=said, feedback_kind=fb["kind"],
                regime=ix.get("regime", 0), revision=revision,
                slices=tuple(map(tuple, ix.get("slices", ()))))
            if example.revision:  # a changed answer replaces the example, it adds none
                if buffer.revise(example):
                    self.counters["examples_revised"] += 1
                    effects.buffer_changed = True
            elif buffer.add(example):
                self.counters["examples"] += 1
                self.training.labelled(example.regime)
                effects.buffer_changed = True
        for (domain, version), bits in errors.items():
            self._alert(self.shifts.on_errors(domain, version, np.asarray(bits),
                                              head=self.training.parent_version, now=now),
                        effects, buffer)

    # -- commands ----------------------------------------------------------------------------
    def on_command(self, command: Command, *, now: float,
                   buffer: ReplayBuffer | None = None) -> bool:
        """Apply an operator or registry command once; False when already seen. A promotion
        settles the ``buffer``'s examples sent and not yet learnt (they join the reservoir)."""
        if command.kind is CommandKind.TICK:
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
        self.training.take(command)
        if command.kind is CommandKind.PROMOTED:
            self.quality.reset_baseline()
            if buffer is not None:
                buffer.settle()
        return True

    # -- triggers ----------------------------------------------------------------------------
    def check_triggers(self, buffer: ReplayBuffer, *, now: float) -> list[TrainingRequest]:
        """The training requests to send now, if the task's trigger gate fires."""
        return self.training.check(buffer, self.quality, self.counters, now=now)
