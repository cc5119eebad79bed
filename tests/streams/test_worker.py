"""The worker's process set-up: garbage-collector tuning."""

from __future__ import annotations

import gc

import pytest

from driftloop.schemas.settings import Settings, SettingsError
from driftloop.streams.worker import tune_gc


@pytest.fixture
def restore_gc():
    before = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*before)


def test_tune_gc_raises_the_young_threshold_and_freezes_the_start_up_heap(restore_gc) -> None:
    _, older, oldest = gc.get_threshold()
    assert tune_gc(50_000) == (50_000, older, oldest)
    assert gc.get_threshold()[0] == 50_000
    assert gc.get_freeze_count() > 0  # modules and libraries are out of the collector's way


def test_tune_gc_zero_keeps_the_interpreter_default(restore_gc) -> None:
    before = gc.get_threshold()
    assert tune_gc(0) == before and gc.get_freeze_count() == 0


def test_worker_gc_threshold_defaults_high_and_refuses_negative() -> None:
    assert Settings().worker.gc_threshold == 100_000
    with pytest.raises(SettingsError, match="gc_threshold"):
        Settings(worker={"gc_threshold": -1})
