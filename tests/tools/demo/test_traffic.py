"""The demo's simulated traffic without a broker: the stream split, users' noise and delays,
the reviewer, and the driver's pacing against a stand-in service."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from driftloop.schemas import Interaction, LabelRequest
from driftloop.tools.demo.traffic import (
    LIVE_DOMAIN,
    SimulatedReviewer,
    SimulatedUsers,
    StreamItem,
    TrafficDriver,
    build_demo_data,
)


def _items(n: int, label: str = "positive") -> list[StreamItem]:
    return [StreamItem(f"i-{k}", "tweets", f"text {k}", label) for k in range(n)]


def test_the_stream_moves_through_the_domains_and_no_text_is_reused() -> None:
    data = build_demo_data(per_domain=30, heldout=20, bootstrap=16, seed=3)
    assert [(d, b - a) for d, a, b in data.boundaries()] == [
        ("tweets", 30), ("movies", 30), ("amazon", 30), ("nyt", 30)]
    stream = {i.id for i in data.stream}
    held = {i.id for items in data.heldout.values() for i in items}
    boot = {i.id for i in data.bootstrap}
    assert not stream & held and not stream & boot and not held & boot
    assert sum(i.label == "positive" for i in data.bootstrap) == 8
    assert {i.domain for i in data.bootstrap} == {"tweets"}


def test_the_same_seed_gives_the_same_stream_and_another_seed_another() -> None:
    def ids(seed: int) -> list[str]:
        return [i.id for i in build_demo_data(per_domain=10, heldout=5, bootstrap=4,
                                              seed=seed).stream]

    assert ids(1) == ids(1) and ids(1) != ids(2)


@pytest.mark.parametrize("kwargs", [{"per_domain": 0, "heldout": 5, "bootstrap": 4},
                                    {"per_domain": 5, "heldout": 0, "bootstrap": 4},
                                    {"per_domain": 5, "heldout": 5, "bootstrap": 1},
                                    {"per_domain": 5000, "heldout": 5, "bootstrap": 4}])
def test_impossible_sizes_are_refused(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        build_demo_data(**kwargs)


def test_users_flip_about_the_noise_share_and_answer_about_the_answer_rate() -> None:
    users = SimulatedUsers(answer_rate=0.8, noise=0.1, delay=(1.0, 4.0), seed=5)
    items = _items(5000)
    planned = [p for p in (users.react(i, now=100.0) for i in items) if p is not None]
    assert 0.77 < len(planned) / len(items) < 0.83
    wrong = [p for p in planned if p.value != "positive"]
    assert all(p.noisy for p in wrong) and sum(p.noisy for p in planned) == len(wrong)
    assert 0.08 < len(wrong) / len(planned) < 0.12
    assert all(101.0 <= p.due <= 104.0 for p in planned)


def test_labels_come_out_only_once_due_and_in_time_order() -> None:
    users = SimulatedUsers(answer_rate=1.0, noise=0.0, delay=(1.0, 4.0), seed=0)
    for item in _items(200):
        users.react(item, now=0.0)
    assert users.due(0.99) == []
    early = users.due(2.0)
    assert early and all(p.due <= 2.0 for p in early)
    assert [p.due for p in early] == sorted(p.due for p in early)
    rest = users.due(10.0)
    assert len(early) + len(rest) == 200 and users.pending == 0 and users.next_due() is None


def test_users_with_zero_noise_are_always_right_and_seeds_repeat() -> None:
    def plan(seed: int) -> list[tuple[float, str]]:
        users = SimulatedUsers(answer_rate=0.5, noise=0.0, seed=seed)
        return [(p.due, p.value) for p in (users.react(i, now=0.0) for i in _items(50)) if p]

    assert plan(1) == plan(1) and all(value == "positive" for _, value in plan(1))


@pytest.mark.parametrize("kwargs", [{"answer_rate": 1.5}, {"noise": -0.1},
                                    {"delay": (3.0, 1.0)}, {"delay": (-1.0, 1.0)}])
def test_bad_user_settings_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        SimulatedUsers(**kwargs)


def _label_request(interaction_id: str, request_id: str = "l-1") -> LabelRequest:
    seen = Interaction(id=interaction_id, ts=1.0, task="sentiment", model_version="v0",
                       input="meh")
    return LabelRequest(id=request_id, ts=2.0, task="sentiment", interaction=seen,
                        reason="margin", priority=0.8)


def test_the_reviewer_answers_with_the_true_label_once_per_interaction() -> None:
    reviewer = SimulatedReviewer({"i-1": "negative", "i-2": "positive"})
    body = reviewer.answer(_label_request("i-1"))
    assert body == {"interaction_id": "i-1", "task": "sentiment", "kind": "label",
                    "value": "negative", "source": "reviewer",
                    "metadata": {"label_request_id": "l-1"}}
    assert reviewer.answer(_label_request("i-1", "l-2")) is None  # asked twice: answered once
    assert reviewer.answer(_label_request("unknown")) is None
    assert reviewer.answer(_label_request("i-2"))["value"] == "positive"


class _StandInService:
    """Answers /predict with a fixed label and accepts /feedback; records what it got."""

    def __init__(self) -> None:
        self.calls: list[tuple[float, str, dict[str, Any]]] = []
        self.in_flight = 0
        self.most_in_flight = 0

    async def post(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        self.calls.append((time.monotonic(), path, body))
        if path == "/feedback":
            return 202, {"id": "f"}
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        await asyncio.sleep(0.05)  # a forward pass
        self.in_flight -= 1
        return 200, {"output": "positive", "model_version": "v1"}


async def test_the_driver_paces_the_stream_and_sends_every_planned_label() -> None:
    service = _StandInService()
    users = SimulatedUsers(answer_rate=1.0, noise=0.5, delay=(0.1, 0.3), seed=2)
    driver = TrafficDriver(service.post, task="sentiment", users=users, rate=100.0,
                           in_flight=3)
    items = _items(40, "negative")
    started = time.monotonic()
    served = await driver.run(items)
    assert time.monotonic() - started >= 0.39  # 40 events at 100/s
    assert len(served) == 40 and not any(s.correct for s in served)
    predicts = [body for _, path, body in service.calls if path == "/predict"]
    assert {b["domain"] for b in predicts} == {LIVE_DOMAIN}
    assert {b["metadata"]["source_domain"] for b in predicts} == {"tweets"}
    assert 1 < service.most_in_flight <= 3
    labels = [body for _, path, body in service.calls if path == "/feedback"]
    assert len(labels) == driver.feedback_sent == 40 and users.pending == 0
    assert driver.noisy_sent == sum(b["value"] == "positive" for b in labels)
    assert {b["source"] for b in labels} == {"user"}
    assert driver.domain_started.keys() == {"tweets"}


async def test_the_driver_waits_between_domains_with_the_last_domain_answered_and_labelled(
        ) -> None:
    service = _StandInService()
    users = SimulatedUsers(answer_rate=1.0, noise=0.0, delay=(0.05, 0.1), seed=4)
    seen: list[tuple[str, str, int, int, int]] = []

    async def between(previous: str, upcoming: str) -> None:
        predicted = sum(path == "/predict" for _, path, _ in service.calls)
        seen.append((previous, upcoming, predicted, driver.feedback_sent, users.pending))

    driver = TrafficDriver(service.post, task="sentiment", users=users, rate=200.0,
                           in_flight=4, between_domains=between)
    items = [StreamItem(f"{d}-{k}", d, f"{d} text {k}", "positive")
             for d in ("tweets", "movies", "nyt") for k in range(6)]
    served = await driver.run(items)
    # Each wait came after every prediction and every label of the domain before it.
    assert seen == [("tweets", "movies", 6, 6, 0), ("movies", "nyt", 12, 12, 0)]
    assert len(served) == 18 and driver.feedback_sent == 18
    assert driver.domain_started.keys() == {"tweets", "movies", "nyt"}
    assert driver.paused_s > 0


def test_bad_driver_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        TrafficDriver(_StandInService().post, task="t", users=SimulatedUsers(), rate=0.0)

