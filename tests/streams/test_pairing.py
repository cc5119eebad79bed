"""OutcomePairing: pairs within a domain, the newest partner first, a bounded wait, once per
interaction."""

from __future__ import annotations

import pytest

from driftloop.streams.errors import ConfigurationError
from driftloop.streams.pairing import MAX_DOMAINS, OutcomePairing


def test_an_outcome_pairs_with_the_newest_waiting_outcome_of_the_other_arm():
    pairing = OutcomePairing(window=8)
    pairing.add("h1", "news", candidate=False, correct=True)
    pairing.add("h2", "news", candidate=False, correct=False)
    # the newest head outcome (h2, wrong) is the partner, as (candidate, head)
    assert pairing.add("c1", "news", candidate=True, correct=True) == ("candidate", (True, False))
    assert pairing.add("c2", "news", candidate=True, correct=False) == ("candidate", (False, True))
    assert pairing.waiting == 0


def test_outcomes_of_other_domains_never_pair():
    pairing = OutcomePairing(window=8)
    pairing.add("h1", "news", candidate=False, correct=True)
    assert pairing.add("c1", "movies", candidate=True, correct=True) == ("candidate", None)
    assert pairing.waiting == 2


def test_the_wait_is_bounded_and_a_dropped_outcome_may_count_later():
    pairing = OutcomePairing(window=3)
    for n in range(5):
        assert pairing.add(f"h{n}", "news", candidate=False, correct=True) == ("head", None)
    assert pairing.waiting == 3
    assert pairing.add("h0", "news", candidate=False, correct=True) == ("head", None)
    assert pairing.add("h4", "news", candidate=False, correct=True) == ("duplicate", None)


def test_new_domains_are_refused_past_the_bound():
    pairing = OutcomePairing(window=1)
    for n in range(MAX_DOMAINS):
        pairing.add(f"i{n}", f"d{n}", candidate=True, correct=True)
    assert pairing.add("late", "another", candidate=True, correct=True) == \
        ("too_many_domains", None)
    # refused unread: the interaction may still count in a known domain
    assert pairing.add("late", "d0", candidate=False, correct=True) == ("head", (True, True))


@pytest.mark.parametrize("window", [0, -1, 1.5, True, "2"])
def test_a_bad_window_is_refused(window):
    with pytest.raises(ConfigurationError, match="pair_window"):
        OutcomePairing(window=window)  # type: ignore[arg-type]
