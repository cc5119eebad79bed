"""The labelled streams the live-loop bench plays: VADER sentiment and TREC question topics.

Each is a :class:`~driftloop.tools.demo.traffic.DemoData`: the stream in domain order, a
held-out set per domain and the bootstrap examples of the first domain (all disjoint), plus
its label set. One set of driftloop settings is run on both: a setting that only works on
sentiment shows on questions.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ...demo.traffic import DEMO_DOMAINS, DemoData, StreamItem, build_demo_data
from .questions import DOMAINS as QUESTION_DOMAINS
from .questions import LABELS as QUESTION_LABELS
from .questions import read_questions

__all__ = ["STREAMS", "LabelledStream", "build_stream", "stratified_sample"]


@dataclass(frozen=True, slots=True)
class LabelledStream:
    """A stream to play, with the labels its task answers with."""

    name: str
    labels: tuple[str, ...]
    data: DemoData


def stratified_sample(examples: Sequence[Any], n: int, *, seed: int = 0) -> list[Any]:
    """``n`` examples with every label in proportion (at least one each), shuffled.

    >>> from driftloop.tools.demo.traffic import StreamItem
    >>> items = [StreamItem(str(i), "d", "t", "a" if i < 90 else "b") for i in range(100)]
    >>> sample = stratified_sample(items, 20, seed=1)
    >>> len(sample), sum(item.label == "b" for item in sample)
    (20, 2)
    """
    rng = random.Random(seed)
    by_label: dict[str, list[Any]] = defaultdict(list)
    for example in examples:
        by_label[example.label].append(example)
    picked: list[Any] = []
    for label in sorted(by_label):
        share = max(1, round(n * len(by_label[label]) / len(examples)))
        picked += rng.sample(by_label[label], min(share, len(by_label[label])))
    rng.shuffle(picked)
    if len(picked) < n:  # rounding left room: top up from the rest
        chosen = {id(e) for e in picked}
        rest = [e for e in examples if id(e) not in chosen]
        picked += rng.sample(rest, min(n - len(picked), len(rest)))
        rng.shuffle(picked)
    return picked[:n]


def build_stream(read: Callable[[str], list[Any]], domains: Sequence[str], *, per_domain: int,
                 heldout: int, bootstrap: int, seed: int = 0) -> DemoData:
    """Each domain shuffled with ``seed`` into held-out and stream texts; the bootstrap is a
    stratified sample of the first domain's rest. ``read(domain)`` gives items with ``id``,
    ``domain``, ``text`` and ``label``."""
    rng = random.Random(seed)
    stream: list[StreamItem] = []
    held: dict[str, list[StreamItem]] = {}
    rest_of_first: list[StreamItem] = []
    for position, domain in enumerate(domains):
        items = [StreamItem(e.id, e.domain, e.text, e.label) for e in read(domain)]
        rng.shuffle(items)
        if len(items) < per_domain + heldout + (bootstrap if position == 0 else 0):
            raise ValueError(f"{domain} has {len(items)} texts, too few for this stream size")
        held[domain] = items[:heldout]
        stream += items[heldout:heldout + per_domain]
        if position == 0:
            rest_of_first = items[heldout + per_domain:]
    return DemoData(stream, held, stratified_sample(rest_of_first, bootstrap, seed=seed))


def _vader(*, per_domain: int, heldout: int, bootstrap: int, seed: int) -> LabelledStream:
    data = build_demo_data(per_domain=per_domain, heldout=heldout, bootstrap=bootstrap,
                           seed=seed, domains=DEMO_DOMAINS)
    return LabelledStream("vader", ("negative", "positive"), data)


def _questions(*, per_domain: int, heldout: int, bootstrap: int, seed: int) -> LabelledStream:
    data = build_stream(read_questions, QUESTION_DOMAINS, per_domain=per_domain,
                        heldout=heldout, bootstrap=bootstrap, seed=seed)
    return LabelledStream("questions", QUESTION_LABELS, data)


STREAMS: dict[str, Callable[..., LabelledStream]] = {"vader": _vader, "questions": _questions}
