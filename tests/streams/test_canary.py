"""CanaryComparison: pairing, one decision per candidate, and every bad input it can meet."""

from __future__ import annotations

import pytest
from canary_helpers import apply, started, traffic, version

from driftloop.schemas.commands import Command
from driftloop.schemas.errors import SettingsError
from driftloop.schemas.settings import ABTestSettings, Settings
from driftloop.streams.canary import CanaryComparison
from driftloop.streams.errors import ConfigurationError
from driftloop.streams.state_codec import dumps, loads


def test_a_better_candidate_is_promoted_with_a_copy_of_its_event():
    ab = started()
    [event] = ab.on_outcomes(traffic(2000, 0.9, 0.6), now=7.0)
    assert (event.version_id, event.status.value, event.ts) == ("v2", "promoted", 7.0)
    candidate = version("v2", "candidate")
    same = {"adapter_uri", "sha256", "size_bytes", "base_model", "metrics_after", "metadata"}
    assert {k: getattr(event, k) for k in same} == {k: getattr(candidate, k) for k in same}
    assert "likelihood ratio" in event.reason and "against v1" in event.reason
    assert ab.candidate is None and ab.decided == {"v2": "promote"}
    assert ab.counters["decisions_promote"] == 1


def test_a_worse_candidate_is_rejected():
    ab = started()
    [event] = ab.on_outcomes(traffic(2000, 0.6, 0.9), now=7.0)
    assert (event.version_id, event.status.value) == ("v2", "rejected")
    assert "<= beta" in event.reason


def test_an_undecided_candidate_is_rejected_at_max_samples():
    ab = started(min_samples=5, max_samples=50)
    [event] = ab.on_outcomes(traffic(2000, 0.8, 0.8, seed=3), now=7.0)
    assert event.status.value == "rejected" and "no decision after 50 pairs" in event.reason


def test_one_decision_per_candidate_whatever_is_replayed():
    ab = started()
    outcomes = traffic(2000, 0.9, 0.6)
    assert len(ab.on_outcomes(outcomes, now=7.0)) == 1
    # The same feedback again, the candidate's event again (a replayed log), its promotion
    # (this worker's own event coming back): no second test, no second decision.
    assert ab.on_outcomes(outcomes, now=8.0) == []
    assert apply(ab, version("v2", "candidate"), version("v2", "promoted")) == []
    assert ab.on_outcomes(outcomes, now=9.0) == [] and ab.head == "v2"
    assert ab.counters["candidates"] == 1


def test_duplicate_feedback_counts_once_per_interaction():
    ab = started(min_samples=1, max_samples=1000)
    outcomes = [("i1", "news", "v1", False), ("i2", "news", "v2", True)]
    ab.on_outcomes(outcomes, now=3.0)
    # The same interactions labelled again (a duplicate message, a second reviewer).
    ab.on_outcomes([*outcomes, ("i2", "news", "v2", False)], now=4.0)
    assert ab.test.pairs == 1 and ab.test.wins == 1
    assert ab.counters["outcomes_duplicate"] == 3


def test_outcomes_of_unknown_versions_and_before_any_candidate_are_ignored():
    ab = CanaryComparison("t")
    assert ab.on_outcomes(traffic(100, 0.9, 0.1), now=1.0) == []  # no test yet
    assert ab.counters == {} and not ab.take_changed()
    ab = started()
    ab.on_outcomes([("i1", "news", "v9", True), ("i2", "news", "v0", False)], now=3.0)
    assert ab.counters["outcomes_other_version"] == 2 and ab.test.pairs == 0 and ab.waiting == 0


def test_outcomes_pair_within_a_domain_and_the_wait_is_bounded():
    ab = started(pair_window=4)
    ab.on_outcomes([(f"h{n}", "news", "v1", True) for n in range(10)], now=3.0)
    ab.on_outcomes([("c0", "movies", "v2", True)], now=3.0)
    assert ab.waiting == 5 and ab.test.pairs == 0  # 4 head outcomes in news, 1 in movies
    ab.on_outcomes([("c1", "news", "v2", False)], now=3.0)
    assert ab.test.pairs == 1 and ab.test.losses == 1 and ab.waiting == 4
    # An outcome dropped from the wait was never counted: its feedback may still count once.
    ab.on_outcomes([("h0", "news", "v1", True)], now=3.0)
    assert ab.counters["outcomes_duplicate"] == 0


def test_a_candidate_of_another_task_or_without_a_valid_event_is_ignored():
    ab = CanaryComparison("t")
    apply(ab, version("v1", "promoted"))
    apply(ab, version("x2", "candidate", task="other"))  # another task's log entry
    event = version("v2", "candidate").model_dump(mode="json")
    bad = [
        Command(id="c1", task="other", kind="candidate", version="v2", event=event),
        Command(id="c2", task="t", kind="candidate", version="v2", event=None),
        Command(id="c3", task="t", kind="candidate", version="v2",
                event={**event, "sha256": "not a digest"}),
        Command(id="c4", task="t", kind="candidate", version="v2", event={**event, "task": "u"}),
        Command(id="c5", task="t", kind="candidate", version="v3", event=event),
        Command(id="c6", task="t", kind="candidate", version="v2",
                event={**event, "status": "promoted"}),
        Command(id="c7", task="t", kind="candidate", version=None, event=event),
        Command(id="c8", task="t", kind="trigger", version="v2"),
    ]
    for command in bad:
        assert ab.on_command(command, now=2.0) == []
    assert ab.candidate is None and ab.test is None
    assert ab.counters["bad_candidates"] == 5 and ab.counters["commands_ignored"] == 4


def test_a_newer_candidate_supersedes_an_undecided_one_which_is_rejected():
    ab = started()
    ab.on_outcomes(traffic(10, 0.9, 0.6), now=3.0)
    [rejected] = apply(ab, version("v3", "candidate"), now=4.0)
    assert (rejected.version_id, rejected.status.value) == ("v2", "rejected")
    assert "superseded by candidate v3" in rejected.reason
    assert ab.candidate == "v3" and ab.test.pairs == 0 and ab.decided["v2"] == "superseded"
    assert apply(ab, version("v2", "candidate")) == [] and ab.candidate == "v3"


def test_a_new_head_restarts_the_test_and_a_decision_elsewhere_ends_it():
    ab = started()
    ab.on_outcomes(traffic(20, 0.9, 0.6), now=3.0)
    assert ab.test.pairs > 0
    apply(ab, version("v0", "promoted"))  # an operator promoted another version
    assert ab.head == "v0" and ab.test.pairs == 0 and ab.counters["restarts"] == 1
    apply(ab, version("v2", "rejected"))  # an operator rejected the candidate
    assert ab.candidate is None and ab.decided["v2"] == "rejected"
    assert ab.on_outcomes(traffic(500, 0.9, 0.6, head="v0"), now=5.0) == []


def test_a_test_resumed_from_its_pickled_state_decides_like_an_uninterrupted_one():
    outcomes = traffic(2000, 0.9, 0.6, seed=9)
    whole = started()
    [expected] = whole.on_outcomes(outcomes, now=7.0)
    parted = started()
    assert parted.on_outcomes(outcomes[:30], now=3.0) == []
    restored = loads(dumps(parted))  # the table's changelog after a restart
    [decided] = restored.on_outcomes(outcomes[30:], now=7.0)
    assert decided == expected


def test_settings_build_the_test_and_bad_ones_are_refused():
    settings = Settings(worker={"ab_test": {"alpha": 0.01, "min_samples": 5,
                                            "max_samples": 10, "pair_window": 2}})
    ab = CanaryComparison.from_settings("t", settings.worker.ab_test)
    assert ab.get_params() == {"alpha": 0.01, "beta": 0.2, "odds_ratio": 1.5,
                               "min_samples": 5, "max_samples": 10, "pair_window": 2}
    assert ab.clone().get_params() == ab.get_params()
    for bad in ({"alpha": 0.5}, {"beta": 0}, {"odds_ratio": 1.0}, {"min_samples": 0},
                {"min_samples": 10, "max_samples": 9}, {"pair_window": 0}, {"enabled": "x"}):
        with pytest.raises(SettingsError, match="ab_test"):
            Settings(worker={"ab_test": bad})
    with pytest.raises(ConfigurationError, match="pair_window"):
        CanaryComparison("t", pair_window=0)
    with pytest.raises(ConfigurationError, match="alpha"):
        CanaryComparison("t", alpha=1.0)
    assert ABTestSettings().enabled
