"""The live loop's serving: each named domain's events go to that domain's own head."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from driftloop.learner.serving.model_host import Prediction
from driftloop.schemas.events import ModelVersion
from driftloop.schemas.settings import Settings
from driftloop.tools.bench.quality.live_loop import TASK, LiveConditions, LiveLoop
from driftloop.tools.demo.traffic import DemoData, StreamItem


class AnsweringHost:
    """Answers every text 'positive', from the version asked (no model: routing only)."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, int]] = []

    def predict(self, task: str, version: str, texts: list[str]) -> list[Prediction]:
        self.asked.append((version, len(texts)))
        return [Prediction("positive", 0.9, {"positive": 0.9, "negative": 0.1}, [0.0, 1.0],
                           version, input_embedding=[1.0, 0.0]) for _ in texts]


def head(version_id: str, domain: str) -> ModelVersion:
    return ModelVersion(version_id=version_id, ts=0.0, task=TASK, base_model="m",
                        adapter_uri=f"file:///s/{version_id}", sha256="0" * 64, size_bytes=1,
                        status="promoted", metadata={"domain": domain})


def loop(named: bool, tmp_path: Path) -> tuple[LiveLoop, AnsweringHost]:
    items = [StreamItem(f"i{k}", domain, f"text {k}", "positive")
             for k, domain in enumerate(["tweets", "movies", "tweets", "amazon"])]
    data = DemoData(stream=items, heldout={}, bootstrap=[])
    settings = Settings(artifacts={"store_url": str(tmp_path)},
                        tasks={TASK: {"labels": ["negative", "positive"],
                                      "adapter_per_domain": True}})
    host = AnsweringHost()
    live = LiveLoop(data, ["negative", "positive"], settings,
                    LiveConditions(named_domains=named), updater=_NoUpdater(), host=host)
    for event in (head("v-tweets", "tweets"), head("v-movies", "movies")):
        live.versions.apply(event)
    live.head = "v-movies"  # the task's latest promotion
    return live, host


class _NoUpdater:
    models: Any = None


def test_named_domains_are_served_by_their_own_heads_and_the_rest_by_the_tasks(
        tmp_path: Path) -> None:
    live, host = loop(True, tmp_path)
    live._serve(live.data.stream)
    assert [(domain, version) for domain, version, _ in live.record.served] == [
        ("tweets", "v-tweets"), ("movies", "v-movies"), ("tweets", "v-tweets"),
        ("amazon", "v-movies")]  # amazon has no head yet: the task's
    assert sorted(host.asked) == [("v-movies", 2), ("v-tweets", 2)]  # one pass per version
    assert live.served_versions() == {"v-tweets", "v-movies"}
    assert live.record.domain_names == {"tweets": "tweets", "movies": "movies",
                                        "amazon": "amazon"}


def test_unnamed_traffic_is_served_by_the_tasks_head(tmp_path: Path) -> None:
    live, _ = loop(False, tmp_path)
    live._serve(live.data.stream)
    assert {version for _, version, _ in live.record.served} == {"v-movies"}
    assert set(live.record.domain_names.values()) == {"live"}


def test_full_retraining_and_the_within_reach_update_train_one_lineage(tmp_path: Path) -> None:
    """Beside a loop with an adapter per domain, the comparisons train one adapter on every
    domain's labels (a request of mixed domains would be refused)."""
    from driftloop.learner.training.update import IncrementalUpdater
    from driftloop.tools.bench.quality.live_bench import _updater_beside

    settings = Settings(artifacts={"store_url": str(tmp_path)},
                        tasks={TASK: {"labels": ["negative", "positive"],
                                      "adapter_per_domain": True}})
    live = LiveLoop(DemoData(stream=[], heldout={}, bootstrap=[]), ["negative", "positive"],
                    settings, LiveConditions(named_domains=True),
                    updater=IncrementalUpdater(settings), host=AnsweringHost())
    beside = _updater_beside(live, one_lineage=True, max_steps=7)
    assert beside.settings.task(TASK).adapter_per_domain is False
    assert list(beside.settings.task(TASK).labels) == ["negative", "positive"]
    assert beside.settings.learner.max_steps == 7
    assert _updater_beside(live).settings.task(TASK).adapter_per_domain is True


class _Published:
    """What an update returns, as far as the loop reads it: no event, one held-out case."""

    events: list[ModelVersion] = []
    request = None
    timings: dict[str, float] = {}

    def __init__(self) -> None:
        from driftloop.learner.gate.challenges import ChallengeCase

        self.challenge_additions = [ChallengeCase("a dull plot", "negative", ("held-out",))]


class _SuiteUpdater:
    models: Any = None

    def update(self, request: Any, versions: Any) -> _Published:
        return _Published()


def test_a_task_with_a_suite_keeps_the_runs_real_errors(tmp_path: Path) -> None:
    """As the learner does once it publishes: the update's held-out cases, then the request's
    real errors (what the served version answered wrong) join the task's suite."""
    from driftloop.learner.gate.challenges import ChallengeSuite
    from driftloop.schemas.events import TrainingRequest
    from driftloop.tools.bench.quality.live_bench import live_settings

    suite = tmp_path / "suite.jsonl"
    settings = live_settings(["negative", "positive"], tmp_path / "store", torch_threads=None,
                             challenge_suite=suite)
    assert ChallengeSuite.load(suite).cases == ()  # empty until the run's errors come
    live = LiveLoop(DemoData(stream=[], heldout={}, bootstrap=[]), ["negative", "positive"],
                    settings, LiveConditions(), updater=_SuiteUpdater(), host=AnsweringHost())
    live._decide([TrainingRequest(id="tr-1", ts=0.0, task=TASK, trigger="manual", examples=[
        {"input": "what a bore", "target": "negative", "model_answer": "positive"},
        {"input": "lovely", "target": "positive", "model_answer": "positive"}])])
    assert [case.input for case in ChallengeSuite.load(suite)] == ["a dull plot", "what a bore"]
