"""``driftloop bench faults --quick``: every scenario on its own broker, nothing lost or twice.

Each scenario is a real run: the bench starts its own broker (it restarts it in three of them,
once with SIGKILL, and fills its disk in one), kills the worker or the learner with SIGKILL,
and ends with the accounting check. The test
reads the bench's JSON and asserts the figures the issue asks for.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from driftloop.tools.bench.faults.scenarios import SCENARIOS

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

DRIFTLOOP = Path(sys.executable).parent / "driftloop"


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_quick_fault_scenario_loses_nothing_and_publishes_nothing_twice(
        scenario: str, tmp_path: Path) -> None:
    out = tmp_path / "faults.json"
    # The kills land in the middle of a step's writes more often with the write-gap hook.
    gap = ["--write-gap", "0.02"] if scenario == "worker-kill" else []
    run = subprocess.run([str(DRIFTLOOP), "bench", "faults", "--quick", "--scenario", scenario,
                          *gap, "--json", "-o", str(out), "--workdir", str(tmp_path / "run")],
                         capture_output=True, text=True, timeout=900,
                         env={**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})
    printed = run.stdout + run.stderr
    logs = "\n".join(f"--- {p}\n{p.read_text(errors='replace')[-3000:]}"
                     for p in (tmp_path / "run").glob("*/logs/*.log"))
    assert run.returncode == 0, printed + logs
    row = json.loads(out.read_text())["results"][0]
    assert json.loads(run.stdout) == json.loads(out.read_text())  # progress went to stderr
    if row["not_run"]:  # the disk-full scenario needs the right to mount a tmpfs
        pytest.skip(row["not_run"])
    assert row["scenario"] == scenario and row["ok"], (row, printed)
    assert row["lost"] == 0 and row["double_counted"] == 0 and row["duplicate_versions"] == 0
    assert row["faults"] >= 1 and row["recovery_s_max"] is not None
    if scenario in ("worker-kill", "broker-restart", "broker-kill", "broker-disk-full"):
        # the quick traffic: 3,000 interactions, feedback for about a fifth, some poison
        assert row["produced"] > 3_000 and row["dead_lettered"] > 0
        assert row["processed"] + row["dead_lettered"] == row["produced"]
        assert row["labels_lost"] == 0 and row["labels_twice"] == 0  # every label joined once
    if scenario in ("learner-kill", "broker-kill"):  # the learner trained through the fault
        assert row["training_requests"] == 2 and row["unanswered_requests"] == 0
    # the table the bench prints for people (on stderr, with --json) carries the same row
    line = next(text for text in run.stderr.splitlines() if text.startswith(scenario + " "))
    assert line.split()[-1] == "yes"
