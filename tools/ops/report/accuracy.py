"""Accuracy over time from the events themselves: labels joined to interactions by id.

A label feedback is correct when it equals the interaction's prediction; a correction counts
as an error; ratings do not count. The curve is split three ways: the whole task, each domain
(the *true* domain when the producer names it in ``metadata.source_domain``, as the demo
does: its traffic is served under one ``live`` domain, so the event's own domain would show
its four shifts as one band) and each model version that served the interaction.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ....schemas import Feedback, FeedbackKind, Interaction

__all__ = ["AccuracyPoint", "Outcome", "domain_spans", "join_labels", "rolling_accuracy",
           "split_accuracy",
           "true_domain"]

SOURCE_DOMAIN = "source_domain"


@dataclass(frozen=True, slots=True)
class Outcome:
    """One labelled interaction: when, where, which version served it, and was it right."""

    ts: float
    domain: str
    model_version: str
    correct: bool


@dataclass(frozen=True, slots=True)
class AccuracyPoint:
    """Rolling accuracy at one labelled event, over the last ``window`` labels of its series
    (the task, a domain or a version)."""

    ts: float
    accuracy: float
    domain: str
    model_version: str


def true_domain(interaction: Interaction) -> str:
    """The domain the traffic really came from: ``metadata.source_domain`` when the producer
    says, else the event's domain.

    >>> seen = Interaction(id="i", ts=0.0, task="t", domain="live", model_version="v0",
    ...                    input="x", metadata={"source_domain": "tweets"})
    >>> true_domain(seen), true_domain(seen.model_copy(update={"metadata": {}}))
    ('tweets', 'live')
    """
    named = interaction.metadata.get(SOURCE_DOMAIN)
    return named if isinstance(named, str) and named else interaction.domain


def join_labels(interactions: Iterable[Interaction],
                feedback: Iterable[Feedback]) -> tuple[dict[str, list[Outcome]], int, int]:
    """Outcomes per task in time order, the interactions seen, the feedback seen.

    A feedback whose interaction is not among ``interactions`` is not joined; a feedback id
    seen twice (a redelivery) counts once.

    >>> seen = [Interaction(id="i1", ts=1.0, task="t", model_version="v0", input="x",
    ...                     prediction="pos")]
    >>> said = [Feedback(id="f1", interaction_id="i1", ts=2.0, task="t", kind="label",
    ...                  value="pos")] * 2
    >>> outcomes, n_seen, n_said = join_labels(seen, said)
    >>> [o.correct for o in outcomes["t"]], n_seen, n_said
    ([True], 1, 2)
    """
    by_id: dict[str, Interaction] = {}
    for interaction in interactions:
        by_id[interaction.id] = interaction
    joined: dict[str, list[Outcome]] = defaultdict(list)
    seen_feedback: set[str] = set()
    n_feedback = 0
    for item in feedback:
        n_feedback += 1
        interaction = by_id.get(item.interaction_id)
        if interaction is None or item.id in seen_feedback:
            continue
        seen_feedback.add(item.id)
        if item.kind is FeedbackKind.LABEL:
            correct = item.value == interaction.prediction
        elif item.kind is FeedbackKind.CORRECTION:
            correct = False
        else:
            continue
        joined[interaction.task].append(Outcome(interaction.ts, true_domain(interaction),
                                                interaction.model_version, correct))
    for outcomes in joined.values():
        outcomes.sort(key=lambda o: o.ts)
    return dict(joined), len(by_id), n_feedback


def rolling_accuracy(outcomes: list[Outcome], window: int, *,
                     min_labels: int | None = None) -> list[AccuracyPoint]:
    """Accuracy over the last ``window`` outcomes at each outcome, once ``min_labels``
    (default half a window) are in: a rate over a handful of labels is noise, not a trend.

    >>> outs = [Outcome(float(n), "d", "v0", n % 2 == 0) for n in range(4)]
    >>> [p.accuracy for p in rolling_accuracy(outs, 2)]
    [1.0, 0.5, 0.5, 0.5]
    """
    needed = max(1, window // 2) if min_labels is None else max(1, min_labels)
    points: list[AccuracyPoint] = []
    recent: deque[bool] = deque()
    hits = 0
    for outcome in outcomes:
        recent.append(outcome.correct)
        hits += outcome.correct
        if len(recent) > window:
            hits -= recent.popleft()
        if len(recent) >= needed:
            points.append(AccuracyPoint(outcome.ts, hits / len(recent), outcome.domain,
                                        outcome.model_version))
    return points


def split_accuracy(outcomes: list[Outcome], window: int,
                   key: Callable[[Outcome], str]) -> dict[str, list[AccuracyPoint]]:
    """One rolling curve per ``key`` (a domain, a version), each over its own labels only.

    A series with fewer labels than half a window still gets points from half its labels
    on, so a version that served briefly shows.

    >>> outs = [Outcome(float(n), "a" if n < 4 else "b", "v0", n < 4) for n in range(8)]
    >>> curves = split_accuracy(outs, 4, key=lambda o: o.domain)
    >>> {d: [p.accuracy for p in c] for d, c in curves.items()}
    {'a': [1.0, 1.0, 1.0], 'b': [0.0, 0.0, 0.0]}
    """
    groups: dict[str, list[Outcome]] = defaultdict(list)
    for outcome in outcomes:
        groups[key(outcome)].append(outcome)
    return {name: rolling_accuracy(group, window,
                                   min_labels=min(window // 2, max(1, len(group) // 2)))
            for name, group in sorted(groups.items())}


def domain_spans(outcomes: list[Outcome]) -> list[tuple[str, float, float]]:
    """Consecutive stretches of one domain: (domain, first ts, last ts).

    >>> domain_spans([Outcome(1.0, "a", "v", True), Outcome(2.0, "a", "v", True),
    ...               Outcome(3.0, "b", "v", True)])
    [('a', 1.0, 2.0), ('b', 3.0, 3.0)]
    """
    spans: list[tuple[str, float, float]] = []
    for outcome in outcomes:
        if spans and spans[-1][0] == outcome.domain:
            spans[-1] = (outcome.domain, spans[-1][1], outcome.ts)
        else:
            spans.append((outcome.domain, outcome.ts, outcome.ts))
    return spans
