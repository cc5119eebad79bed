"""Second looks: a rejected candidate's ledger grows with texts it never trained on, and is
judged again at half the gate's level."""

from __future__ import annotations

import pytest

from driftloop.learner.gate.paired import PairedComparison, compare
from driftloop.learner.gate.rule import GateRule
from driftloop.learner.gate.second_look import Ledger, SecondLooks, digests, second_look
from driftloop.schemas.events import TrainingExample

EMPTY = PairedComparison(0, 0, 0, 0.0, 0.0)


def ledger(recent: PairedComparison = EMPTY, old: PairedComparison | None = None, *,
           version: str = "c1", parent: str = "v1", trained=(), counted=(), **metrics: float
           ) -> Ledger:
    return Ledger(version, parent, digests(trained), digests(counted), recent, old,
                  before={k.removeprefix("before_"): v for k, v in metrics.items()
                          if k.startswith("before_")},
                  after={k: v for k, v in metrics.items() if not k.startswith("before_")})


def pairs(wins: int, losses: int, ties: int = 0) -> PairedComparison:
    """A comparison with ``wins`` texts only the candidate gets right, ``losses`` only the
    parent, and ``ties`` both."""
    return compare([True] * wins + [False] * losses + [True] * ties,
                   [False] * wins + [True] * losses + [True] * ties)


def test_fresh_texts_are_new_labels_the_candidate_never_saw() -> None:
    book = ledger(trained=["trained"], counted=["held out"])
    examples = [TrainingExample(input=text, target="a", origin=origin) for text, origin in [
        ("trained", "new"), ("held out", "new"), ("replayed", "replay"),
        ("written", "synthetic"), ("fresh", "new"), ("fresh", "new"), ("other", "new")]]
    assert [e.input for e in book.fresh(examples)] == ["fresh", "other"]


def test_adding_pools_the_pairs_and_counts_the_texts() -> None:
    book = ledger(pairs(3, 1), counted=["a"]).add(["b", "c"], pairs(2, 0))
    assert (book.recent.n, book.recent.wins, book.recent.losses) == (6, 5, 1)
    assert book.fresh([TrainingExample(input=t, target="x") for t in "abcd"])[0].input == "d"
    with pytest.raises(ValueError, match="2 pairs for 1 texts"):
        book.add(["d"], pairs(1, 1))


def test_an_empty_first_look_takes_the_new_pairs_as_they_are() -> None:
    assert ledger().add(["a"], pairs(1, 0)).recent == pairs(1, 0)


def test_the_second_look_is_made_at_half_the_gate_level() -> None:
    rule = GateRule(alpha=0.1)
    # 10 won, 3 lost: McNemar's p = 0.046, better at 0.1 and at 0.05.
    clear = second_look(rule, ledger(pairs(10, 3, 40)))
    assert clear.promote and clear.reasons[0].startswith("second look: c1 against v1 on 53")
    assert "at 0.05" in clear.reasons[0]
    # 9 won, 3 lost: p = 0.073, better at the gate's 0.1 but not at the second look's 0.05.
    assert pairs(9, 3).p_better < 0.1
    assert not second_look(rule, ledger(pairs(9, 3, 40))).promote


def test_the_first_looks_other_findings_still_hold() -> None:
    rule = GateRule(alpha=0.1, challenge_tolerance=0.02)
    forgot = second_look(rule, ledger(pairs(20, 2, 40), old=pairs(0, 12, 100)))
    assert not forgot.promote and any("forgetting" in r for r in forgot.reasons)
    probes = second_look(rule, ledger(pairs(20, 2, 40), before_challenge_score=1.0,
                                      challenge_score=0.8))
    assert not probes.promote and any("challenge prompts" in r for r in probes.reasons)


def test_a_learner_keeps_one_ledger_per_parent_and_forgets_replaced_parents() -> None:
    looks = SecondLooks()
    looks.open("t", ledger(version="c1", parent="v1"))
    looks.open("t", ledger(version="c2", parent="v1"))  # the newest candidate's replaces
    looks.open("u", ledger(version="d1", parent="w1"))
    assert looks.get("t", "v1", "c1") is None and looks.get("t", "v1", "c2") is not None
    looks.open("t", ledger(version="c3", parent="v2"))  # v2 serves now: v1's ledger goes
    assert looks.get("t", "v1", "c2") is None and len(looks) == 2
    looks.close("t", "v2")
    assert looks.get("t", "v2", "c3") is None and looks.get("u", "w1", "d1") is not None
