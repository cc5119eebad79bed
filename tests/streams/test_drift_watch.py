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


def _inputs(rng: np.random.Generator, n: int, centre: np.ndarray) -> np.ndarray:
    return rng.normal(size=(n, centre.size)) * 0.3 + centre


def test_input_embeddings_keep_their_reference_when_a_promotion_comes_just_before_a_shift(
        ) -> None:
    # The embedding the served model computes is learnt again after a promotion (160 events
    # blind); a version-free input embedding is not, so a shift 80 events later alerts.
    found_input = 0
    for seed in range(5):
        rng = np.random.default_rng(seed)
        before, after = np.ones(24), np.ones(24) * np.random.default_rng(9).choice([0.6, 1.4], 24)
        watch = DriftWatch(projections=4, centroid_events=160, input_features=64)
        found = []
        for version, centre, n in (("v1", before, 800), ("v2", before, 80), ("v2", after, 320)):
            rows = _inputs(rng, n, centre)
            for k in range(0, n, 16):
                found += watch.update("d", inputs=rows[k:k + 16], version=version, head=version)
        assert all(f.signal is DriftSignal.INPUT for f in found)
        found_input += len(found) == 1
    assert found_input == 5


def test_a_producer_that_starts_sending_input_embeddings_restarts_the_input_signal() -> None:
    watch = DriftWatch(projections=2, centroid_events=16, input_features=32)
    watch.update("d", texts=["some words"] * 32)
    assert watch.domain("d")._inputs.dim == 32  # byte bigrams
    rng = np.random.default_rng(0)
    assert watch.update("d", inputs=_inputs(rng, 32, np.ones(5))) == []
    state = watch.domain("d")
    assert state._inputs.dim == 5 and state._inputs.centroid is not None
    seen = {n: m.events_seen for n, m in state.monitors.items() if n.startswith("input_")}
    # Only the embeddings were counted (the distance after its 16-event centroid).
    assert seen == {"input_distance": 16, "input_projection_0": 32, "input_projection_1": 32}


def _texts(rng: np.random.Generator, n: int, vocabulary: tuple[str, ...]) -> list[str]:
    return [" ".join(vocabulary[j] for j in rng.integers(len(vocabulary), size=6))
            for _ in range(n)]


def _input_alerts(texts: list[str]) -> list[int]:
    from driftloop.schemas.settings import WorkerSettings
    from driftloop.streams.pipeline import new_drift_watch

    watch, found = new_drift_watch(WorkerSettings()), []  # the worker's defaults
    for start in range(0, len(texts), 100):
        found += [start for f in watch.update("d", texts=texts[start:start + 100])
                  if f.signal is DriftSignal.INPUT]
    return found


def test_a_number_that_moves_with_every_event_is_not_input_drift() -> None:
    # A ticket number or a timestamp in every input: before digits were folded, their
    # bigrams followed the counter and the defaults alerted 44 and 56 times in 40,000
    # events. A counter's length changes once here (at 10,000), which may alert once.
    from driftloop.tools.bench.worker import _WORDS  # the worker bench's steady vocabulary

    rng = np.random.default_rng(0)
    steady = _texts(rng, 40_000, _WORDS)
    ticket = [f"ticket #{i}: {text}" for i, text in enumerate(steady)]
    stamped = [f"[2026-12-07T{i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}] {text}"
               for i, text in enumerate(steady)]
    assert len(_input_alerts(ticket)) <= 1 and _input_alerts(stamped) == []
    # A change of the words themselves is still drift, with or without the counter.
    slang = _texts(rng, 20_000, ("lol", "@user", "omg", "#fail", "rt", "u", "gr8", "idk", "smh"))
    shifted = steady[:20_000] + slang
    for texts in (shifted, [f"ticket #{i}: {text}" for i, text in enumerate(shifted)]):
        assert any(20_000 <= at < 20_500 for at in _input_alerts(texts))
