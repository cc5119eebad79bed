"""The VADER sentiment ground truth (Hutto & Gilbert, ICWSM 2014) as labelled examples.

Four domains of short texts rated -4..4 by humans; the demo, the benchmarks and the tests use
them as a real stream whose distribution moves between domains.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from ...learner.errors import LearnerError
from ...learner.models.packaged import vader_dir

__all__ = ["DOMAINS", "VaderExample", "balanced_sample", "read_domain"]

DOMAINS: dict[str, str] = {
    "tweets": "tweets_GroundTruth.txt",
    "movies": "movieReviewSnippets_GroundTruth.txt",
    "amazon": "amazonReviewSnippets_GroundTruth.txt",
    "nyt": "nytEditorialSnippets_GroundTruth.txt",
}
# Ratings near zero are neutral: humans disagree on their sign, so they make noisy labels.
MIN_ABS_RATING = 0.5


@dataclass(frozen=True, slots=True)
class VaderExample:
    """One rated text: ``label`` is ``positive`` or ``negative``."""

    id: str
    domain: str
    text: str
    rating: float

    @property
    def label(self) -> str:
        return "positive" if self.rating > 0 else "negative"


def read_domain(domain: str, *, folder: Path | None = None) -> list[VaderExample]:
    """Every example of one domain with ``|rating| >= 0.5``, in file order.

    >>> examples = read_domain("nyt")
    >>> len(examples), sorted({e.label for e in examples})
    (2970, ['negative', 'positive'])
    """
    if domain not in DOMAINS:
        raise LearnerError(f"unknown VADER domain {domain!r}; expected one of {sorted(DOMAINS)}")
    path = (folder or vader_dir()) / DOMAINS[domain]
    examples = []
    with path.open(encoding="utf-8", errors="replace") as lines:
        next(lines)  # header
        for line in lines:
            parts = line.rstrip("\n").split("\t", 2)
            if len(parts) != 3:
                continue
            rating = float(parts[1])
            if abs(rating) >= MIN_ABS_RATING:
                examples.append(VaderExample(f"{domain}-{parts[0]}", domain, parts[2], rating))
    return examples


def balanced_sample(examples: list[VaderExample], n: int, *, seed: int = 0) -> list[VaderExample]:
    """``n`` examples, half of each label, shuffled with ``seed`` (deterministic).

    >>> sample = balanced_sample(read_domain("tweets"), 10, seed=1)
    >>> sum(e.label == "positive" for e in sample)
    5
    """
    rng = random.Random(seed)
    by_label: dict[str, list[VaderExample]] = {"positive": [], "negative": []}
    for example in examples:
        by_label[example.label].append(example)
    half = n // 2
    picked = rng.sample(by_label["positive"], n - half) + rng.sample(by_label["negative"], half)
    rng.shuffle(picked)
    return picked
