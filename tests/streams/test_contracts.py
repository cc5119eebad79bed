"""One contract suite over every detector wrapper, trigger policy and buffer (river/checks style).

Each object must: be deterministic under a seed, survive a state round trip (pickle through
the worker's allowlist codec, then behave exactly like the original), clone to a fresh object
with the same parameters, and have no mutable default arguments.
"""

from __future__ import annotations

import copy
import inspect
from dataclasses import replace

import numpy as np
import pytest

from driftloop.schemas.settings import TaskSettings, WorkerSettings
from driftloop.streams.active import ActiveSampler, probability_matrix
from driftloop.streams.buffer import LabeledExample, ReplayBuffer
from driftloop.streams.detectors import DETECTORS, DriftMonitor
from driftloop.streams.drift import DriftWatch
from driftloop.streams.join import JoinWindow
from driftloop.streams.pipeline import TaskState
from driftloop.streams.quality import QualityTracker
from driftloop.streams.state_codec import dumps, loads
from driftloop.streams.triggers import (
    ChallengePolicy,
    DriftPolicy,
    ManualPolicy,
    MetricPolicy,
    SchedulePolicy,
    TaskSignals,
    TriggerGate,
)


def _signal(seed: int, n: int = 4_000) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    x[n // 2:] += 1.5
    return x


def _examples(seed: int, n: int = 60) -> list[LabeledExample]:
    rng = np.random.default_rng(seed)
    return [LabeledExample(f"text {seed}-{i}", ["pos", "neg", "neu"][int(rng.integers(3))],
                           domain=["a", "b"][i % 2], difficulty=float(rng.random()))
            for i in range(n)]


# name -> (factory, drive(obj, seed) -> observable result)
def _drive_monitor(m: DriftMonitor, seed: int) -> object:
    out = []
    for chunk in np.array_split(_signal(seed), 7):
        out += [(d.events_seen, round(d.effect, 9)) for d in m.update_many(chunk)]
    return out, m.events_seen, m.alerts


def _drive_watch(w: DriftWatch, seed: int) -> object:
    rng = np.random.default_rng(seed)
    emb = rng.normal(size=(3_000, 8)) + 2.0
    emb[1_500:, :4] -= 4.0
    found = w.update("d", confidences=rng.random(3_000), embeddings=emb)
    return [(f.signal.value, f.component, f.detection.events_seen) for f in found]


def _drive_buffer(b: ReplayBuffer, seed: int) -> object:
    b.extend(_examples(seed))
    first = b.build_batch(size=16, replay_ratio=0.25)
    b.commit()
    b.extend(_examples(seed + 1))
    for example in _examples(seed + 2, n=5):  # reviewers changing their answers
        b.add(replace(example, interaction_id=example.input))
        b.revise(replace(example, target="neu", interaction_id=example.input, revision=1))
    second = b.build_batch(size=16, replay_ratio=0.25)
    return [(e.input, e.origin.value) for e in first + second], b.size_bytes


def _drive_sampler(s: ActiveSampler, seed: int) -> object:
    rng = np.random.default_rng(seed)
    p = rng.dirichlet([1, 1, 1], size=200)
    ids = [f"i{seed}-{k}" for k in range(200)]
    return s.select(ids, ids, probability_matrix(p.tolist()), now=10.0)


def _drive_gate(g: TriggerGate, seed: int) -> object:
    out = []
    for step in range(20):
        sig = TaskSignals(now=float(step * 100), new_examples=step * 10 + seed % 3,
                          accuracy=0.5 + step / 40, baseline=0.9, recent_outcomes=step * 20,
                          drift_alerts=("d/score",) if step % 7 == 3 else ())
        d = g.decide(sig)
        if d is not None:
            g.fired(now=sig.now, examples=sig.new_examples)
            out.append((step, d.kind.value))
    return out


def _drive_quality(q: QualityTracker, seed: int) -> object:
    rng = np.random.default_rng(seed)
    for k in range(300):
        q.record_outcome(["a", "b"][k % 2], "v1", bool(rng.random() < 0.7))
        q.record_rating("a", "v1", float(rng.integers(1, 6)))
    return q.accuracy(), q.baseline, [f.accuracy for f in q.figures()]


def _drive_join(j: JoinWindow, seed: int) -> object:
    pairs = []
    for k in range(10):
        pairs += j.add_feedback(f"f{k}", [{"id": f"f{seed}-{k}", "interaction_id": f"i{k}",
                                           "ts": float(k)}])
        pairs += j.add_interactions(f"i{k}", [{"id": f"i{k - 1}", "ts": float(k)}])
    return [(p.interaction["id"], p.feedback["id"]) for p in pairs], j.waiting_feedback


CASES = {
    **{f"monitor-{name}": (lambda name=name: DriftMonitor(detector=name, seed=3), _drive_monitor)
       for name in DETECTORS},
    "drift-watch": (lambda: DriftWatch(projections=2, centroid_events=300), _drive_watch),
    "replay-buffer": (lambda: ReplayBuffer(capacity=40, max_new=50, seed=5), _drive_buffer),
    "active-sampler": (lambda: ActiveSampler(strategy="entropy", budget=7), _drive_sampler),
    "trigger-gate": (lambda: TriggerGate([ManualPolicy(), ChallengePolicy(), DriftPolicy(),
                                          MetricPolicy(min_outcomes=50),
                                          SchedulePolicy(every_examples=150)],
                                         min_examples=20, cooldown_seconds=250), _drive_gate),
    "quality": (lambda: QualityTracker(window=100), _drive_quality),
    "join-window": (lambda: JoinWindow(window_seconds=5.0), _drive_join),
}


@pytest.fixture(params=sorted(CASES))
def case(request):
    return CASES[request.param]


def test_deterministic_under_a_seed(case):
    make, drive = case
    assert drive(make(), 11) == drive(make(), 11)


def test_state_round_trip_behaves_like_the_original(case):
    make, drive = case
    original = make()
    drive(original, 1)  # build up state
    restored = loads(dumps(original))
    assert drive(restored, 2) == drive(original, 2)


def test_clone_is_fresh_with_the_same_parameters(case):
    make, drive = case
    used = make()
    drive(used, 4)
    fresh = used.clone()
    assert fresh.get_params().keys() == used.get_params().keys()
    assert drive(fresh, 4) == drive(make(), 4)


def test_no_mutable_defaults(case):
    make, _ = case
    obj = make()
    for name, param in inspect.signature(type(obj).__init__).parameters.items():
        assert not isinstance(param.default, list | dict | set), f"{type(obj).__name__}.{name}"
    before = copy.deepcopy(obj.get_params())
    make()  # a second object must not share (and change) the first one's parameters
    assert obj.get_params().keys() == before.keys()


@pytest.mark.parametrize("policy", [SchedulePolicy(every_seconds=5.0), DriftPolicy(),
                                    MetricPolicy(), ChallengePolicy(), ManualPolicy()])
def test_policies_round_trip_and_clone(policy):
    assert loads(dumps(policy)) == policy
    assert policy.clone() == policy and policy.clone() is not policy


def test_task_state_round_trips_through_the_codec():
    state = TaskState("t", WorkerSettings(), TaskSettings())
    state.drift.update("d", confidences=np.random.default_rng(0).random(2_000))
    restored = loads(dumps(state))
    assert restored.drift.domain("d").events == 2_000
    assert restored.counters == state.counters


@pytest.mark.parametrize("build, message", [
    (lambda: DriftMonitor(detector="bocpd"), "valid: adwin, cusum, kswin, page_hinkley"),
    (lambda: DriftMonitor(block_size=0), "block_size"),
    (lambda: DriftMonitor(min_effect=float("nan")), "min_effect"),
    (lambda: DriftMonitor(detector="adwin", params={"bogus": 1}), "invalid params"),
    (lambda: ReplayBuffer(capacity=0), "capacity"),
    (lambda: ReplayBuffer().build_batch(replay_ratio=1.0), "replay_ratio"),
    (lambda: ActiveSampler(strategy="random"), "valid: least_confidence, margin, entropy"),
    (lambda: ActiveSampler(threshold=2.0), "threshold"),
    (lambda: TriggerGate([DriftPolicy(), DriftPolicy()]), "one policy per kind"),
    (lambda: SchedulePolicy(every_seconds=-1.0), "every_seconds"),
    (lambda: MetricPolicy(threshold=1.5), "threshold"),
    (lambda: JoinWindow(window_seconds=0), "window_seconds"),
    (lambda: QualityTracker(window=0), "window"),
    (lambda: DriftWatch(projections=-1), "projections"),
])
def test_invalid_arguments_fail_at_construction(build, message):
    from driftloop.streams.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match=message):
        build()


def test_the_standard_cusum_alerts_on_a_jump_a_short_reference_page_hinkley_misses() -> None:
    # The question stream's case: 10 reference blocks, then the error rate jumps by about
    # 2.5 standard deviations of a block mean (seen: Page-Hinkley silent for 15 blocks).
    import numpy as np

    from driftloop.streams.cusum import StandardCUSUM

    rng = np.random.default_rng(4)
    before, after = rng.normal(0.25, 0.1, 10), rng.normal(0.5, 0.1, 15)
    found = {}
    for detector in ("cusum", "page_hinkley"):
        monitor = DriftMonitor(detector=detector, block_size=1, warmup_blocks=10,
                               reference_blocks=10, min_effect=0.0)
        monitor.update_many(before)
        found[detector] = [h.blocks_seen for h in monitor.update_many(after)]
    assert found["cusum"] and found["cusum"][0] <= 20 and found["page_hinkley"] == []
    assert StandardCUSUM(threshold=5.0).update(6.0).drift_detected


@pytest.mark.parametrize("seed", range(4))
def test_quiet_blocks_judge_as_block_by_block_does(seed: int) -> None:
    # The steady-state path (a full reference, a CUSUM that does not alert) judges many
    # blocks at once; driven over shifts up and down in chunks of every size, it must raise
    # the same alerts and end in the same state as judging one block at a time.
    rng = np.random.default_rng(seed)
    values = np.concatenate([rng.normal(0.0, 1.0, 6_000), rng.normal(0.6, 1.0, 3_000),
                             rng.normal(-0.4, 2.0, 3_000), np.zeros(500),
                             rng.normal(0.0, 1.0, 4_000)])
    sizes = np.r_[rng.integers(1, 700, size=25), 5_000, rng.integers(1, 700, size=20)]
    chunks = np.array_split(values, np.cumsum(sizes))  # one of them past a quiet stretch
    batched = DriftMonitor(reference_blocks=40, seed=seed)
    single = DriftMonitor(reference_blocks=40, seed=seed)
    single._quiet_blocks = lambda done, start: 0  # type: ignore[method-assign]
    quiet, taken = batched._quiet_blocks, []
    batched._quiet_blocks = (  # type: ignore[method-assign]
        lambda done, start: taken.append(quiet(done, start)) or taken[-1])
    seen = {"batched": [], "single": []}
    for chunk in chunks:
        for name, monitor in (("batched", batched), ("single", single)):
            seen[name] += [(d.events_seen, d.blocks_seen, d.effect, d.reference_mean)
                           for d in monitor.update_many(chunk)]
    assert seen["batched"] == seen["single"] and len(seen["single"]) >= 2
    assert sum(taken) > values.size // 16 // 2  # most blocks took the quiet path
    del single._quiet_blocks, batched._quiet_blocks
    assert dumps(batched) == dumps(single)
