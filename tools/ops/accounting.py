"""The accounting check: every input event is processed or dead-lettered, nothing twice.

For one deployment (a topic prefix), counted from the topics themselves and from the worker's
own counters:

* **input events**: every record on ``interactions`` and ``feedback`` is decoded with the
  worker's own ``decode_message`` and partition rule; a record holds one event, a batch
  envelope several, and what the worker rejects (unreadable, or off its task's partition)
  must show up in ``dead-letters``;
* **dead letters** of those topics, keyed by ``(topic, partition, offset, event_index)``: a
  worker killed after writing a dead letter and before committing its offset writes it again
  on redelivery, so keys seen twice are counted once and reported as redelivered;
* **processed**: the worker's ``driftloop_worker_events_total`` (kinds ``interactions`` and
  ``feedback``), which live in changelogged tables and survive restarts;
* **labels**: each feedback event naming an interaction the topics hold must be joined
  exactly once: the worker's ``joined`` count against the topics' joinable feedback (a
  traffic whose feedback comes within the join window of its interaction, as the fault
  bench's does). A step whose state was kept while its join buckets were lost (or the
  reverse) shows here, not in ``lost``;
* **training requests and versions**: every request has exactly one decision (a promoted or
  rejected version) or a learner dead letter; a version id decided twice is a duplicate.

``lost = produced - processed - dead-lettered`` must be 0; a negative value means events were
counted twice (``double_counted``).
"""

from __future__ import annotations

import urllib.request
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from aiokafka.structs import ConsumerRecord

from ...client.kafka import topic_partitions
from ...learner.registry.version_log import trained_requests
from ...schemas import Feedback, Interaction, ModelVersion, TrainingRequest, decode
from ...schemas.commands import COMMAND_HEADER
from ...schemas.enums import VersionStatus
from ...schemas.errors import ValidationError
from ...schemas.events import DeadLetter
from ...schemas.settings import Settings
from ...schemas.topics import Topic
from ...streams.ingest import decode_message
from ...streams.partitioning import TaskPartitions
from ..kafka.topic_reader import read_snapshot

__all__ = ["DeadLetterTally", "DecisionTally", "InputTally", "Ledger", "count_topics", "metric",
           "read_worker_counts", "request_positions", "take_ledger", "tally_dead_letters",
           "tally_decisions", "tally_inputs"]

_INPUTS: dict[str, tuple[Topic, type[Interaction] | type[Feedback]]] = {
    "interactions": (Topic.INTERACTIONS, Interaction),
    "feedback": (Topic.FEEDBACK, Feedback),
}
_DECIDED = (VersionStatus.PROMOTED, VersionStatus.REJECTED)
Position = tuple[str, int, int]
"""A record's (topic, partition, offset)."""
EventKey = tuple[str, int, int, int | None]
"""An input event's (topic, partition, offset, index in its envelope)."""


@dataclass(slots=True)
class Ledger:
    """What a run produced and what became of it.

    Examples
    --------
    >>> ledger = Ledger(produced={"interactions": 10}, rejected_by_codec=1,
    ...                 processed={"interactions": 9}, dead_lettered=1)
    >>> ledger.lost, ledger.double_counted, ledger.ok
    (0, 0, True)
    >>> Ledger(produced={"interactions": 10}, processed={"interactions": 8}).lost
    2
    """

    produced: dict[str, int] = field(default_factory=dict)
    rejected_by_codec: int = 0
    processed: dict[str, int] = field(default_factory=dict)
    dead_lettered: int = 0
    dead_letters_redelivered: int = 0
    training_requests: int = 0
    unanswered_requests: list[str] = field(default_factory=list)
    version_events: int = 0
    duplicate_versions: list[str] = field(default_factory=list)
    labels_joinable: int = 0
    labels_joined: int | None = None
    """Feedback the worker joined, by its counts (None: no worker was asked)."""

    @property
    def produced_total(self) -> int:
        return sum(self.produced.values())

    @property
    def processed_total(self) -> int:
        return sum(self.processed.values())

    @property
    def lost(self) -> int:
        """Events neither processed nor dead-lettered (0 when nothing is lost)."""
        return max(0, self.produced_total - self.processed_total - self.dead_lettered)

    @property
    def double_counted(self) -> int:
        """Events counted more than once (processed twice, or dead-lettered and processed)."""
        return max(0, self.processed_total + self.dead_lettered - self.produced_total)

    @property
    def labels_lost(self) -> int:
        """Joinable feedback the worker never joined (0 when no worker was asked).

        >>> Ledger(labels_joinable=20, labels_joined=18).labels_lost
        2
        """
        if self.labels_joined is None:
            return 0
        return max(0, self.labels_joinable - self.labels_joined)

    @property
    def labels_twice(self) -> int:
        """Joins counted more than once."""
        if self.labels_joined is None:
            return 0
        return max(0, self.labels_joined - self.labels_joinable)

    @property
    def ok(self) -> bool:
        """The check holds: nothing lost, nothing twice, every request answered once."""
        return (self.lost == 0 and self.double_counted == 0
                and self.labels_lost == 0 and self.labels_twice == 0
                and self.dead_lettered == self.rejected_by_codec
                and not self.unanswered_requests and not self.duplicate_versions)

    def problems(self) -> list[str]:
        """What is wrong, one line each (empty when :attr:`ok`)."""
        out = []
        if self.lost:
            out.append(f"{self.lost} events neither processed nor dead-lettered")
        if self.double_counted:
            out.append(f"{self.double_counted} events counted twice")
        if self.labels_lost:
            out.append(f"{self.labels_lost} of {self.labels_joinable} labels never joined")
        if self.labels_twice:
            out.append(f"{self.labels_twice} labels joined twice")
        if self.dead_lettered != self.rejected_by_codec:
            out.append(f"{self.dead_lettered} dead letters for {self.rejected_by_codec} "
                       "events the codec rejects")
        if self.unanswered_requests:
            out.append(f"{len(self.unanswered_requests)} training requests without a "
                       f"decision: {', '.join(self.unanswered_requests[:5])}")
        if self.duplicate_versions:
            out.append(f"versions decided twice: {', '.join(self.duplicate_versions[:5])}")
        return out


async def count_topics(settings: Settings, *, timeout: float = 120.0) -> Ledger:
    """Everything the topics say (``processed`` left empty: see :func:`read_worker_counts`)."""
    kafka = settings.kafka
    ledger = Ledger()
    inputs = [kafka.topic(topic) for topic, _ in _INPUTS.values()]
    counts = await topic_partitions(settings, *inputs)
    commands: set[Position] = set()
    expected_dead: set[EventKey] = set()
    tallies: dict[str, InputTally] = {}
    for name, (topic, cls) in _INPUTS.items():
        full = kafka.topic(topic)
        tally = tally_inputs(await read_snapshot(settings, full, timeout=timeout), cls,
                             owners=TaskPartitions(len(counts[full])) if counts.get(full)
                             else None)
        tallies[name] = tally
        ledger.produced[name] = tally.produced
        expected_dead |= tally.expected_dead
        commands |= tally.commands
    ledger.rejected_by_codec = len(expected_dead)
    interactions = tallies["interactions"].ids
    ledger.labels_joinable = sum(1 for (task, interaction) in tallies["feedback"].links.values()
                                 if (task, interaction) in interactions)
    requests_topic = kafka.topic(Topic.TRAINING_REQUESTS)
    letters = tally_dead_letters(
        await read_snapshot(settings, kafka.topic(Topic.DEAD_LETTERS), timeout=timeout),
        inputs=set(inputs), requests_topic=requests_topic, commands=commands)
    ledger.dead_lettered = len(letters.seen)
    ledger.dead_letters_redelivered = sum(n - 1 for n in letters.seen.values())
    requests = request_positions(await read_snapshot(settings, requests_topic,
                                                     timeout=timeout))
    ledger.training_requests = len(requests)
    decisions = tally_decisions(await read_snapshot(
        settings, kafka.topic(Topic.MODEL_VERSIONS), timeout=timeout))
    ledger.version_events = decisions.events
    ledger.duplicate_versions = sorted(v for v, n in decisions.decided.items() if n > 1)
    ledger.unanswered_requests = sorted(
        rid for rid, where in requests.items()
        if rid not in decisions.answered and where not in letters.dead_requests)
    return ledger


@dataclass(slots=True)
class InputTally:
    """One input topic's account: events produced (each event of an envelope counts), the
    dead letters the worker must have written for them, and the command records left out."""

    produced: int = 0
    expected_dead: set[EventKey] = field(default_factory=set)
    commands: set[Position] = field(default_factory=set)
    ids: set[tuple[str, str]] = field(default_factory=set)
    """``(task, id)`` of each event read."""
    links: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)
    """Feedback: ``(task, id)`` -> ``(task, interaction id)`` it labels."""


def tally_inputs(records: Iterable[ConsumerRecord], cls: type[Interaction] | type[Feedback], *,
                 owners: TaskPartitions | None) -> InputTally:
    """Decode each record the worker's way (its codec and partition rule)."""
    tally = InputTally()
    for record in records:
        if any(key == COMMAND_HEADER for key, _ in record.headers):
            # A command for the worker (trigger, tick, version), not an event; nor is
            # the dead letter of one the worker refused.
            tally.commands.add((record.topic, record.partition, record.offset))
            continue
        out = decode_message(record.value, cls, topic=record.topic,
                             partition=record.partition, offset=record.offset, owners=owners)
        tally.produced += len(out.events) + len(out.dead_letters)
        for event in out.events:
            key = (event.task, event.id)
            tally.ids.add(key)
            if isinstance(event, Feedback):
                tally.links[key] = (event.task, event.interaction_id)
        tally.expected_dead.update((record.topic, d.partition, d.offset, d.event_index)
                                   for d in out.dead_letters)
    return tally


@dataclass(slots=True)
class DeadLetterTally:
    """Dead letters of input events, by event (a count above 1 is a redelivery), and the
    positions of the training requests the learner dead-lettered."""

    seen: Counter[EventKey] = field(default_factory=Counter)
    dead_requests: set[tuple[int, int]] = field(default_factory=set)


def tally_dead_letters(records: Iterable[ConsumerRecord], *, inputs: set[str],
                       requests_topic: str, commands: set[Position]) -> DeadLetterTally:
    """Sort driftloop's dead letters by source; other records and commands' are left out."""
    tally = DeadLetterTally()
    for record in records:
        try:
            letter = decode(record.value or b"", DeadLetter)
        except ValidationError:
            continue  # not ours to judge: the accounting counts driftloop's letters
        if (letter.source_topic, letter.partition, letter.offset) in commands:
            continue
        if letter.source_topic in inputs:
            tally.seen[(letter.source_topic, letter.partition, letter.offset,
                        letter.event_index)] += 1
        elif letter.source_topic == requests_topic:
            tally.dead_requests.add((letter.partition, letter.offset))
    return tally


def request_positions(records: Iterable[ConsumerRecord]) -> dict[str, tuple[int, int]]:
    """Each training request's id and (partition, offset); an undecodable one is named by
    its position."""
    positions: dict[str, tuple[int, int]] = {}
    for record in records:
        where = (record.partition, record.offset)
        try:
            positions[decode(record.value or b"", TrainingRequest).id] = where
        except ValidationError:
            positions[f"<undecodable {record.partition}@{record.offset}>"] = where
    return positions


@dataclass(slots=True)
class DecisionTally:
    """Version events read, decisions (promoted or rejected) by version id, and the
    training requests those decisions answer."""

    events: int = 0
    decided: Counter[str] = field(default_factory=Counter)
    answered: set[str] = field(default_factory=set)


def tally_decisions(records: Iterable[ConsumerRecord]) -> DecisionTally:
    """Read ``model-versions``: undecodable records are left out."""
    tally = DecisionTally()
    for record in records:
        try:
            version = decode(record.value or b"", ModelVersion)
        except ValidationError:
            continue
        tally.events += 1
        if version.status in _DECIDED:
            tally.decided[version.version_id] += 1
            tally.answered |= trained_requests(version)  # a coalesced backlog's too
    return tally


def read_worker_counts(metrics_url: str, *, timeout: float = 5.0) -> dict[str, int]:
    """Events the worker processed, by kind (``interactions``, ``feedback``, ``joined``), from
    its ``/metrics`` page (all tasks summed)."""
    with urllib.request.urlopen(metrics_url, timeout=timeout) as response:
        text = response.read().decode()
    return {kind: int(metric(text, "driftloop_worker_events_total", kind=kind))
            for kind in (*_INPUTS, "joined")}


def metric(text: str, name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels``.

    >>> metric('a{kind="x",task="t"} 2\\na{kind="y"} 5\\n', "a", kind="x")
    2.0
    """
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            head, _, number = line.rpartition(" ")
            if all(f'{k}="{v}"' in head for k, v in labels.items()):
                total += float(number)
    return total


async def take_ledger(settings: Settings, metrics_url: str | None) -> Ledger:
    """The topics' account plus, when a worker runs, what it says it processed."""
    ledger = await count_topics(settings)
    if metrics_url is not None:
        counts = read_worker_counts(metrics_url)
        ledger.processed = {kind: counts[kind] for kind in _INPUTS}
        ledger.labels_joined = counts["joined"]
    return ledger
