"""TaskState: redelivery is skipped, ids are deterministic, feedback becomes quality + examples."""

from __future__ import annotations

import numpy as np
from task_helpers import fresh, items, labels

from driftloop.schemas import Feedback, Interaction
from driftloop.schemas.commands import Command
from driftloop.schemas.enums import FeedbackSource
from driftloop.schemas.settings import TaskSettings, WorkerSettings
from driftloop.streams.pipeline import TaskState, new_buffer, new_join_window
from driftloop.streams.state_codec import dumps, loads


def test_seen_skips_redelivered_offsets_per_topic_partition():
    state, _, _ = fresh()
    assert not state.seen("ix", 0, 5) and state.seen("ix", 0, 5) and state.seen("ix", 0, 4)
    assert not state.seen("ix", 1, 0) and not state.seen("fb", 0, 0)
    assert state.counters["redelivered_skipped"] == 2


def test_feedback_that_leaves_the_join_window_unjoined_is_counted():
    state, join, buffer = fresh()  # a one-hour window
    early = items(3)
    state.on_feedback(labels(early), join=join, buffer=buffer, bucket="f0", now=0.0)
    assert state.counters["feedback_expired"] == 0  # still waiting for its interactions
    # Interactions three hours later in event time: waiting feedback expires by the
    # interactions' progress (its interactions are not coming).
    state.on_interactions(items(2, start=10_800), join=join, buffer=buffer, bucket="i0", now=1.0)
    assert state.counters["feedback_expired"] == 3 and state.counters["joined"] == 0
    # Feedback that arrives late waits its turn in the window's order, then is counted too.
    state.on_feedback(labels(items(2, start=10)), join=join, buffer=buffer, bucket="f1", now=2.0)
    state.on_interactions(items(1, start=20_000), join=join, buffer=buffer, bucket="i1", now=3.0)
    assert state.counters["feedback_expired"] == 5 and state.counters["joined"] == 0


def test_label_requests_respect_budget_and_have_interaction_ids():
    state, join, buffer = fresh()
    effects = state.on_interactions(items(50), join=join, buffer=buffer, bucket="b0", now=0.0)
    assert len(effects.label_requests) == 3
    assert all(r.id == f"lr-{r.interaction.id}" for r in effects.label_requests)
    assert all(r.reason.value == "margin" for r in effects.label_requests)


def test_feedback_updates_quality_buffer_and_a_replayed_state_gives_the_same_request_id():
    state, join, buffer = fresh()
    xs = items(10)
    state.on_interactions(xs, join=join, buffer=buffer, bucket="b0", now=0.0)
    state.on_feedback(labels(xs[:5], "pos") + labels(xs[5:], "neg") + labels(xs, kind="rating"),
                      join=join, buffer=buffer, bucket="b1", now=1.0)
    assert state.quality.accuracy() == 0.5 and state.counters["joined"] == 20
    assert buffer.new_count == 10
    [fig] = state.quality.figures()
    assert fig.mean_rating == 3.0 and fig.outcomes == 10
    saved = dumps((state, buffer))
    state.on_command(Command(id="c", task="t", kind="trigger"), now=2.0)
    [first] = state.check_triggers(buffer, now=2.0)
    # A crash before the changelog write: the state comes back, the same request is rebuilt.
    state2, buffer2 = loads(saved)
    state2.on_command(Command(id="c", task="t", kind="trigger"), now=3.0)
    [again] = state2.check_triggers(buffer2, now=3.0)
    assert first.id == again.id == "tr-t-000001"
    assert [e.input for e in first.examples] == [e.input for e in again.examples]
    assert not state2.on_command(Command(id="c", task="t", kind="trigger"), now=4.0)


def test_promoted_version_becomes_the_parent_and_challenge_failures_trigger():
    state, join, buffer = fresh()
    xs = items(8)
    state.on_interactions(xs, join=join, buffer=buffer, bucket="b0", now=0.0)
    state.on_feedback(labels(xs), join=join, buffer=buffer, bucket="b1", now=1.0)
    state.on_command(Command(id="p", task="t", kind="promoted", version="v7"), now=2.0)
    state.on_command(Command(id="x", task="t", kind="challenge", version="v7",
                             reason="v7 failed"), now=2.0)
    [request] = state.check_triggers(buffer, now=2.0)
    assert request.trigger.value == "challenge" and request.parent_version == "v7"
    assert state.check_triggers(buffer, now=3.0) == []  # nothing new to train on


def test_error_rate_shift_raises_an_error_rate_alert():
    worker = WorkerSettings(drift={"block_size": 8, "warmup_blocks": 10})
    state = TaskState("t", worker, TaskSettings())
    join, buffer = new_join_window(worker), new_buffer(worker)
    rng = np.random.default_rng(0)
    alerts = []
    for step in range(40):
        xs = items(100, start=step * 100)
        state.on_interactions(xs, join=join, buffer=buffer, bucket=f"i{step}", now=step)
        wrong = rng.random(100) < (0.1 if step < 20 else 0.6)
        fbs = [Feedback(id=f"f{x.id}", interaction_id=x.id, ts=x.ts, task="t", kind="label",
                        value="neg" if bad else "pos") for x, bad in zip(xs, wrong, strict=True)]
        alerts += state.on_feedback(fbs, join=join, buffer=buffer, bucket=f"f{step}",
                                    now=step).drift_alerts
    assert [a.signal.value for a in alerts].count("error_rate") == 1


def test_clock_ticks_fire_a_timed_schedule_without_new_events_and_are_not_remembered():
    from driftloop.streams.commands import clock_tick

    worker = WorkerSettings(triggers={"min_examples": 4, "cooldown_s": 0, "every_s": 60,
                                      "regime_growth": None,
                                      "metric_threshold": None, "metric_max_drop": None})
    state, join, buffer = TaskState("t", worker, TaskSettings()), new_join_window(worker), \
        new_buffer(worker)
    xs = items(6)
    state.on_interactions(xs, join=join, buffer=buffer, bucket="i:0:0", now=100.0)
    state.on_feedback(labels(xs), join=join, buffer=buffer, bucket="f:0:0", now=101.0)
    assert state.check_triggers(buffer, now=101.0) == []  # the schedule's clock just started
    state.on_command(clock_tick("t", now=130.0), now=130.0)
    assert state.check_triggers(buffer, now=130.0) == []  # not due yet
    assert state.on_command(clock_tick("t", now=170.0), now=170.0)
    [request] = state.check_triggers(buffer, now=170.0)
    assert request.trigger.value == "schedule" and len(request.examples) == 6
    assert state.counters["commands_tick"] == 2 and not state.commands_seen


def test_examples_carry_what_the_model_answered_and_the_feedback_kind():
    # The learner makes the examples the model got wrong into challenge probes.
    state, join, buffer = fresh()
    xs = items(4)
    state.on_interactions(xs, join=join, buffer=buffer, bucket="b0", now=0.0)
    state.on_feedback(labels(xs[:2], "neg") + labels(xs[2:3], "pos")
                      + labels(xs[3:], "a better answer", kind="correction"),
                      join=join, buffer=buffer, bucket="b1", now=1.0)
    state.on_command(Command(id="c-answers", task="t", kind="trigger"), now=2.0)
    [request] = state.check_triggers(buffer, now=2.0)
    seen = {e.interaction_id: (e.model_answer, e.feedback_kind.value, e.target)
            for e in request.examples}
    assert seen == {"i0": ("pos", "label", "neg"), "i1": ("pos", "label", "neg"),
                    "i2": ("pos", "label", "pos"),
                    "i3": ("pos", "correction", "a better answer")}


def test_slices_named_in_metadata_reach_quality_and_examples_and_bad_values_are_counted():
    from task_helpers import WORKER

    state = TaskState("t", WORKER, TaskSettings(slice_keys=["language", "tier"]))
    join, buffer = new_join_window(WORKER), new_buffer(WORKER)
    named = [{"language": "de", "tier": 2, "app": "x"}, {"language": "en", "tier": True},
             {"language": {"nested": 1}}, {"language": "x" * 129}, {}]
    xs = [x.model_copy(update={"metadata": m}) for x, m in zip(items(5), named, strict=True)]
    state.on_interactions(xs, join=join, buffer=buffer, bucket="b0", now=0.0)
    assert state.counters["slice_values_refused"] == 2  # a nested and an over-long value
    state.on_feedback(labels(xs[:1], "pos") + labels(xs[1:], "neg"), join=join, buffer=buffer,
                      bucket="b1", now=1.0)
    assert [(f.name, f.accuracy, f.outcomes) for f in state.quality.slice_figures()] == [
        ("language=de", 1.0, 1), ("language=en", 0.0, 1), ("tier=2", 1.0, 1),
        ("tier=true", 0.0, 1)]
    state.on_command(Command(id="c-slices", task="t", kind="trigger"), now=2.0)
    [request] = state.check_triggers(buffer, now=2.0)
    assert {e.interaction_id: e.slices for e in request.examples} == {
        "i0": {"language": "de", "tier": "2"}, "i1": {"language": "en", "tier": "true"},
        "i2": {}, "i3": {}, "i4": {}}
    # A state without slice keys names none (and a state from before slices has none).
    plain, join, buffer = fresh()
    plain.on_interactions(xs, join=join, buffer=buffer, bucket="b0", now=0.0)
    assert plain.counters["slice_values_refused"] == 0


def test_a_quality_tracker_keeps_its_newest_slices_and_one_from_before_slices_reads_none():
    from driftloop.streams.quality import QualityTracker

    quality = QualityTracker(window=4)
    quality.max_slices = 2
    for value in ("a", "b", "a", "c"):
        quality.record_outcome("d", "v1", True, slices=[("k", value)])
    assert [f.name for f in quality.slice_figures()] == ["k=a", "k=c"]  # b updated longest ago
    old = QualityTracker(window=4)
    del old.__dict__["_slice_outcomes"]  # as unpickled from a state written before slices
    assert old.slice_figures() == []
    old.record_outcome("d", "v1", False, slices=[("k", "a")])
    assert old.slice_figures()[0].accuracy == 0.0


def test_a_revised_label_replaces_the_interactions_example_instead_of_adding_one():
    # review/answers.py publishes a changed answer as feedback with metadata.revises; the
    # buffer must end with the new target only, and a redelivery must change nothing.
    state, join, buffer = fresh()
    xs = items(2)
    state.on_interactions(xs, join=join, buffer=buffer, bucket="b0", now=0.0)
    first = Feedback(id="lr-i0.review", interaction_id="i0", ts=2.0, task="t", kind="label",
                     value="neg", source="reviewer", metadata={"label_request_id": "lr-i0"})
    revised = first.model_copy(update={
        "id": "lr-i0.review.1", "value": "pos", "ts": 3.0,
        "metadata": {"label_request_id": "lr-i0", "revises": "lr-i0.review", "revision": 1}})
    state.on_feedback([first], join=join, buffer=buffer, bucket="f0", now=2.0)
    effects = state.on_feedback([revised], join=join, buffer=buffer, bucket="f1", now=3.0)
    assert effects.buffer_changed
    # the interaction's outcome was counted at the first answer: not a second time (quality,
    # error-rate detectors, the A/B test's outcomes)
    assert effects.outcomes == []
    assert [fig.outcomes for fig in state.quality.figures()] == [1]
    assert [(e.interaction_id, e.target) for e in buffer.new_examples] == [("i0", "pos")]
    again = state.on_feedback([revised], join=join, buffer=buffer, bucket="f1", now=3.0)
    assert not again.buffer_changed and buffer.new_count == 1
    assert state.counters["examples"] == 1 and state.counters["examples_revised"] == 1


def test_a_rollback_makes_the_restored_version_the_parent_of_the_next_request():
    from driftloop.schemas import ModelVersion, VersionStatus
    from driftloop.streams.commands import commands_from_version

    def relayed(event: ModelVersion, now: float) -> None:
        for command in commands_from_version(event, challenge_min_score=None):
            state.on_command(command, now=now)

    state, join, buffer = fresh()
    first = ModelVersion(version_id="v7", ts=1.0, task="t", base_model="m",
                         adapter_uri="file:///a/v7", sha256="0" * 64, size_bytes=1,
                         status=VersionStatus.PROMOTED)
    second = first.model_copy(update={"version_id": "v8", "ts": 2.0, "parent_version": "v7"})
    relayed(first, 1.0)
    relayed(second, 2.0)
    # The rollback: v8 rolled back, v7 promoted again (the same version, a new event).
    relayed(second.with_status(VersionStatus.ROLLED_BACK, ts=3.0), 3.0)
    relayed(first.with_status(VersionStatus.PROMOTED, ts=3.0), 3.0)
    relayed(first.with_status(VersionStatus.PROMOTED, ts=3.0), 3.5)  # relayed twice: once
    assert state.counters["commands_promoted"] == 3
    xs = items(40)
    state.on_interactions(xs, join=join, buffer=buffer, bucket="b0", now=4.0)
    state.on_feedback(labels(xs), join=join, buffer=buffer, bucket="b1", now=4.0)
    state.on_command(Command(id="c", task="t", kind="trigger"), now=5.0)
    [request] = state.check_triggers(buffer, now=5.0)
    assert request.parent_version == "v7"


def test_a_task_that_names_many_domains_is_warned_about_once_per_doubling(caplog):
    # Every domain keeps drift monitors in the task state, written by every step.
    import logging

    worker = WorkerSettings()
    state = TaskState("t", worker, TaskSettings())
    join, buffer = new_join_window(worker), new_buffer(worker)
    caplog.set_level(logging.WARNING, logger="driftloop.streams.pipeline")
    for d in range(130):
        event = Interaction(id=f"i{d}", ts=float(d), task="t", domain=f"tenant-{d}",
                            model_version="v1", input="hello", prediction="pos")
        state.on_interactions([event], join=join, buffer=buffer, bucket=f"b{d}", now=1.0)
    warned = [r.getMessage() for r in caplog.records if "has seen" in r.getMessage()]
    assert len(warned) == 2 and "has seen 64 domains" in warned[0]
    assert "has seen 128 domains" in warned[1]


def test_domains_beyond_the_cap_are_tracked_as_one_overflow_domain_and_counted(caplog):
    # A producer naming one domain per customer must not grow the task state without bound:
    # events of domains past max_domains are watched, counted and learnt as "other".
    import logging

    worker = WorkerSettings(max_domains=3, triggers={"min_examples": 1000})
    state = TaskState("t", worker, TaskSettings())
    join, buffer = new_join_window(worker), new_buffer(worker)
    caplog.set_level(logging.WARNING, logger="driftloop.streams.pipeline")
    first = items(2, domain="a") + items(2, start=10, domain="b")
    state.on_interactions(first, join=join, buffer=buffer, bucket="b0", now=0.0)
    # One batch: a known domain, one that still fits, then three past the cap.
    batch = [x for k, d in enumerate(("a", "c", "d", "e", "f"))
             for x in items(2, start=100 + 10 * k, domain=d)]
    state.on_interactions(batch, join=join, buffer=buffer, bucket="b1", now=1.0)
    state.on_interactions(items(3, start=200, domain="g"), join=join, buffer=buffer,
                          bucket="b2", now=2.0)
    state.on_interactions(items(1, start=300, domain="b"), join=join, buffer=buffer,
                          bucket="b3", now=3.0)
    assert dict(state.domain_counts) == {"a": 4, "b": 3, "c": 2, "other": 9}
    assert state.counters["domains_overflowed"] == 9
    assert sorted(state.drift.domains) == ["a", "b", "c", "other"]
    state.on_feedback(labels(batch + first), join=join, buffer=buffer, bucket="f0", now=4.0)
    by_input = {e.input: e.domain for e in buffer.new_examples}
    assert by_input["in 130"] == "other" and by_input["in 110"] == "c"
    assert by_input["in 0"] == "a" and len(by_input) == 14
    overflow = [r.getMessage() for r in caplog.records if "worker.max_domains" in r.getMessage()]
    assert len(overflow) == 1 and "more than 3 domains" in overflow[0]


def test_a_reviewers_label_weighs_what_the_settings_say_and_a_users_one():
    worker = WorkerSettings(buffer={"reviewer_weight": 3.0})
    state = TaskState("t", worker, TaskSettings())
    join, buffer = new_join_window(worker), new_buffer(worker)
    xs = items(4)
    state.on_interactions(xs, join=join, buffer=buffer, bucket="b0", now=0.0)
    answers = labels(xs[:2]) + [f.model_copy(update={"source": FeedbackSource.REVIEWER})
                                for f in labels(xs[2:])]
    state.on_feedback(answers, join=join, buffer=buffer, bucket="b1", now=1.0)
    weights = {e.interaction_id: e.weight for e in buffer.new_examples}
    assert weights == {"i0": 1.0, "i1": 1.0, "i2": 3.0, "i3": 3.0}
    assert loads(dumps(state)).reviewer_weight == 3.0
