"""The demo's traffic: a VADER stream that moves between domains, simulated users, a reviewer.

The stream is real human-rated text (tweets, then movie reviews, Amazon reviews, NYT
editorials). Each text goes through the service's ``POST /predict`` like a production
request; simulated users answer most predictions with a label some seconds later, and a
share of those labels is wrong (people misclick); a simulated reviewer answers the worker's
label requests with the true label. Every interaction is sent with one domain (``live``):
the service does not know that its traffic moved, which is what drift detection is for.
The true domain travels in the interaction's metadata, so results can be split by it.
"""

from __future__ import annotations

import asyncio
import heapq
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ...schemas import FeedbackKind, FeedbackSource, LabelRequest
from .vader import balanced_sample, read_domain

__all__ = [
    "DEMO_DOMAINS",
    "LIVE_DOMAIN",
    "DemoData",
    "PlannedFeedback",
    "ServedPrediction",
    "SimulatedReviewer",
    "SimulatedUsers",
    "StreamItem",
    "TrafficDriver",
    "build_demo_data",
]

DEMO_DOMAINS: tuple[str, ...] = ("tweets", "movies", "amazon", "nyt")
# What the service is told: one production endpoint, whatever the traffic is about.
LIVE_DOMAIN = "live"
LABELS: tuple[str, str] = ("negative", "positive")


@dataclass(frozen=True, slots=True)
class StreamItem:
    """One text of the stream (or of a held-out set) with its true label and domain."""

    id: str
    domain: str
    text: str
    label: str


@dataclass(frozen=True, slots=True)
class DemoData:
    """The stream in order, held-out sets per domain and the bootstrap examples (disjoint)."""

    stream: list[StreamItem]
    heldout: dict[str, list[StreamItem]]
    bootstrap: list[StreamItem]

    def boundaries(self) -> list[tuple[str, int, int]]:
        """``(domain, first index, end index)`` of each domain's run in the stream."""
        runs: list[tuple[str, int, int]] = []
        for index, item in enumerate(self.stream):
            if runs and runs[-1][0] == item.domain:
                runs[-1] = (item.domain, runs[-1][1], index + 1)
            else:
                runs.append((item.domain, index, index + 1))
        return runs


def build_demo_data(*, per_domain: int, heldout: int, bootstrap: int, seed: int = 0,
                    domains: Sequence[str] = DEMO_DOMAINS) -> DemoData:
    """Split each domain (shuffled with ``seed``) into held-out and stream texts.

    The bootstrap is a balanced sample of the first domain's remaining texts, so no text is
    both trained on at the start and scored at the end.

    >>> data = build_demo_data(per_domain=10, heldout=5, bootstrap=8, seed=1)
    >>> [d for d, _, _ in data.boundaries()], len(data.stream), len(data.heldout["nyt"])
    (['tweets', 'movies', 'amazon', 'nyt'], 40, 5)
    >>> ids = {i.id for i in data.stream} | {i.id for h in data.heldout.values() for i in h}
    >>> any(item.id in ids for item in data.bootstrap)
    False
    """
    if per_domain < 1 or heldout < 1 or bootstrap < 2:
        raise ValueError("per_domain and heldout must be >= 1 and bootstrap >= 2, got "
                         f"{per_domain}, {heldout}, {bootstrap}")
    rng = random.Random(seed)
    stream: list[StreamItem] = []
    held: dict[str, list[StreamItem]] = {}
    rest_of_first: list[Any] = []
    for position, domain in enumerate(domains):
        examples = read_domain(domain)
        rng.shuffle(examples)
        if len(examples) < per_domain + heldout + (bootstrap if position == 0 else 0):
            raise ValueError(f"{domain} has {len(examples)} texts, too few for this demo size")
        held[domain] = [_item(e) for e in examples[:heldout]]
        stream += [_item(e) for e in examples[heldout:heldout + per_domain]]
        if position == 0:
            rest_of_first = examples[heldout + per_domain:]
    boot = [_item(e) for e in balanced_sample(rest_of_first, bootstrap, seed=seed)]
    return DemoData(stream, held, boot)


def _item(example: Any) -> StreamItem:
    return StreamItem(example.id, example.domain, example.text, example.label)


@dataclass(frozen=True, order=True, slots=True)
class PlannedFeedback:
    """A user's label, due at ``due`` (a ``time.monotonic`` instant)."""

    due: float
    interaction_id: str = field(compare=False)
    value: str = field(compare=False)
    noisy: bool = field(compare=False)


class SimulatedUsers:
    """People who label some predictions, late and sometimes wrongly.

    Parameters
    ----------
    answer_rate
        Share of interactions that get a label at all.
    noise
        Share of given labels that are flipped (wrong).
    delay
        ``(low, high)`` seconds between the prediction and the label (uniform).
    seed
        Seed of every random choice.
    labels
        The task's labels: a wrong label is another of them (at random when there are more
        than two).

    Examples
    --------
    >>> users = SimulatedUsers(answer_rate=1.0, noise=0.0, delay=(2.0, 2.0), seed=0)
    >>> item = StreamItem("i-1", "tweets", "lovely", "positive")
    >>> planned = users.react(item, now=10.0)
    >>> planned.due, planned.value, planned.noisy
    (12.0, 'positive', False)
    >>> users.due(11.0), [p.interaction_id for p in users.due(12.0)]
    ([], ['i-1'])
    """

    def __init__(self, *, answer_rate: float = 0.8, noise: float = 0.1,
                 delay: tuple[float, float] = (1.0, 4.0), seed: int = 0,
                 labels: Sequence[str] = LABELS) -> None:
        if not 0.0 <= answer_rate <= 1.0 or not 0.0 <= noise <= 1.0:
            raise ValueError(f"answer_rate and noise must be in [0, 1], got {answer_rate}, "
                             f"{noise}")
        if not 0.0 <= delay[0] <= delay[1]:
            raise ValueError(f"delay must be (low, high) with 0 <= low <= high, got {delay}")
        self.answer_rate = answer_rate
        self.noise = noise
        self.delay = delay
        self.labels = tuple(labels)
        self._rng = random.Random(seed)
        self._pending: list[PlannedFeedback] = []

    def react(self, item: StreamItem, *, now: float) -> PlannedFeedback | None:
        """Maybe plan a label for ``item`` (seen at ``now``); it is queued until due."""
        if self._rng.random() >= self.answer_rate:
            return None
        noisy = self._rng.random() < self.noise
        value = self._wrong(item.label) if noisy else item.label
        planned = PlannedFeedback(now + self._rng.uniform(*self.delay), item.id, value, noisy)
        heapq.heappush(self._pending, planned)
        return planned

    def _wrong(self, label: str) -> str:
        others = [other for other in self.labels if other != label]
        return others[0] if len(others) == 1 else self._rng.choice(others)

    def due(self, now: float) -> list[PlannedFeedback]:
        """Labels whose time has come, earliest first (removed from the queue)."""
        ready = []
        while self._pending and self._pending[0].due <= now:
            ready.append(heapq.heappop(self._pending))
        return ready

    @property
    def pending(self) -> int:
        return len(self._pending)

    def next_due(self) -> float | None:
        return self._pending[0].due if self._pending else None



class SimulatedReviewer:
    """A careful human who answers label requests with the true label.

    >>> from driftloop.schemas import Interaction
    >>> seen = Interaction(id="i-1", ts=1.0, task="sentiment", model_version="v0", input="meh")
    >>> request = LabelRequest(id="l-1", ts=2.0, task="sentiment", interaction=seen,
    ...                        reason="margin", priority=0.8)
    >>> SimulatedReviewer({"i-1": "negative"}).answer(request)["value"]
    'negative'
    >>> SimulatedReviewer({}).answer(request) is None
    True
    """

    def __init__(self, truth: Mapping[str, str]) -> None:
        self.truth = truth
        self.answered: set[str] = set()

    def answer(self, request: LabelRequest) -> dict[str, Any] | None:
        """The ``POST /feedback`` body answering ``request``; None for unknown or repeats."""
        interaction_id = request.interaction.id
        label = self.truth.get(interaction_id)
        if label is None or interaction_id in self.answered:
            return None
        self.answered.add(interaction_id)
        return {"interaction_id": interaction_id, "task": request.task,
                "kind": FeedbackKind.LABEL.value, "value": label,
                "source": FeedbackSource.REVIEWER.value,
                "metadata": {"label_request_id": request.id}}


@dataclass(frozen=True, slots=True)
class ServedPrediction:
    """What the service answered for one stream item, and when."""

    item: StreamItem
    prediction: str
    version: str
    ts: float

    @property
    def correct(self) -> bool:
        return self.prediction == self.item.label


Post = Callable[[str, dict[str, Any]], Awaitable[tuple[int, dict[str, Any]]]]


class TrafficDriver:
    """Send the stream through ``/predict`` at a steady rate and users' labels to ``/feedback``.

    Parameters
    ----------
    post
        ``post(path, body) -> (status, json)`` against the service.
    task
        The task name of every request.
    users
        The simulated users.
    rate
        Predictions per second (the stream's pace; the loop needs time to react).
    in_flight
        Concurrent ``/predict`` requests (the service batches them into one forward pass).
    between_domains
        Awaited when the stream is about to enter a new domain (``(previous, next)``),
        after every prediction of the previous one is answered and every label of it is
        sent. The stream's clock stops meanwhile: the pace resumes, it does not catch up.
    """

    def __init__(self, post: Post, *, task: str, users: SimulatedUsers, rate: float,
                 in_flight: int = 4,
                 between_domains: Callable[[str, str], Awaitable[None]] | None = None) -> None:
        if rate <= 0 or in_flight < 1:
            raise ValueError(f"rate must be > 0 and in_flight >= 1, got {rate}, {in_flight}")
        self.post = post
        self.task = task
        self.users = users
        self.rate = rate
        self.in_flight = in_flight
        self.served: list[ServedPrediction] = []
        self.feedback_sent = 0
        self.label_times: list[float] = []  # when each label was accepted (time.time())
        self.noisy_sent = 0
        self.failures = 0
        self.current_domain = ""
        self.domain_started: dict[str, float] = {}
        self.between_domains = between_domains
        self.paused_s = 0.0

    async def run(self, stream: Sequence[StreamItem]) -> list[ServedPrediction]:
        """Drive the whole stream, then send every label still due."""
        slots = asyncio.Semaphore(self.in_flight)
        labels = asyncio.create_task(self._send_labels())
        started = time.monotonic()
        pending: set[asyncio.Task[None]] = set()
        try:
            for index, item in enumerate(stream):
                delay = started + index / self.rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)  # the stream's pace, not a synchronisation
                if item.domain != self.current_domain and self.current_domain \
                        and self.between_domains is not None:
                    paused = time.monotonic()
                    if pending:
                        await asyncio.gather(*pending)
                    await self._drain_labels()
                    await self.between_domains(self.current_domain, item.domain)
                    self.paused_s += time.monotonic() - paused
                    started += time.monotonic() - paused
                await slots.acquire()
                if item.domain != self.current_domain:
                    self.domain_started.setdefault(item.domain, time.time())
                self.current_domain = item.domain
                task = asyncio.create_task(self._predict(item, slots))
                pending.add(task)
                task.add_done_callback(pending.discard)
            if pending:
                await asyncio.gather(*pending)
            await self._drain_labels()
        finally:
            labels.cancel()
            for task in pending:
                task.cancel()
        return self.served

    async def _predict(self, item: StreamItem, slots: asyncio.Semaphore) -> None:
        try:
            status, answer = await self.post("/predict", {
                "task": self.task, "input": item.text, "id": item.id, "domain": LIVE_DOMAIN,
                "metadata": {"source_domain": item.domain}})
        finally:
            slots.release()
        if status != 200:
            self.failures += 1
            return
        # A generation task answers with text; "prediction" is the class read from it.
        said = answer.get("prediction") or answer["output"]
        self.served.append(ServedPrediction(item, said, answer["model_version"], time.time()))
        self.users.react(item, now=time.monotonic())

    async def _send_labels(self) -> None:
        while True:
            await self._send_due(time.monotonic())
            await asyncio.sleep(0.1)  # the users' clock tick

    async def _send_due(self, now: float) -> None:
        for planned in self.users.due(now):
            status, _ = await self.post("/feedback", {
                "interaction_id": planned.interaction_id, "task": self.task,
                "kind": FeedbackKind.LABEL.value, "value": planned.value,
                "source": FeedbackSource.USER.value})
            if status == 202:
                self.feedback_sent += 1
                self.label_times.append(time.time())
                self.noisy_sent += planned.noisy
            else:
                self.failures += 1

    async def _drain_labels(self) -> None:
        while (due := self.users.next_due()) is not None:
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            await self._send_due(time.monotonic())
