"""The demo's set-up without a broker: refused input, and the children's configuration."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from driftloop.schemas.errors import SettingsError
from driftloop.schemas.settings import Settings
from driftloop.tools.demo.run import DemoProfile, child_env, run_demo


def test_a_malformed_broker_address_is_refused_before_anything_starts(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="--broker 'nohost': expected host:port"):
        run_demo(Settings(), broker="nohost", workdir=tmp_path / "run")
    assert not (tmp_path / "run").exists()


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
    assert seen.worker.drift.block_size * seen.worker.drift.warmup_blocks <= 100  # < a domain
    assert seen.worker.app_id == "driftloop-demo-x" and seen.worker.data_dir == tmp_path / "worker"
    assert json.loads(env["DRIFTLOOP_TASKS"])["sentiment"]["kind"] == "classification"
