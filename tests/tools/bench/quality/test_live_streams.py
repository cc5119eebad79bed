"""The two streams of the live-loop bench: disjoint parts, real labels, both shifts."""

from __future__ import annotations

import pytest

from driftloop.learner.errors import LearnerError
from driftloop.tools.bench.quality.live_streams import STREAMS
from driftloop.tools.bench.quality.questions import DOMAINS, LABELS, read_questions


@pytest.mark.parametrize("name", sorted(STREAMS))
def test_each_stream_has_disjoint_stream_heldout_and_bootstrap(name: str) -> None:
    stream = STREAMS[name](per_domain=60, heldout=20, bootstrap=24, seed=1)
    data = stream.data
    ids = [i.id for i in data.stream]
    held = [i.id for items in data.heldout.values() for i in items]
    boot = [i.id for i in data.bootstrap]
    assert len(set(ids) | set(held) | set(boot)) == len(ids) + len(held) + len(boot)
    assert len(data.boundaries()) >= 2 and len(data.bootstrap) == 24
    assert {i.label for i in data.stream} <= set(stream.labels)
    assert {i.domain for i in data.bootstrap} == {data.boundaries()[0][0]}


def test_question_domains_split_every_topic_by_its_fine_labels() -> None:
    first, second = (read_questions(d) for d in DOMAINS)
    assert {q.label for q in first} == {q.label for q in second} == set(LABELS)
    assert not {q.fine for q in first} & {q.fine for q in second}
    assert not {q.text for q in first} & {q.text for q in second}
    with pytest.raises(LearnerError, match="unknown question domain"):
        read_questions("sports")


def test_question_groups_hold_every_topic_and_split_the_fine_labels() -> None:
    from driftloop.tools.bench.quality.questions import read_question_groups

    groups = read_question_groups(4)
    fines = [{q.fine for q in g} for g in groups.values()]
    assert all({q.label for q in g} == set(LABELS) for g in groups.values())
    assert sum(len(f) for f in fines) == len(set().union(*fines))  # each fine label once
    with pytest.raises(LearnerError, match="2 to 4 groups"):
        read_question_groups(5)
