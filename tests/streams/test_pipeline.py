"""TaskState: redelivery is skipped, ids are deterministic, feedback becomes quality + examples."""

from __future__ import annotations

import numpy as np

from driftloop.schemas import Feedback, Interaction
from driftloop.schemas.commands import Command
from driftloop.schemas.settings import TaskSettings, WorkerSettings
from driftloop.streams.pipeline import TaskState, new_buffer, new_join_window
from driftloop.streams.state_codec import dumps, loads

WORKER = WorkerSettings(triggers={"min_examples": 4, "cooldown_s": 0,
                                  "metric_threshold": None, "metric_max_drop": None},
                        active={"threshold": 0.5, "budget": 3})


def items(n: int, start: int = 0, domain: str = "a") -> list[Interaction]:
    rng = np.random.default_rng(start)
    return [Interaction(id=f"i{start + k}", ts=float(start + k), task="t", domain=domain,
                        model_version="v1", input=f"in {start + k}", prediction="pos",
                        output="pos", scores={"confidence": float(rng.uniform(0.5, 1.0))})
            for k in range(n)]


def labels(xs: list[Interaction], value: str = "neg", kind: str = "label") -> list[Feedback]:
    return [Feedback(id=f"f-{x.id}-{kind}", interaction_id=x.id, ts=x.ts + 1, task="t",
                     kind=kind, value=value if kind != "rating" else 3.0) for x in xs]


def fresh() -> tuple[TaskState, object, object]:
    return TaskState("t", WORKER, TaskSettings()), new_join_window(WORKER), new_buffer(WORKER)


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
    # Interactions two hours later in event time move the watermark past the feedback.
    state.on_interactions(items(2, start=7_200), join=join, buffer=buffer, bucket="i0", now=1.0)
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


def per_domain(buffer: dict | None = None, **triggers) -> tuple[TaskState, object, object]:
    """A task with an adapter per domain; trigger settings as in WORKER unless given."""
    worker = WorkerSettings(triggers={"min_examples": 4, "cooldown_s": 0,
                                      "metric_threshold": None, "metric_max_drop": None,
                                      **triggers}, buffer=buffer or {})
    return (TaskState("t", worker, TaskSettings(adapter_per_domain=True)),
            new_join_window(worker), new_buffer(worker))


def fed(state: TaskState, join, buffer, per_domain: dict[str, int], now: float = 0.0) -> None:
    """Interactions and labels: ``per_domain[d]`` examples of domain d."""
    start = 0
    for domain, n in per_domain.items():
        xs = items(n, start=start, domain=domain)
        state.on_interactions(xs, join=join, buffer=buffer, bucket=f"i-{domain}", now=now)
        state.on_feedback(labels(xs[: n // 2], "pos") + labels(xs[n // 2:], "neg"), join=join,
                          buffer=buffer, bucket=f"f-{domain}", now=now)
        start += 100


def test_per_domain_a_trigger_sends_one_request_a_domain_without_a_parent():
    state, join, buffer = per_domain()
    fed(state, join, buffer, {"news": 3, "tweets": 2})  # 5 >= 4 in all, no domain has 4
    state.on_command(Command(id="p", task="t", kind="promoted", version="v-news-1"), now=0.5)
    assert buffer.new_count == 5
    saved = dumps((state, buffer))
    state.on_command(Command(id="m", task="t", kind="trigger"), now=1.0)
    requests = state.check_triggers(buffer, now=1.0)
    # An operator asked: every domain goes, however few examples it has.
    assert [r.id for r in requests] == ["tr-t-000001", "tr-t-000002"]
    assert [{e.domain for e in r.examples if e.origin.value == "new"} for r in requests] == \
        [{"news"}, {"tweets"}]
    assert [r.metadata["domain"] for r in requests] == ["news", "tweets"]
    assert [r.metadata["new_examples"] for r in requests] == [3, 2]
    assert all(r.parent_version is None and r.trigger.value == "manual" for r in requests)
    assert buffer.new_count == 0 and state.counters["training_requests_manual"] == 2
    assert state.gate.fired_count == 1 and not state.pending_manual
    # A crash before the changelog write: the replayed state sends the same requests.
    state2, buffer2 = loads(saved)
    state2.on_command(Command(id="m", task="t", kind="trigger"), now=2.0)
    again = state2.check_triggers(buffer2, now=2.0)
    assert [r.id for r in again] == [r.id for r in requests]
    assert [[e.input for e in r.examples] for r in again] == \
        [[e.input for e in r.examples] for r in requests]


def test_per_domain_a_small_domain_waits_for_the_next_trigger():
    state, join, buffer = per_domain(every_examples=1)
    fed(state, join, buffer, {"news": 3, "tweets": 2})
    # Five new examples fire the schedule, but no domain has four: nothing is sent.
    assert state.check_triggers(buffer, now=1.0) == [] and state.gate.fired_count == 0
    xs = items(3, start=300, domain="news")
    state.on_interactions(xs, join=join, buffer=buffer, bucket="i-more", now=2.0)
    [request] = state.on_feedback(labels(xs), join=join, buffer=buffer, bucket="f-more",
                                  now=2.0).training_requests
    assert request.trigger.value == "schedule" and request.metadata["domain"] == "news"
    assert request.metadata["new_examples"] == 6 and request.id == "tr-t-000001"
    assert buffer.new_domain_counts() == {"tweets": 2}  # kept for a later trigger


def test_per_domain_replays_other_domains_under_the_ratio():
    state, join, buffer = per_domain({"replay_ratio": 0.5})
    fed(state, join, buffer, {"news": 8})
    state.on_command(Command(id="m1", task="t", kind="trigger"), now=1.0)
    [first] = state.check_triggers(buffer, now=1.0)
    assert first.metadata == {**first.metadata, "new_examples": 8, "replayed_examples": 0}
    xs = items(6, start=500, domain="tweets")
    state.on_interactions(xs, join=join, buffer=buffer, bucket="i-t", now=2.0)
    state.on_feedback(labels(xs), join=join, buffer=buffer, bucket="f-t", now=2.0)
    state.on_command(Command(id="m2", task="t", kind="trigger"), now=3.0)
    [second] = state.check_triggers(buffer, now=3.0)
    by_origin = {(e.origin.value, e.domain) for e in second.examples}
    assert by_origin == {("new", "tweets"), ("replay", "news")}
    assert second.metadata["replayed_examples"] == 6 and second.parent_version is None


def test_default_mode_still_sends_one_mixed_request_and_old_states_read_as_default():
    state, join, buffer = fresh()
    fed(state, join, buffer, {"news": 3, "tweets": 2})
    state.on_command(Command(id="p", task="t", kind="promoted", version="v7"), now=0.5)
    del state.adapter_per_domain  # a state pickled before the setting existed
    state = loads(dumps(state))
    state.on_command(Command(id="m", task="t", kind="trigger"), now=1.0)
    [request] = state.check_triggers(buffer, now=1.0)
    assert {e.domain for e in request.examples} == {"news", "tweets"}
    assert request.parent_version == "v7" and "domain" not in request.metadata
    assert state.counters["training_requests_manual"] == 1


def test_per_domain_a_domain_whose_new_examples_cannot_fit_a_request_is_not_sent():
    state, join, buffer = per_domain({"batch_max_bytes": 2000}, min_examples=1)
    fed(state, join, buffer, {"news": 2})
    state.on_command(Command(id="m1", task="t", kind="trigger"), now=1.0)
    assert len(state.check_triggers(buffer, now=1.0)) == 1  # a reservoir to replay
    big = Interaction(id="big", ts=2.0, task="t", domain="tweets", model_version="v1",
                      input="x" * 5000, prediction="pos", scores={"confidence": 0.6})
    state.on_interactions([big], join=join, buffer=buffer, bucket="i-big", now=2.0)
    state.on_feedback(labels([big]), join=join, buffer=buffer, bucket="f-big", now=2.0)
    state.on_command(Command(id="m2", task="t", kind="trigger"), now=3.0)
    assert state.check_triggers(buffer, now=3.0) == [] and buffer.new_count == 0
    assert state.counters["oversized_examples_skipped"] == 1 and state.training_seq == 1
