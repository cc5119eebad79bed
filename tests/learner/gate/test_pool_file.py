"""The gate pool in the store: generations written by compare-and-swap, merged on conflict,
so two learners saving one task's pool (a rebalance in the middle of an update) lose nothing;
bad files read as an empty pool."""

from __future__ import annotations

import json
import logging
import shutil
import threading
from pathlib import Path

import fsspec
import pytest
from pool_helpers import FRACTION, examples, held_texts, pool

from driftloop.learner.gate.pool import GatePool
from driftloop.learner.gate.pool_file import GatePoolFile, TaskGatePools
from driftloop.learner.gate.split import held_out
from driftloop.schemas.events import TrainingExample


def pool_file(tmp_path: Path) -> GatePoolFile:
    return GatePoolFile(fsspec.filesystem("file"), str(tmp_path))


def loaded(file: GatePoolFile, task: str, into: GatePool) -> GatePool:
    file.load(task, into)
    return into


def learner(tmp_path: Path, capacity: int = 200) -> TaskGatePools:
    return TaskGatePools(pool_file(tmp_path), capacity=capacity, max_bytes=1_000_000,
                         holdout_fraction=FRACTION)


def test_round_trip_through_the_store(tmp_path: Path) -> None:
    p = pool()
    p.admit(examples(held_texts(4)) + examples(held_texts(2, "news"), "nyt"))
    p.withdraw([held_texts(5)[4]])
    pool_file(tmp_path).save("sentiment", p, read=0)
    assert (tmp_path / "gate-pool" / "default" / "sentiment" / "000000000001.json").is_file()
    again = loaded(pool_file(tmp_path), "sentiment", pool())
    assert again.to_dict() == p.to_dict()
    assert again.admit(examples(held_texts(5)[4:])) == 0  # still withdrawn


def test_other_settings_drop_entries_that_are_no_longer_held_out(tmp_path: Path) -> None:
    p = pool()
    p.admit(examples(held_texts(40)))
    pool_file(tmp_path).save("sentiment", p, read=0)
    again = loaded(pool_file(tmp_path), "sentiment", pool(seed=1))
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
    with caplog.at_level(logging.WARNING, logger="driftloop.learner.gate.pool_file"):
        assert len(loaded(pool_file(tmp_path), "sentiment", p)) == 0
    assert "unreadable" in caplog.text


def test_an_oversized_file_is_not_read(tmp_path: Path,
                                       caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "gate-pool").mkdir()
    record = {"format": 1, "examples": [["movies", "x" * 1000, "a"]] * 3000}
    (tmp_path / "gate-pool" / "sentiment.json").write_text(json.dumps(record))
    with caplog.at_level(logging.WARNING, logger="driftloop.learner.gate.pool_file"):
        assert len(loaded(pool_file(tmp_path), "sentiment", pool(max_bytes=1000))) == 0
    assert "more than a pool" in caplog.text


def test_a_missing_file_is_an_empty_pool(tmp_path: Path) -> None:
    assert len(loaded(pool_file(tmp_path), "sentiment", pool())) == 0


def test_regimes_survive_the_store_and_a_format_1_file_reads_as_regime_0(
        tmp_path: Path) -> None:
    texts = held_texts(4)
    saved = pool()
    saved.admit([TrainingExample(input=t, target="positive", regime=3) for t in texts])
    file = pool_file(tmp_path)
    file.save("t", saved, read=0)
    assert {e.regime for e in loaded(file, "t", pool()).examples({"default"})} == {3}
    old = {"format": 1, "seed": 0, "holdout_fraction": FRACTION, "withdrawn": [],
           "examples": [["default", t, "positive"] for t in texts]}
    shutil.rmtree(tmp_path / "gate-pool" / "default" / "t")  # an older driftloop's file
    (tmp_path / "gate-pool" / "t.json").write_text(json.dumps(old))
    assert {e.regime for e in loaded(file, "t", pool()).examples({"default"})} == {0}


def test_two_learners_saving_one_task_lose_no_example(tmp_path: Path) -> None:
    """A rebalance hands the task to B while A is still in an update: both read the same
    generation, both save; the second save finds the first and merges it."""
    a, b = learner(tmp_path), learner(tmp_path)
    texts = held_texts(30)
    a.after_update("t", trained=[], holdout=examples(texts[:10]))  # generation 1
    assert len(a.pool("t")) == len(b.pool("t")) == 10  # both hold generation 1
    b.after_update("t", trained=[], holdout=examples(texts[10:20]))  # B: generation 2
    # A never saw generation 2; its save merges it instead of overwriting it.
    a.after_update("t", trained=[], holdout=examples(texts[20:]))
    fresh = learner(tmp_path).pool("t")
    assert {e.input for e in fresh.examples({"movies"})} == set(texts)
    assert pool_file(tmp_path).latest("t") == 3
    # B's next update judges on A's examples too: newer generations merge before it.
    assert {e.input for e in b.pool("t").examples({"movies"})} == set(texts)


def test_a_withdrawal_by_either_learner_survives_the_merge(tmp_path: Path) -> None:
    a, b = learner(tmp_path), learner(tmp_path)
    texts = held_texts(6)
    a.after_update("t", trained=[], holdout=examples(texts))
    b.pool("t")
    b.after_update("t", trained=examples(texts[:1]), holdout=[])  # B trained on one
    a.after_update("t", trained=[], holdout=examples(texts[1:]))  # A re-pools the rest
    kept = {e.input for e in learner(tmp_path).pool("t").examples({"movies"})}
    assert kept == set(texts[1:])


def test_concurrent_savers_on_threads_lose_nothing(tmp_path: Path) -> None:
    texts = held_texts(80)
    learners = [learner(tmp_path) for _ in range(4)]
    for each in learners:
        each.pool("t")  # all start from the same (empty) generation

    def work(index: int) -> None:
        for start in range(index * 20, index * 20 + 20, 5):
            learners[index].after_update("t", trained=[],
                                         holdout=examples(texts[start:start + 5]))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    fresh = learner(tmp_path).pool("t")
    assert {e.input for e in fresh.examples({"movies"})} == set(texts)
    # Old generations are pruned; the newest few stay.
    assert len(list((tmp_path / "gate-pool" / "default" / "t").glob("*.json"))) <= 4


def test_a_pool_cleared_for_a_fresh_experiment_does_not_come_back(tmp_path: Path) -> None:
    a = learner(tmp_path)
    a.after_update("t", trained=[], holdout=examples(held_texts(5)))
    a.clear("t")
    assert len(learner(tmp_path).pool("t")) == 0


def test_deployments_sharing_a_store_keep_their_pools_apart(tmp_path: Path) -> None:
    eu = TaskGatePools(GatePoolFile(fsspec.filesystem("file"), str(tmp_path), deployment="eu"),
                       capacity=50, max_bytes=100_000, holdout_fraction=FRACTION)
    us = TaskGatePools(GatePoolFile(fsspec.filesystem("file"), str(tmp_path), deployment="us"),
                       capacity=50, max_bytes=100_000, holdout_fraction=FRACTION)
    eu.after_update("t", trained=[], holdout=examples(held_texts(4, "eu")))
    us.after_update("t", trained=[], holdout=examples(held_texts(3, "us")))
    assert len(eu.pool("t")) == 4 and len(us.pool("t")) == 3
