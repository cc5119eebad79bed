"""The live loop in one process: the worker's task state, the learner and serving, on a clock.

What ``driftloop demo`` runs over Kafka, without the broker: every batch of the stream is
served by the head version (:class:`~driftloop.learner.serving.model_host.ModelHost`, the
serving code), published as ``Interaction`` events to the worker's
:class:`~driftloop.streams.pipeline.TaskState` (its drift monitors, join, active learning,
replay buffer and triggers, all at the settings given: the defaults unless a run says
otherwise); simulated users label a share of the predictions late and sometimes wrongly, a
simulated reviewer answers the worker's label requests; each training request goes to the
learner's :class:`~driftloop.learner.training.update.IncrementalUpdater`, and its
``model-versions`` event comes back to the worker as the commands the real relay sends
(:func:`~driftloop.streams.commands.commands_from_version`). A promoted version serves the
next batch: under the task's ``adapter_per_domain``, the batch's events of each domain
name are served by that domain's head (:meth:`LiveLoop.serving`).

The clock is the stream's (``events_per_second``); an update takes no stream time, as if
the learner were fast. Everything is seeded. The record (:class:`LiveRecord`) keeps what the
scoring of a run needs: each served answer against its true label, the alerts and requests
with their place in the stream, and every version with its held-out scores.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ....learner.gate.error_probes import grow_after_publish
from ....schemas.enums import FeedbackKind, FeedbackSource, TriggerKind, VersionStatus
from ....schemas.events import Feedback, Interaction, ModelVersion, TrainingRequest
from ....schemas.settings import Settings
from ....streams.commands import commands_from_version
from ....streams.pipeline import Effects, TaskState, new_buffer, new_join_window
from ...demo.traffic import DemoData, SimulatedUsers, StreamItem

__all__ = ["LiveConditions", "LiveLoop", "LiveRecord", "VersionRecord"]

TASK = "live-bench"


@dataclass(frozen=True, slots=True)
class LiveConditions:
    """How the world behaves around the loop (not driftloop's settings).

    Examples
    --------
    >>> LiveConditions().label_rate, LiveConditions(named_domains=True).domain_of("movies")
    (0.8, 'movies')
    >>> LiveConditions().domain_of("movies")
    'live'
    """

    label_rate: float = 0.8
    """Share of served predictions a user labels."""
    label_noise: float = 0.1
    """Share of user labels that are wrong."""
    label_delay: tuple[float, float] = (1.0, 4.0)
    """Seconds between a prediction and its user label."""
    review_delay: float = 5.0
    """Seconds between a label request and the reviewer's (correct) answer."""
    events_per_second: float = 10.0
    batch: int = 16
    """Interactions per served batch (one envelope on ``interactions``)."""
    named_domains: bool = False
    """Producers name the domain of each event; else every event says ``live``."""

    def domain_of(self, true_domain: str) -> str:
        return true_domain if self.named_domains else "live"


@dataclass(slots=True)
class VersionRecord:
    """A version the learner decided: where in the stream, its gate, its held-out scores."""

    event: ModelVersion
    at_event: int
    labels_seen: int
    heldout: dict[str, float] = field(default_factory=dict)

    @property
    def promoted(self) -> bool:
        return self.event.status is VersionStatus.PROMOTED


@dataclass(slots=True)
class LiveRecord:
    """Everything a run did, in stream order."""

    served: list[tuple[str, str, bool]] = field(default_factory=list)
    """(true domain, version, correct) of each served prediction."""
    alerts: list[tuple[int, str]] = field(default_factory=list)
    """(event index, signal) of each drift alert."""
    requests: list[tuple[int, TriggerKind, int, int]] = field(default_factory=list)
    """(event index, trigger, new examples, examples) of each training request."""
    versions: list[VersionRecord] = field(default_factory=list)
    labels: int = 0
    label_marks: list[tuple[int, int]] = field(default_factory=list)
    """(event index, labels received so far) after each batch."""
    labelled: list[tuple[str, str, str]] = field(default_factory=list)
    """(text, label given, true domain) of every label received, for full retraining."""
    domain_names: dict[str, str] = field(default_factory=dict)
    """The domain name producers gave each true domain's events (``live`` unless named)."""
    label_requests: int = 0
    update_seconds: float = 0.0


class LiveLoop:
    """Play one stream through the worker, the learner and serving with ``settings``."""

    def __init__(self, data: DemoData, labels: Sequence[str], settings: Settings,
                 conditions: LiveConditions, *, seed: int = 0, updater: Any = None,
                 host: Any = None) -> None:
        from ....learner.registry.version_log import VersionLog
        from ....learner.serving.model_host import ModelHost
        from ....learner.training.update import IncrementalUpdater

        self.data, self.labels, self.conditions = data, tuple(labels), conditions
        self.settings = settings
        self.updater = updater or IncrementalUpdater(settings)
        self.host = host or ModelHost(self.updater.models)
        self.versions = VersionLog()
        self.state = TaskState(TASK, settings.worker, settings.task(TASK))
        self.join = new_join_window(settings.worker)
        self.buffer = new_buffer(settings.worker)
        self.users = SimulatedUsers(answer_rate=conditions.label_rate,
                                    noise=conditions.label_noise,
                                    delay=conditions.label_delay, seed=seed, labels=labels)
        self.truth = {item.id: item.label for item in data.stream}
        self.texts = {item.id: item.text for item in data.stream}
        self.domains = {item.id: item.domain for item in data.stream}
        self.reviews: list[tuple[float, str]] = []  # (due, interaction id)
        self.record = LiveRecord()
        self.head: str | None = None
        self.now = 0.0
        self.position = 0
        self._seq = 0
        self.workdir = Path(tempfile.mkdtemp(prefix="driftloop-live-"))

    # -- the run ------------------------------------------------------------------------------
    def run(self, bootstrap: TrainingRequest) -> LiveRecord:
        """Train the first version on ``bootstrap``, then play the whole stream."""
        self._decide([bootstrap])
        batch = self.conditions.batch
        for start in range(0, len(self.data.stream), batch):
            items = self.data.stream[start:start + batch]
            self.now += len(items) / self.conditions.events_per_second
            self._serve(items)
            self.position = start + len(items)
            self._feedback()
            self.record.label_marks.append((self.position, self.record.labels))
        return self.record

    def serving(self, domain: str) -> str:
        """The version serving events named ``domain``: the head of its lineage under the
        task's ``adapter_per_domain``, else (or before it has one) the task's head."""
        head = self.versions.domain_head(TASK, domain)
        if head is not None:
            return head.version_id
        assert self.head is not None, "no version serves yet"
        return self.head

    def served_versions(self) -> set[str]:
        """Every version some domain's traffic is served by (kept loaded)."""
        heads = {v.version_id for v in self.versions.domain_heads(TASK).values()}
        return heads | ({self.head} if self.head else set())

    def _serve(self, items: Sequence[StreamItem]) -> None:
        names = [self.conditions.domain_of(item.domain) for item in items]
        chosen = [self.serving(name) for name in names]
        answers: dict[str, Any] = {}
        for version in dict.fromkeys(chosen):
            mine = [item for item, v in zip(items, chosen, strict=True) if v == version]
            answers |= zip((item.id for item in mine),
                           self.host.predict(TASK, version, [item.text for item in mine]),
                           strict=True)
        events = []
        for item, name, version in zip(items, names, chosen, strict=True):
            answer = answers[item.id]
            self.record.domain_names[item.domain] = name
            self.record.served.append((item.domain, version, answer.label == item.label))
            events.append(Interaction(
                id=item.id, ts=self.now, task=TASK, domain=name,
                model_version=version, input=item.text, prediction=answer.label,
                scores={"confidence": answer.confidence,
                        "probabilities": answer.probabilities},
                embedding=answer.embedding, input_embedding=answer.input_embedding,
                metadata={"true_domain": item.domain}))
            self.users.react(item, now=self.now)
        self._apply(self.state.on_interactions(events, join=self.join, buffer=self.buffer,
                                               bucket=self._bucket(), now=self.now))

    def _feedback(self) -> None:
        feedback = [self._feedback_event(p.interaction_id, p.value, FeedbackSource.USER)
                    for p in self.users.due(self.now)]
        due = [ident for when, ident in self.reviews if when <= self.now]
        self.reviews = [(when, ident) for when, ident in self.reviews if when > self.now]
        feedback += [self._feedback_event(ident, self.truth[ident], FeedbackSource.REVIEWER)
                     for ident in due]
        if feedback:
            self.record.labels += len(feedback)
            self.record.labelled += [(self.texts[f.interaction_id], str(f.value),
                                      self.domains[f.interaction_id]) for f in feedback]
            self._apply(self.state.on_feedback(feedback, join=self.join, buffer=self.buffer,
                                               bucket=self._bucket(), now=self.now))

    def _feedback_event(self, interaction_id: str, value: str,
                        source: FeedbackSource) -> Feedback:
        self._seq += 1
        return Feedback(id=f"f-{self._seq}", interaction_id=interaction_id, ts=self.now,
                        task=TASK, kind=FeedbackKind.LABEL, value=value, source=source)

    def _bucket(self) -> str:
        self._seq += 1
        return f"sim:0:{self._seq}"

    # -- effects, as the worker would publish them ------------------------------------------
    def _apply(self, effects: Effects) -> None:
        for alert in effects.drift_alerts:
            self.record.alerts.append((self.position, alert.signal.value))
        for request in effects.label_requests:
            self.record.label_requests += 1
            self.reviews.append((self.now + self.conditions.review_delay,
                                 request.interaction.id))
        self._decide(effects.training_requests)

    def _decide(self, requests: Sequence[TrainingRequest]) -> None:
        """The learner answers each request; its event goes back to the worker as commands."""
        for request in requests:
            new = int(request.metadata.get("new_examples", len(request.examples)))
            self.record.requests.append((self.position, request.trigger, new,
                                         len(request.examples)))
            result = self.updater.update(request, self.versions)
            self.record.update_seconds += result.timings.get("update_seconds", 0.0)
            for event in result.events:
                self._publish(event)
            # As the learner does once published: a task with a suite keeps its real errors.
            grow_after_publish(self.settings, result.request or request,
                               result.challenge_additions)

    def _publish(self, event: ModelVersion) -> None:
        self.versions.apply(event)
        version = VersionRecord(event, self.position, self.record.labels)
        self.record.versions.append(version)
        if version.promoted:
            folder = self.updater.store.fetch(event.adapter_uri, event.sha256, self.workdir)
            self.host.load(TASK, event.version_id, folder, event.base_model)
            self.head = event.version_id
            self.host.evict(TASK, self.served_versions())
        version.heldout = self.score(event.version_id) if version.promoted else {}
        worker = self.settings.worker
        for command in commands_from_version(
                event, challenge_min_score=worker.triggers.challenge_min_score,
                candidates=worker.ab_test.enabled):
            if self.state.on_command(command, now=self.now, buffer=self.buffer):
                self._apply(Effects(
                    training_requests=self.state.check_triggers(self.buffer, now=self.now)))

    def score(self, version_id: str) -> dict[str, float]:
        """Held-out accuracy of a served version on every domain."""
        scores = {}
        for domain, items in self.data.heldout.items():
            answers = self.host.predict(TASK, version_id, [item.text for item in items])
            hits = sum(a.label == item.label for a, item in zip(answers, items, strict=True))
            scores[domain] = hits / len(items)
        return scores
