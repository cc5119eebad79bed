from __future__ import annotations

from pathlib import Path

import pytest

from driftloop.learner.errors import LearnerError
from driftloop.tools.demo.vader import MIN_ABS_RATING, balanced_sample, read_domain


def test_domains_read_with_neutral_ratings_dropped() -> None:
    movies = read_domain("movies")
    assert len(movies) == 10072
    assert all(abs(e.rating) >= MIN_ABS_RATING for e in movies)


def test_balanced_sample_is_deterministic() -> None:
    tweets = read_domain("tweets")
    assert balanced_sample(tweets, 20, seed=3) == balanced_sample(tweets, 20, seed=3)
    assert sum(e.label == "negative" for e in balanced_sample(tweets, 21)) == 10


def test_unknown_domain_and_malformed_lines(tmp_path: Path) -> None:
    with pytest.raises(LearnerError, match="unknown VADER domain"):
        read_domain("reddit")
    (tmp_path / "tweets_GroundTruth.txt").write_text("id\tsentiment\ttext\n1\t2.0\tgood\nbroken\n")
    assert [e.text for e in read_domain("tweets", folder=tmp_path)] == ["good"]
