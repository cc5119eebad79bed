"""The drift watch of one domain: one shift of the embeddings raises one alert."""

from __future__ import annotations

import numpy as np

from driftloop.schemas import DriftSignal
from driftloop.streams.drift import DriftWatch


def _shifted_embeddings(seed: int, before: int, after: int, dim: int = 32) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centre = np.random.default_rng(1).normal(size=dim) * 3.0
    direction = np.random.default_rng(2).choice([-1.0, 1.0], dim)
    emb = rng.normal(size=(before + after, dim)) + centre
    emb[before:] += 0.4 * direction  # every axis moves a little: each component sees it
    return emb


def test_one_embedding_shift_raises_one_alert_however_slow_its_other_components() -> None:
    alerts = []
    for seed in range(6):
        watch = DriftWatch(projections=4, centroid_events=160)
        emb = _shifted_embeddings(seed, 6_000, 20_000)
        found = []
        for start in range(0, emb.shape[0], 100):  # the worker feeds batches
            found += watch.update("d", embeddings=emb[start:start + 100])
        alerts.append(sum(f.signal is DriftSignal.EMBEDDING for f in found))
    assert alerts == [1] * 6


def test_a_state_saved_before_the_input_signal_reads_as_without_it() -> None:
    from driftloop.streams.state_codec import dumps, loads

    watch = DriftWatch(projections=2, centroid_events=16, input_features=32)
    watch.update("d", embeddings=np.ones((32, 4)), texts=["same text"] * 32)
    assert any(name.startswith("input_") for name in watch.domain("d").monitors)
    again = loads(dumps(watch))  # the input's centroid goes through the state allowlist
    assert again.domain("d")._inputs.centroid is not None
    old = DriftWatch(projections=2, centroid_events=16, input_features=32)
    state = old.domain("d")
    for saved in (old, state):  # what a pickle written by the previous release holds
        del saved.__dict__["input_features"]
    del state.__dict__["_inputs"]
    restored = loads(dumps(old))
    assert restored.update("d", embeddings=np.ones((32, 4)), texts=["text"] * 32) == []
    assert not any(name.startswith("input_") for name in restored.domain("d").monitors)
