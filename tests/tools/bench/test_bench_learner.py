"""``driftloop bench learner --burst`` on the real broker: a burst of requests, with the
learner coalescing them and without, side by side."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

DRIFTLOOP = Path(sys.executable).parent / "driftloop"


def test_a_burst_is_coalesced_into_fewer_updates_and_every_request_is_accounted_for(
        kafka_broker) -> None:  # type: ignore[no-untyped-def]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "DRIFTLOOP_KAFKA__BOOTSTRAP_SERVERS": kafka_broker.bootstrap_servers}
    # 50 requests/s: the burst is queued long before the first update can end.
    run = subprocess.run([str(DRIFTLOOP), "bench", "learner", "--burst", "4", "--burst-rate",
                          "50", "--examples", "16", "--threads", "1", "--json"],
                         capture_output=True, text=True, timeout=600, env=env)
    assert run.returncode == 0, run.stdout + run.stderr
    document = json.loads(run.stdout)
    coalescing, alone = document["runs"]
    assert (coalescing["coalesce_max"], alone["coalesce_max"]) == (8, 1)
    assert coalescing["updates"] < 4 and coalescing["updates"] + coalescing["superseded"] == 4
    assert (alone["updates"], alone["superseded"]) == (4, 0)
    for row in (coalescing, alone):
        assert 0 < row["staleness_p50_s"] <= row["staleness_max_s"]
        assert 1 <= row["max_lag"] <= 4


def test_probes_give_the_bench_task_a_suite_of_real_texts_from_another_domain(
        tmp_path: Path) -> None:
    from driftloop.learner.gate.challenges import ChallengeSuite
    from driftloop.tools.bench.learner import _probe_task
    from driftloop.tools.demo.vader import read_domain

    task = _probe_task(tmp_path, 12, "generation", "tweets")
    assert task.kind.value == "generation" and task.prompt_template_id == "sentiment"
    suite = ChallengeSuite.load(task.challenge_suite)
    assert len(suite) == 12
    nyt = {e.text: e.label for e in read_domain("nyt")}
    assert all(nyt[case.input] == case.expected for case in suite)
    assert sorted({case.expected for case in suite}) == ["negative", "positive"]
    assert _probe_task(tmp_path, 4, "classification", "nyt").prompt_template_id is None


def test_processes_time_one_process_against_the_spread_and_print_the_ratio() -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    run = subprocess.run([str(DRIFTLOOP), "bench", "learner", "--processes", "2", "--rounds",
                          "2", "--examples", "16", "--threads", "2", "--json"],
                         capture_output=True, text=True, timeout=600, env=env)
    assert run.returncode == 0, run.stdout + run.stderr
    document = json.loads(run.stdout)
    assert (document["processes"], document["rounds"], document["device"]) == (2, 2, "cpu")
    assert [len(document["seconds"][arm]) for arm in ("one", "spread")] == [2, 2]
    ratio = document["ratio_one_to_spread"]
    assert 0 < ratio["min"] <= ratio["median"] <= ratio["max"]
    assert "ratio one process / spread" in run.stderr  # the table goes beside the JSON
    refused = subprocess.run([str(DRIFTLOOP), "bench", "learner", "--processes", "1"],
                             capture_output=True, text=True, timeout=120, env=env)
    assert refused.returncode == 2 and "at least 2 processes" in refused.stderr
