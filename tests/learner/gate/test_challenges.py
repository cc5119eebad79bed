from __future__ import annotations

from pathlib import Path

import pytest

from driftloop.learner.gate.challenges import (
    ChallengeCase,
    ChallengeSuite,
    ChallengeSuiteError,
)


def test_suite_grows_without_duplicates(tmp_path: Path) -> None:
    path = tmp_path / "suite.jsonl"
    assert ChallengeSuite.append(path, [ChallengeCase("not bad", "positive", ("negation",)),
                                        ChallengeCase("meh", "negative")]) == 2
    assert ChallengeSuite.append(path, [ChallengeCase("meh", "negative"),
                                        ChallengeCase("great", "positive", ("easy",))]) == 1
    suite = ChallengeSuite.load(path)
    assert [c.input for c in suite] == ["not bad", "meh", "great"]
    assert suite.tags() == ["easy", "negation"] and suite.source == path


def test_empty_and_missing(tmp_path: Path) -> None:
    assert len(ChallengeSuite.load(None)) == 0
    with pytest.raises(ChallengeSuiteError, match="does not exist"):
        ChallengeSuite.load(tmp_path / "nope.jsonl")


@pytest.mark.parametrize("line", [
    "not json",
    "[1, 2]",
    '{"input": "x"}',
    '{"input": 1, "expected": "y"}',
    '{"input": "x", "expected": "y", "tags": "t"}',
])
def test_bad_lines_are_named(tmp_path: Path, line: str) -> None:
    path = tmp_path / "suite.jsonl"
    path.write_text('{"input": "ok", "expected": "y"}\n\n' + line + "\n")
    with pytest.raises(ChallengeSuiteError, match=r"suite.jsonl:3"):
        ChallengeSuite.load(path)
