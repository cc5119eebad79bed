from __future__ import annotations

import json
import logging
from pathlib import Path

import fsspec
import pytest

from driftloop.learner.gate.pool import GatePool, GatePoolFile
from driftloop.learner.gate.split import held_out
from driftloop.schemas.events import TrainingExample

FRACTION = 0.25


def held_texts(n: int, prefix: str = "text") -> list[str]:
    """``n`` texts that the split holds out under FRACTION and seed 0."""
    texts = (f"{prefix} {i}" for i in range(100_000))
    return [t for t in texts if held_out(t, FRACTION)][:n]


def examples(texts: list[str], domain: str = "movies") -> list[TrainingExample]:
    return [TrainingExample(input=t, target="positive", domain=domain) for t in texts]


def pool(capacity: int = 10, max_bytes: int = 100_000, **kw: float) -> GatePool:
    return GatePool(capacity=capacity, max_bytes=max_bytes,
                    holdout_fraction=kw.get("fraction", FRACTION), seed=int(kw.get("seed", 0)))


def pool_file(tmp_path: Path) -> GatePoolFile:
    return GatePoolFile(fsspec.filesystem("file"), str(tmp_path))


def test_only_examples_held_out_by_content_are_admitted() -> None:
    trainable = [t for t in (f"x {i}" for i in range(50)) if not held_out(t, FRACTION)]
    p = pool()
    assert p.admit(examples(trainable[:5])) == 0 and len(p) == 0
    assert p.admit(examples(held_texts(3))) == 3
    assert p.admit(examples(held_texts(3))) == 0 and len(p) == 3  # already pooled


def test_examples_per_domain_without_excluded_texts() -> None:
    p = pool()
    p.admit(examples(held_texts(3, "movie"), "movies") + examples(held_texts(2, "news"), "nyt"))
    assert p.counts() == {"movies": 3, "nyt": 2}
    assert len(p.examples({"movies"})) == 3 and len(p.examples({"movies", "nyt"})) == 5
    assert p.examples({"tweets"}) == []
    first = held_texts(1, "movie")[0]
    assert first not in {e.input for e in p.examples({"movies"}, exclude=[first])}


def test_capacity_per_domain_keeps_the_newest() -> None:
    texts = held_texts(8)
    p = pool(capacity=5)
    p.admit(examples(texts))
    p.admit(examples(held_texts(2, "news"), "nyt"))
    assert [e.input for e in p.examples({"movies"})] == texts[-5:]
    assert p.counts() == {"movies": 5, "nyt": 2}


def test_byte_bound_drops_the_oldest_over_all_domains() -> None:
    texts = held_texts(6)
    one = len(texts[0].encode()) + len("positive")
    p = pool(capacity=100, max_bytes=3 * one + 1)
    p.admit(examples(texts[:3]))
    p.admit(examples(held_texts(1, "news"), "nyt"))
    assert p.size_bytes <= 3 * one + 1 and len(p) <= 3
    assert texts[0] not in {e.input for e in p.examples({"movies"})}
    assert p.counts()["nyt"] == 1


def test_zero_capacity_pools_nothing() -> None:
    p = pool(capacity=0)
    assert p.admit(examples(held_texts(3))) == 0 and len(p) == 0


def test_withdrawn_examples_leave_and_are_refused_later() -> None:
    texts = held_texts(3)
    p = pool()
    p.admit(examples(texts))
    assert p.withdraw([texts[0], "never pooled"]) == 1
    assert p.admit(examples(texts[:1])) == 0
    assert texts[0] not in {e.input for e in p.examples({"movies"})}


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"capacity": -1, "max_bytes": 10, "holdout_fraction": 0.2}, "capacity"),
    ({"capacity": 1, "max_bytes": 0, "holdout_fraction": 0.2}, "max_bytes"),
    ({"capacity": 1, "max_bytes": 10, "holdout_fraction": 1.0}, "holdout_fraction"),
])
def test_bad_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        GatePool(**kwargs)


def test_round_trip_through_the_store(tmp_path: Path) -> None:
    p = pool()
    p.admit(examples(held_texts(4)) + examples(held_texts(2, "news"), "nyt"))
    p.withdraw([held_texts(5)[4]])
    pool_file(tmp_path).save("sentiment", p)
    assert (tmp_path / "gate-pool" / "sentiment.json").is_file()
    again = pool_file(tmp_path).load("sentiment", pool())
    assert again.to_dict() == p.to_dict()
    assert again.admit(examples(held_texts(5)[4:])) == 0  # still withdrawn


def test_other_settings_drop_entries_that_are_no_longer_held_out(tmp_path: Path) -> None:
    p = pool()
    p.admit(examples(held_texts(40)))
    pool_file(tmp_path).save("sentiment", p)
    again = pool_file(tmp_path).load("sentiment", pool(seed=1))
    assert 0 < len(again) < 40
    assert all(held_out(e.input, FRACTION, 1) for e in again.examples({"movies"}))


@pytest.mark.parametrize("content", [
    b"not json", b"[]", b'{"format": 99, "examples": []}',
    b'{"format": 1, "examples": {"a": 1}}', b'{"format": 1, "examples": [["movies", 3, "a"]]}',
    b'{"format": 1, "examples": [["Not A Slug!", "t", "a"]]}',
    b'{"format": 1, "examples": [], "withdrawn": [1, 2]}', b"\xff\xfe",
])
def test_a_corrupt_file_is_logged_and_the_pool_starts_empty(
        tmp_path: Path, content: bytes, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "gate-pool").mkdir()
    (tmp_path / "gate-pool" / "sentiment.json").write_bytes(content)
    p = pool()
    p.admit(examples(held_texts(2)))
    with caplog.at_level(logging.WARNING, logger="driftloop.learner.gate.pool"):
        assert len(pool_file(tmp_path).load("sentiment", p)) == 0
    assert "unreadable" in caplog.text


def test_an_oversized_file_is_not_read(tmp_path: Path,
                                       caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "gate-pool").mkdir()
    record = {"format": 1, "examples": [["movies", "x" * 1000, "a"]] * 3000}
    (tmp_path / "gate-pool" / "sentiment.json").write_text(json.dumps(record))
    with caplog.at_level(logging.WARNING, logger="driftloop.learner.gate.pool"):
        assert len(pool_file(tmp_path).load("sentiment", pool(max_bytes=1000))) == 0
    assert "more than a pool" in caplog.text


def test_a_missing_file_is_an_empty_pool(tmp_path: Path) -> None:
    assert len(pool_file(tmp_path).load("sentiment", pool())) == 0


def test_regimes_are_kept_apart_and_older_ones_are_what_must_not_be_forgotten() -> None:
    texts = held_texts(30)
    kept = pool(capacity=10)
    kept.admit([TrainingExample(input=t, target="positive", domain="live", regime=i // 10)
                for i, t in enumerate(texts)])
    # One regime does not push another out of the same domain's pool.
    assert len(kept) == 30 and kept.counts() == {"live": 30}
    assert [e.input for e in kept.examples({"live"}, regime=2)] == texts[20:]
    older = kept.older(2)
    assert {e.input for e in older} == set(texts[:20])
    assert [e.regime for e in older[:4]] == [0, 1, 0, 1]  # round robin, newest first
    assert len(kept.older(2, limit=5)) == 5 and kept.older(0) == []


def test_regimes_survive_the_store_and_a_format_1_file_reads_as_regime_0(
        tmp_path: Path) -> None:
    texts = held_texts(4)
    saved = pool()
    saved.admit([TrainingExample(input=t, target="positive", regime=3) for t in texts])
    file = pool_file(tmp_path)
    file.save("t", saved)
    assert {e.regime for e in file.load("t", pool()).examples({"default"})} == {3}
    old = {"format": 1, "seed": 0, "holdout_fraction": FRACTION, "withdrawn": [],
           "examples": [["default", t, "positive"] for t in texts]}
    (tmp_path / "gate-pool" / "t.json").write_text(json.dumps(old))
    assert {e.regime for e in file.load("t", pool()).examples({"default"})} == {0}
