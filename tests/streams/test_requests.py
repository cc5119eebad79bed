"""TrainingRequests: what a trigger sends, one request per domain under ``adapter_per_domain``,
and the same requests again from a replayed state."""

from __future__ import annotations

from collections import Counter

from task_helpers import WORKER, fresh, items, labels

from driftloop.schemas import Interaction
from driftloop.schemas.commands import Command
from driftloop.schemas.settings import TaskSettings, WorkerSettings
from driftloop.streams.buffer import LabeledExample
from driftloop.streams.pipeline import TaskState, new_buffer, new_join_window
from driftloop.streams.quality import QualityTracker
from driftloop.streams.requests import TrainingRequests, trigger_gate
from driftloop.streams.state_codec import dumps, loads


def test_the_gate_has_the_policies_the_settings_turn_on():
    names = [type(p).__name__ for p in trigger_gate(WORKER).policies]
    assert names == ["ManualPolicy", "ChallengePolicy", "DriftPolicy"]
    worker = WorkerSettings(triggers={"on_drift": False, "every_s": 60, "metric_threshold": 0.8})
    names = [type(p).__name__ for p in trigger_gate(worker).policies]
    assert names == ["ManualPolicy", "ChallengePolicy", "MetricPolicy", "SchedulePolicy"]


def test_signals_wait_until_a_request_is_sent_and_the_parent_follows_promotions():
    training = TrainingRequests("t", WORKER, TaskSettings())
    buffer, quality, counters = new_buffer(WORKER), QualityTracker(), Counter()
    training.take(Command(id="p", task="t", kind="promoted", version="v3"))
    training.take(Command(id="m", task="t", kind="trigger", reason="now"))
    assert training.check(buffer, quality, counters, now=1.0) == []  # nothing to train on
    assert training.pending_manual == ["now"] and training.sequence == 0
    buffer.extend(LabeledExample(f"x{n}", "pos") for n in range(4))
    [request] = training.check(buffer, quality, counters, now=2.0)
    assert (request.id, request.parent_version, request.reason) == \
        ("tr-t-000001", "v3", "manual: now")
    assert training.pending_manual == [] and counters == {"training_requests_manual": 1}


def per_domain(buffer: dict | None = None, **triggers) -> tuple[TaskState, object, object]:
    """A task with an adapter per domain; trigger settings as in WORKER unless given."""
    worker = WorkerSettings(triggers={"min_examples": 4, "cooldown_s": 0,
                                      "metric_threshold": None, "metric_max_drop": None,
                                      "regime_growth": None, **triggers}, buffer=buffer or {})
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
    assert state.training.gate.fired_count == 1 and not state.training.pending_manual
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
    assert state.check_triggers(buffer, now=1.0) == [] and state.training.gate.fired_count == 0
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
    del state.training.adapter_per_domain  # a state pickled before the setting existed
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
    assert state.counters["oversized_examples_skipped"] == 1 and state.training.sequence == 1


def test_resent_examples_ride_every_request_until_a_promotion_settles_them():
    from driftloop.schemas.enums import ExampleOrigin

    worker = WorkerSettings(triggers={"min_examples": 1, "cooldown_s": 0,
                                      "metric_threshold": None, "metric_max_drop": None,
                                      "regime_growth": None},
                            buffer={"resend_until_promoted": True, "replay_ratio": 0.5})
    state, buffer = TaskState("t", worker, TaskSettings()), new_buffer(worker)

    def manual(n: int) -> list:
        state.on_command(Command(id=f"m{n}", task="t", kind="trigger"), now=n, buffer=buffer)
        return state.check_triggers(buffer, now=float(n))

    buffer.extend(LabeledExample(f"first {n}", "pos") for n in range(4))
    [one] = manual(1)
    assert buffer.new_count == 0  # nothing unsent: no trigger counts these again
    assert state.check_triggers(buffer, now=1.5) == []
    buffer.extend(LabeledExample(f"second {n}", "neg") for n in range(2))
    [two] = manual(2)  # the rejected first candidate's labels go again, as new ones
    assert sorted(e.input for e in two.examples if e.origin is ExampleOrigin.NEW) == sorted(
        [e.input for e in one.examples] + [f"second {n}" for n in range(2)])
    state.on_command(Command(id="p", task="t", kind="promoted", version="v2"), now=3,
                     buffer=buffer)
    assert buffer.carried_examples == () and len(buffer.reservoir) == 6
    buffer.add(LabeledExample("third", "pos"))
    [three] = manual(4)
    assert [e.input for e in three.examples if e.origin is ExampleOrigin.NEW] == ["third"]
    assert three.parent_version == "v2"
    # Off (the default), a request's examples are replayed, never new again.
    plain_state, plain = TaskState("t", WORKER, TaskSettings()), new_buffer(WORKER)
    plain.extend(LabeledExample(f"first {n}", "pos") for n in range(4))
    plain_state.on_command(Command(id="m", task="t", kind="trigger"), now=1, buffer=plain)
    assert plain_state.check_triggers(plain, now=1.0)
    assert plain.carried_examples == () and len(plain.reservoir) == 4


def test_a_new_regime_sends_the_examples_carried_so_far_to_the_reservoir():
    worker = WorkerSettings(triggers={"min_examples": 1, "cooldown_s": 0,
                                      "metric_threshold": None, "metric_max_drop": None,
                                      "regime_growth": None},
                            buffer={"resend_until_promoted": True})
    state, join, buffer = (TaskState("t", worker, TaskSettings()), new_join_window(worker),
                           new_buffer(worker))
    xs = items(4, domain="tweets")
    state.on_interactions(xs, join=join, buffer=buffer, bucket="i", now=1.0)
    state.on_feedback(labels(xs, "pos"), join=join, buffer=buffer, bucket="f", now=1.0)
    state.on_command(Command(id="m", task="t", kind="trigger"), now=2.0, buffer=buffer)
    assert state.check_triggers(buffer, now=2.0)
    assert len(buffer.carried_examples) == 4
    # A domain the task has not seen opens a regime: what was carried is old traffic now,
    # replayed, and no longer sent as new beside the new regime's labels.
    effects = state.on_interactions(items(2, start=50, domain="movies"), join=join,
                                    buffer=buffer, bucket="i2", now=3.0)
    assert effects.drift_alerts and state.training.regime == 1
    assert buffer.carried_examples == () and len(buffer.reservoir) == 4
    assert effects.buffer_changed
