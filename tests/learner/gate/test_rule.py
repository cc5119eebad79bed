from __future__ import annotations

import pytest

from driftloop.learner.gate.rule import GateRule

BEFORE = {"holdout_score": 0.6, "holdout_loss": 0.7, "replay_score": 0.9,
          "challenge_score": 0.8}


def after(**changes: float) -> dict[str, float]:
    return {**BEFORE, "holdout_score": 0.7, "holdout_loss": 0.6, **changes}


def test_better_on_new_and_steady_elsewhere_is_promoted() -> None:
    decision = GateRule().decide(BEFORE, after())
    assert decision.promote
    assert decision.summary.startswith("holdout: 0.700 > 0.600")


def test_not_better_on_new_is_rejected() -> None:
    decision = GateRule().decide(BEFORE, after(holdout_score=0.6, holdout_loss=0.8))
    assert not decision.promote and "not better" in decision.reasons[0]
    assert not GateRule().decide(BEFORE, after(holdout_score=0.5)).promote


def test_equal_score_lower_loss_breaks_the_tie() -> None:
    assert GateRule().decide(BEFORE, after(holdout_score=0.6, holdout_loss=0.5)).promote
    # With a demanded improvement, a tie never promotes.
    assert not GateRule(min_improvement=0.05).decide(
        BEFORE, after(holdout_score=0.6, holdout_loss=0.5)).promote
    assert not GateRule(min_improvement=0.2).decide(BEFORE, after()).promote


def test_forgetting_beyond_tolerance_is_rejected() -> None:
    rule = GateRule(replay_tolerance=0.05)
    assert rule.decide(BEFORE, after(replay_score=0.86)).promote
    decision = rule.decide(BEFORE, after(replay_score=0.84))
    assert not decision.promote and "forgetting" in decision.summary


def test_one_flipped_answer_on_a_small_slice_is_within_the_resolution() -> None:
    # 9 replayed examples: one flip is 0.111, more than the tolerance, less than evidence
    small = {**BEFORE, "replay_score": 6 / 9, "replay_count": 9.0}
    rule = GateRule(replay_tolerance=0.1)
    assert rule.decide(small, after(replay_score=5 / 9, replay_count=9.0)).promote
    decision = rule.decide(small, after(replay_score=4 / 9, replay_count=9.0))
    assert not decision.promote and "forgetting" in decision.summary
    # on 200 examples the tolerance itself applies
    large = {**BEFORE, "replay_score": 0.9, "replay_count": 200.0}
    assert not rule.decide(large, after(replay_score=0.79, replay_count=200.0)).promote


def test_failing_challenge_prompts_is_rejected() -> None:
    decision = GateRule(challenge_tolerance=0.0).decide(BEFORE, after(challenge_score=0.75))
    assert not decision.promote and "challenge prompts" in decision.summary


def test_missing_parts_are_not_judged() -> None:
    assert GateRule().decide({"holdout_score": 0.5}, {"holdout_score": 0.6}).promote


@pytest.mark.parametrize("field", ["min_improvement", "replay_tolerance", "challenge_tolerance"])
@pytest.mark.parametrize("value", [-0.1, 1.5])
def test_bad_tolerances_fail_at_construction(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=field):
        GateRule(**{field: value})


def paired_run(wins: int, losses: int, same: int = 40):  # type: ignore[no-untyped-def]
    """A comparison with ``wins``/``losses`` discordant pairs among ``same`` agreements."""
    from driftloop.learner.gate.paired import compare

    candidate = [True] * wins + [False] * losses + [True] * same
    parent = [False] * wins + [True] * losses + [True] * same
    return compare(candidate, parent)


def test_a_paired_gate_promotes_a_candidate_shown_better_and_names_the_test() -> None:
    decision = GateRule(alpha=0.05).decide(BEFORE, after(), {"holdout": paired_run(12, 2)})
    assert decision.promote
    assert decision.reasons[0].startswith("recent: 0.963 vs 0.778 on 54: +0.185 [")
    assert "12 won 2 lost, p(better)=0.0065 < 0.05: better" in decision.reasons[0]


def test_a_paired_gate_refuses_a_candidate_that_only_matches_its_parent() -> None:
    # Scores alone would promote (0.7 > 0.6); the paired evidence does not show better.
    decision = GateRule().decide(BEFORE, after(), {"holdout": paired_run(6, 4)})
    assert not decision.promote and "not shown better" in decision.summary


def test_a_paired_gate_refuses_forgetting_shown_on_older_traffic() -> None:
    rule = GateRule(alpha=0.05)
    ok = rule.decide(BEFORE, after(), {"holdout": paired_run(12, 2),
                                       "replay": paired_run(3, 6, same=400)})
    assert ok.promote and "older: " in ok.summary and "(forgetting)" not in ok.summary
    forgot = rule.decide(BEFORE, after(), {"holdout": paired_run(12, 2),
                                           "replay": paired_run(3, 20, same=400)})
    assert not forgot.promote and "(forgetting)" in forgot.summary


def test_a_gain_too_small_to_show_on_recent_texts_alone_is_shown_on_both_slices() -> None:
    # The demo's case: 1 won 0 lost on 22 recent texts, 6 won 2 lost on 87 older ones.
    rule = GateRule(alpha=0.1)
    decision = rule.decide(BEFORE, after(), {"holdout": paired_run(1, 0, same=21),
                                             "replay": paired_run(6, 2, same=79)})
    assert decision.promote, decision.summary
    assert "not shown better" in decision.reasons[0]
    assert "both: " in decision.summary and "7 won 2 lost" in decision.summary
    # Behind on the recent texts: the older ones cannot carry it.
    behind = rule.decide(BEFORE, after(), {"holdout": paired_run(1, 2, same=21),
                                           "replay": paired_run(9, 1, same=79)})
    assert not behind.promote and "both: " in behind.summary
    # Neither slice nor both together show a gain: not promoted.
    matched = rule.decide(BEFORE, after(), {"holdout": paired_run(2, 1, same=21),
                                            "replay": paired_run(4, 3, same=79)})
    assert not matched.promote


def test_a_candidate_no_better_than_its_parent_is_promoted_at_most_twice_alpha() -> None:
    # Simulated under the null: every discordant pair is a fair coin.
    import random

    rng = random.Random(3)
    rule, promoted, trials = GateRule(alpha=0.1), 0, 2_000
    for _ in range(trials):
        recent = [rng.random() < 0.5 for _ in range(rng.randint(2, 15))]
        older = [rng.random() < 0.5 for _ in range(rng.randint(2, 40))]
        slices = {"holdout": paired_run(sum(recent), len(recent) - sum(recent), same=20),
                  "replay": paired_run(sum(older), len(older) - sum(older), same=80)}
        promoted += rule.decide(BEFORE, after(), slices).promote
    assert promoted / trials <= 2 * 0.1


def scored_run(rng, n: int, shift: float, accuracy_gap: int):  # type: ignore[no-untyped-def]
    """``n`` texts: the parent's proper scores, the candidate's moved by ``shift`` (plus
    noise), and the candidate ahead by ``accuracy_gap`` answers."""
    from driftloop.learner.gate.paired import compare

    parent = [rng.uniform(0.3, 0.9) for _ in range(n)]
    candidate = [min(1.0, max(0.0, p + shift + rng.gauss(0.0, 0.1))) for p in parent]
    wins = max(accuracy_gap, 0)
    losses = max(-accuracy_gap, 0)
    cand_hits = [True] * wins + [False] * losses + [True] * (n - wins - losses)
    parent_hits = [False] * wins + [True] * losses + [True] * (n - wins - losses)
    return compare(cand_hits, parent_hits, candidate_scores=candidate, parent_scores=parent)


def test_proper_scores_show_a_gain_that_four_wins_cannot() -> None:
    import random

    # Soon after a shift: 24 recent texts, 4 won 0 lost (McNemar p = 0.0625), and the
    # candidate puts more probability on the true label of most texts.
    run = scored_run(random.Random(1), 24, shift=0.08, accuracy_gap=4)
    assert run.p_better > 0.05 and run.p_better_scores < 0.01
    rule = GateRule(alpha=0.05, evidence="scores")
    decision = rule.decide(BEFORE, after(), {"holdout": run})
    assert decision.promote and "proper score +0.0" in decision.reasons[0]
    assert not GateRule(alpha=0.05).decide(BEFORE, after(), {"holdout": run}).promote  # answers
    # As confident, but no more answers right: a better score alone is not promoted.
    same = scored_run(random.Random(1), 24, shift=0.08, accuracy_gap=0)
    assert not rule.decide(BEFORE, after(), {"holdout": same}).promote


def test_with_proper_scores_a_no_better_candidate_is_promoted_at_most_twice_alpha() -> None:
    # Simulated under the null: score differences symmetric around 0, answers a fair coin.
    import random

    from driftloop.learner.gate.paired import compare

    rng = random.Random(5)
    rule, promoted, trials = GateRule(alpha=0.1, evidence="scores"), 0, 600

    def null_run(n: int):  # type: ignore[no-untyped-def]
        flips = [rng.random() < 0.5 for _ in range(rng.randint(0, n // 3))]
        wins = sum(flips)
        same = n - len(flips)
        parent = [rng.uniform(0.3, 0.9) for _ in range(n)]
        candidate = [p + rng.gauss(0.0, 0.1) for p in parent]
        return compare([True] * wins + [False] * (len(flips) - wins) + [True] * same,
                       [False] * wins + [True] * (len(flips) - wins) + [True] * same,
                       candidate_scores=candidate, parent_scores=parent)

    for _ in range(trials):
        slices = {"holdout": null_run(rng.randint(10, 60)),
                  "replay": null_run(rng.randint(20, 200))}
        promoted += rule.decide(BEFORE, after(), slices).promote
    assert promoted / trials <= 2 * 0.1


def test_alpha_outside_its_range_is_refused() -> None:
    with pytest.raises(ValueError, match="alpha"):
        GateRule(alpha=0.5)
