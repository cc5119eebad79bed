"""Shifts and regimes: what opens a regime, what a promotion must not look like, and how the
task's requests follow a regime (the drift trigger waits for its labels, the schedule grows,
one request in flight)."""

from __future__ import annotations

import numpy as np
from stream_helpers import text_of

from driftloop.schemas import Feedback, Interaction
from driftloop.schemas.commands import Command
from driftloop.schemas.settings import TaskSettings, WorkerSettings
from driftloop.streams.pipeline import TaskState, new_buffer, new_join_window

# Small blocks so a few hundred events warm the monitors up; no metric trigger.
WORKER = WorkerSettings(
    drift={"block_size": 8, "warmup_blocks": 6, "reference_blocks": 6, "centroid_events": 48},
    triggers={"min_examples": 8, "cooldown_s": 0, "metric_threshold": None,
              "metric_max_drop": None},
    active={"budget": 0})


def fresh(worker: WorkerSettings = WORKER) -> tuple[TaskState, object, object]:
    return TaskState("t", worker, TaskSettings()), new_join_window(worker), new_buffer(worker)


def events(n: int, *, start: int, centre: float, version: str = "v1",
           domain: str = "live", probe: bool = False,
           words: list[str] | None = None) -> list[Interaction]:
    rng = np.random.default_rng(start)
    return [Interaction(
        id=f"i{start + k}", ts=float(start + k), task="t", domain=domain, model_version=version,
        input=text_of(start + k) if words is None else words[k % len(words)], prediction="a",
        scores={"confidence": float(np.clip(rng.normal(0.8, 0.05), 0, 1))},
        embedding=(rng.normal(size=8) * 0.1 + centre).round(4).tolist(), probe=probe)
        for k in range(n)]


def label(xs: list[Interaction], value: str = "a") -> list[Feedback]:
    return [Feedback(id=f"f-{x.id}", interaction_id=x.id, ts=x.ts + 0.5, task="t",
                     kind="label", value=value) for x in xs]


def play(state: TaskState, join: object, buffer: object, xs: list[Interaction], *,
         now: float, labelled: bool = True) -> list[object]:
    """Interactions in batches of 16 (labels after each); the requests they fired."""
    fired = []
    for i in range(0, len(xs), 16):
        batch = xs[i:i + 16]
        effects = state.on_interactions(batch, join=join, buffer=buffer, bucket=f"i{now}{i}",
                                        now=now)
        fired += effects.training_requests
        if labelled:
            fired += state.on_feedback(label(batch), join=join, buffer=buffer,
                                       bucket=f"f{now}{i}", now=now).training_requests
    return fired


def answer(state: TaskState, request: object, now: float) -> None:
    state.on_command(Command(id=f"answered-{request.id}", task="t", kind="answered",
                             version=f"v-{request.id}", request=request.id), now=now)


def test_an_alert_opens_a_regime_whose_labels_a_drift_request_waits_for():
    worker = WORKER.model_copy(update={"triggers": WORKER.triggers.model_copy(
        update={"regime_growth": None})})
    state, join, buffer = fresh(worker)
    play(state, join, buffer, events(160, start=0, centre=0.0), now=1.0)  # learn the reference
    regime = state.training.regime
    # The shift, its interactions unlabelled yet: the alert comes, no request (no labels).
    shifted = events(96, start=1000, centre=3.0)
    fired = play(state, join, buffer, shifted, now=2.0, labelled=False)
    assert state.counters["drift_alerts_embedding"] >= 1 and fired == []
    assert state.training.regime == regime + 1 and state.training.regime_labels == 0
    # Labels of interactions from before the alert do not count for the new regime.
    state.on_feedback(label(events(8, start=150, centre=0.0)), join=join, buffer=buffer,
                      bucket="late", now=3.0)
    assert state.training.regime_labels == 0
    # Labels of the new regime's interactions do; the drift request fires at min_examples.
    after = events(8, start=2000, centre=3.0)
    assert state.on_interactions(after, join=join, buffer=buffer, bucket="new-i",
                                 now=4.0).training_requests == []
    requests = state.on_feedback(label(after), join=join, buffer=buffer, bucket="new",
                                 now=4.0).training_requests
    assert [r.trigger.value for r in requests] == ["drift"]
    [request] = requests
    assert request.metadata["regime"] == regime + 1
    assert {e.regime for e in request.examples} >= {regime + 1}


def test_a_promotion_relearns_the_references_and_other_versions_are_left_out():
    state, join, buffer = fresh()
    play(state, join, buffer, events(160, start=0, centre=0.0), now=1.0)
    state.on_command(Command(id="p2", task="t", kind="promoted", version="v2"), now=2.0)
    # The new head's embeddings moved (a new adapter), the traffic did not: no alert.
    play(state, join, buffer, events(320, start=1000, centre=3.0, version="v2"), now=3.0,
         labelled=False)
    # A canary's (or the old head's) events are not drift signals at all.
    play(state, join, buffer, events(160, start=3000, centre=-3.0, version="v9"), now=4.0,
         labelled=False)
    assert sum(v for k, v in state.counters.items() if k.startswith("drift_alerts")) == 0
    # A real shift under the new head is still seen.
    play(state, join, buffer, events(160, start=5000, centre=8.0, version="v2"), now=5.0,
         labelled=False)
    assert state.counters["drift_alerts_embedding"] >= 1


def test_a_new_domain_name_is_a_shift_at_once():
    state, join, buffer = fresh()
    effects = state.on_interactions(events(4, start=0, centre=0.0, domain="tweets"),
                                    join=join, buffer=buffer, bucket="a", now=1.0)
    assert effects.drift_alerts == []  # the first domain is where the task starts
    effects = state.on_interactions(events(4, start=10, centre=0.0, domain="movies"),
                                    join=join, buffer=buffer, bucket="b", now=2.0)
    [alert] = effects.drift_alerts
    assert (alert.signal.value, alert.domain, alert.detector) == ("domain", "movies",
                                                                 "new_domain")
    assert state.training.regime == 1


def test_probe_traffic_is_counted_and_never_learnt_from():
    state, join, buffer = fresh()
    probes = events(200, start=0, centre=0.0, probe=True)
    play(state, join, buffer, probes, now=1.0)
    assert state.counters["probe_interactions"] == 200
    assert state.counters["interactions"] == 0 and state.counters["joined"] == 0
    assert buffer.new_count == 0 and state.drift.domains == {}


def test_the_schedule_grows_within_a_regime_and_waits_for_each_answer():
    state, join, buffer = fresh()
    fired = play(state, join, buffer, events(16, start=0, centre=0.0), now=1.0)
    assert [r.metadata["regime_labels"] for r in fired] == [16]  # min_examples (8) reached
    # Unanswered: whatever arrives waits, the learner's pace is the cooldown.
    assert play(state, join, buffer, events(64, start=100, centre=0.0), now=2.0) == []
    answer(state, fired[0], now=3.0)
    [second] = play(state, join, buffer, events(16, start=200, centre=0.0), now=4.0)
    assert second.metadata["regime_labels"] == 80  # all that waited, in one request
    answer(state, second, now=5.0)
    # Next at twice as many regime labels (160), not at the next 8.
    assert play(state, join, buffer, events(48, start=300, centre=0.0), now=6.0) == []
    [third] = play(state, join, buffer, events(32, start=400, centre=0.0), now=7.0)
    assert third.metadata["regime_labels"] >= 160


def test_an_unanswered_request_stops_holding_the_next_after_the_timeout():
    state, join, buffer = fresh()
    [first] = play(state, join, buffer, events(16, start=0, centre=0.0), now=1.0)
    timeout = WORKER.triggers.answer_timeout_s
    assert play(state, join, buffer, events(32, start=100, centre=0.0), now=2.0) == []
    late = play(state, join, buffer, events(16, start=200, centre=0.0), now=2.0 + timeout)
    assert len(late) == 1 and late[0].id != first.id


def test_the_input_text_keeps_its_reference_through_a_promotion():
    # The embedding monitors learn their reference again after a promotion, blind for their
    # warm-up; the input's bigrams do not depend on the version, so a change of vocabulary
    # right after a promotion is still seen.
    rng = np.random.default_rng(7)
    tweets = [f"@user{rng.integers(99)} lol #fun {rng.integers(9)}" for _ in range(50)]
    reviews = [f"The film's {w} is a quiet triumph of restraint."
               for w in ("score", "cast", "pacing", "ending", "script")]
    state, join, buffer = fresh()
    play(state, join, buffer, events(160, start=0, centre=0.0, words=tweets), now=1.0)
    state.on_command(Command(id="p2", task="t", kind="promoted", version="v2"), now=2.0)
    play(state, join, buffer, events(96, start=1000, centre=0.0, version="v2", words=reviews),
         now=3.0, labelled=False)
    assert state.counters["drift_alerts_input"] == 1
    assert state.counters["drift_alerts_embedding"] == 0  # still learning the new version's


def test_without_input_features_the_text_is_not_watched():
    worker = WORKER.model_copy(update={"drift": WORKER.drift.model_copy(
        update={"input_features": 0})})
    state, join, buffer = fresh(worker)
    play(state, join, buffer, events(160, start=0, centre=0.0, words=["a b c"]), now=1.0)
    play(state, join, buffer, events(160, start=1000, centre=0.0, words=["zz yy xx ww"]),
         now=2.0, labelled=False)
    assert not any(k.startswith("drift_alerts") for k, v in state.counters.items() if v)


def test_input_embeddings_stand_for_the_inputs_when_every_event_carries_one() -> None:
    from driftloop.streams.drift import DriftWatch
    from driftloop.streams.shifts import ShiftAlerts

    group = events(16, start=0, centre=1.0)
    carried = [e.model_copy(update={"input_embedding": [0.1 * k, 0.2, 0.3]})
               for k, e in enumerate(group)]
    dims = []
    for batch in (carried, carried[:8] + group[8:]):  # all carry one; only half do
        shifts = ShiftAlerts("t", DriftWatch(projections=2, centroid_events=8,
                                             input_features=16))
        assert shifts.on_interactions("live", batch, np.full(16, 0.8), head="v1",
                                      now=1.0) == []
        dims.append(shifts.drift.domain("live")._inputs.dim)
    assert dims == [3, 16]  # the embeddings, else every text's byte bigrams
