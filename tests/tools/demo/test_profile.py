"""The demo's profiles and the settings its children read from the environment."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from driftloop.schemas.errors import SettingsError
from driftloop.schemas.settings import Settings
from driftloop.tools.demo.profile import DemoProfile, child_env


def test_every_child_reads_valid_settings_from_the_environment(tmp_path: Path,
                                                              monkeypatch) -> None:
    base = Settings(kafka={"bootstrap_servers": "127.0.0.1:19092", "topic_prefix": "demo-x."},
                    artifacts={"store_url": str(tmp_path / "artifacts")})
    env = child_env(base, tmp_path, DemoProfile.named(quick=True), run_id="demo-x",
                    serve_port=18080, worker_port=16066)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    seen = Settings()  # what `driftloop worker|learner|serve` will load
    assert seen.kafka.topic("feedback") == "demo-x.feedback"
    assert seen.task("sentiment").labels == ("negative", "positive")
    assert (seen.worker.web_port, seen.serving.port) == (16066, 18080)
    # The loop runs at driftloop's defaults: nothing of drift, triggers or learning is tuned.
    defaults = Settings()
    assert (seen.worker.drift, seen.worker.triggers, seen.worker.buffer, seen.worker.active) \
        == (defaults.worker.drift, defaults.worker.triggers, defaults.worker.buffer,
            defaults.worker.active)
    assert seen.learner.model_copy(update={"torch_threads": None, "cache_dir": None,
                                           "group_id": None}) == \
        defaults.learner.model_copy(update={"torch_threads": None, "cache_dir": None,
                                            "group_id": None})
    drift = seen.worker.drift
    assert drift.block_size * drift.warmup_blocks < DemoProfile.named(quick=True).per_domain
    assert seen.worker.app_id == "driftloop-demo-x" and seen.worker.data_dir == tmp_path / "worker"
    assert json.loads(env["DRIFTLOOP_TASKS"])["sentiment"]["kind"] == "classification"


def test_the_generate_profile_gives_its_children_the_prompt_template(tmp_path: Path,
                                                                    monkeypatch) -> None:
    profile = DemoProfile.named(quick=True, task="generate")
    env = child_env(Settings(), tmp_path, profile, run_id="demo-g", serve_port=18081,
                    worker_port=16067)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    seen = Settings()
    assert seen.task("sentiment").kind == "generation"
    assert seen.task("sentiment").prompt_template_id == "sentiment"
    assert seen.learner.max_new_tokens == 3  # one-word answers keep an update near a minute


def test_an_unknown_task_is_refused_naming_the_valid_ones() -> None:
    with pytest.raises(SettingsError, match=r"--task must be one of \['classify', 'generate'\]"):
        DemoProfile.named(quick=True, task="summarise")
