"""Probes from real errors: which examples count, deduplication, the cap, the source."""

from __future__ import annotations

import logging
from pathlib import Path

import pydantic
import pytest

from driftloop.learner.gate.challenges import (
    ChallengeCase,
    ChallengeSuite,
    ChallengeSuiteError,
)
from driftloop.learner.gate.error_probes import (
    ERROR_TAG,
    SuiteGrowth,
    grow_from_request,
    grow_suite,
    probes_from_request,
    was_wrong,
)
from driftloop.schemas.events import TrainingExample, TrainingRequest
from driftloop.schemas.settings import Settings, TaskSettings


def request(*examples: dict, request_id: str = "tr-1") -> TrainingRequest:
    return TrainingRequest(id=request_id, ts=1.0, task="sentiment", trigger="manual",
                           examples=list(examples))


def example(text: str, target: str, answer: str | None, kind: str | None = "label",
            **more: object) -> dict:
    return {"input": text, "target": target, "model_answer": answer, "feedback_kind": kind,
            **more}


@pytest.mark.parametrize(("answer", "kind", "wrong"), [
    ("positive", "label", True),        # a label other than the prediction
    ("Negative.", "label", False),      # the same answer, written differently
    ("negative", "correction", False),  # a "correction" that confirms the answer
    ("the film was bad", "correction", True),
    (None, "correction", True),         # answer unknown, but a person corrected it
    (None, "label", False),             # answer unknown: a label alone proves nothing
    (None, None, False),                # not from feedback at all (a hand-made example)
])
def test_which_examples_are_real_errors(answer: str | None, kind: str | None,
                                        wrong: bool) -> None:
    assert was_wrong(TrainingExample(**example("meh", "negative", answer, kind))) is wrong


def test_probes_record_their_source() -> None:
    probes = probes_from_request(request(
        example("not good", "negative", "positive", interaction_id="i-1", domain="tweets"),
        example("great", "positive", "positive", interaction_id="i-2"),
        {"input": "fine", "target": "positive", "origin": "replay"}))
    (probe,) = probes
    assert (probe.input, probe.expected, probe.tags) == ("not good", "negative", (ERROR_TAG,))
    assert probe.source == {"interaction_id": "i-1", "training_request_id": "tr-1",
                            "model_answer": "positive", "domain": "tweets",
                            "feedback_kind": "label"}


def test_duplicates_by_normalised_input_are_added_once(tmp_path: Path) -> None:
    path = tmp_path / "suite.jsonl"
    ChallengeSuite.append(path, [ChallengeCase("Not good at all", "negative", ("negation",))])
    probes = [ChallengeCase(text, "negative", (ERROR_TAG,)) for text in (
        "not GOOD at   all!",  # a hand-written case, in other case, spacing and punctuation
        "awful", "Awful.",     # twice in one batch
        "meh")]
    growth = grow_suite(path, probes, cap=10)
    assert [p.input for p in growth.added] == ["awful", "meh"] and growth.duplicates == 2
    # Another expected answer for a known input is still a duplicate: the first one stays.
    assert grow_suite(path, [ChallengeCase("AWFUL", "positive", (ERROR_TAG,))],
                      cap=10) == SuiteGrowth((), 1, 0)
    assert [c.input for c in ChallengeSuite.load(path)] == ["Not good at all", "awful", "meh"]


def test_the_cap_counts_probes_from_errors_only(tmp_path: Path) -> None:
    path = tmp_path / "suite.jsonl"
    ChallengeSuite.append(path, [ChallengeCase(f"hand {i}", "positive") for i in range(5)])
    probes = [ChallengeCase(f"error {i}", "negative", (ERROR_TAG,)) for i in range(5)]
    assert len(grow_suite(path, probes[:2], cap=3).added) == 2
    growth = grow_suite(path, probes[2:], cap=3)
    assert [p.input for p in growth.added] == ["error 2"] and growth.over_cap == 2
    assert grow_suite(path, [ChallengeCase("one more", "x", (ERROR_TAG,))], cap=3).over_cap == 1
    suite = ChallengeSuite.load(path)
    assert len(suite) == 8 and sum(ERROR_TAG in c.tags for c in suite) == 3
    assert grow_suite(tmp_path / "other.jsonl", probes, cap=0) == SuiteGrowth((), 0, 5)
    assert not (tmp_path / "other.jsonl").exists()


def test_a_negative_cap_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cap must be >= 0"):
        grow_suite(tmp_path / "suite.jsonl", [], cap=-1)
    with pytest.raises(pydantic.ValidationError, match="challenge_error_cap"):
        TaskSettings(challenge_error_cap=-1)


def settings_with(suite: Path | None, cap: int = 200) -> Settings:
    return Settings(tasks={"sentiment": {"challenge_suite": str(suite) if suite else None,
                                         "challenge_error_cap": cap}})


def test_growth_from_a_request_follows_the_task_settings(tmp_path: Path) -> None:
    wrong = request(example("not good", "negative", "positive", interaction_id="i-1"))
    assert grow_from_request(settings_with(None), wrong) is None  # no suite: nothing to grow
    suite = tmp_path / "suite.jsonl"
    assert grow_from_request(settings_with(suite), request(
        example("great", "positive", "positive"))) == SuiteGrowth()
    assert not suite.exists()
    growth = grow_from_request(settings_with(suite), wrong)
    assert growth is not None and len(growth.added) == 1
    replayed = grow_from_request(settings_with(suite), wrong)  # a re-read request
    assert replayed is not None and replayed.added == () and replayed.duplicates == 1
    (case,) = ChallengeSuite.load(suite)
    assert case.source is not None and case.source["interaction_id"] == "i-1"


def test_a_broken_suite_is_logged_and_left_alone(tmp_path: Path,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    suite = tmp_path / "suite.jsonl"
    suite.write_text("not json\n")
    wrong = request(example("not good", "negative", "positive"))
    with caplog.at_level(logging.ERROR, logger="driftloop.learner.gate.error_probes"):
        assert grow_from_request(settings_with(suite), wrong) is None
    assert "did not grow" in caplog.text and suite.read_text() == "not json\n"


@pytest.mark.parametrize("source", ['"i-1"', '{"interaction_id": 3}', "[1]"])
def test_a_malformed_source_line_is_named(tmp_path: Path, source: str) -> None:
    path = tmp_path / "suite.jsonl"
    path.write_text('{"input": "x", "expected": "y", "source": ' + source + "}\n")
    with pytest.raises(ChallengeSuiteError, match=r"suite.jsonl:1: source"):
        ChallengeSuite.load(path)
