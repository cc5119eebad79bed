"""``driftloop bench freshness`` on the real broker: the worker, learner and service as
processes, a trigger timed to the first answer of its promoted version, in phases."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

DRIFTLOOP = Path(sys.executable).parent / "driftloop"


def test_a_trigger_is_timed_to_the_first_answer_of_its_version_in_phases_that_add_up(
        kafka_broker) -> None:  # type: ignore[no-untyped-def]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "DRIFTLOOP_KAFKA__BOOTSTRAP_SERVERS": kafka_broker.bootstrap_servers}
    run = subprocess.run([str(DRIFTLOOP), "bench", "freshness", "--updates", "2",
                          "--examples", "32", "--threads", "1", "--json"],
                         capture_output=True, text=True, timeout=900, env=env)
    assert run.returncode == 0, run.stdout + run.stderr
    document = json.loads(run.stdout)
    assert document["updates"] == 2
    promoted = [r for r in document["rounds_detail"] if r["status"] == "promoted"]
    assert len(promoted) == 2 and len({r["version"] for r in promoted}) == 2
    for row in promoted:
        phases = row["phases_s"]
        # Every stamp on one clock: the phases are spans in order, and they make the whole.
        assert all(seconds >= -0.005 for seconds in phases.values()), phases
        assert sum(phases.values()) == pytest.approx(row["total_s"], abs=1e-6)
        assert phases["train"] > 0 and phases["load"] > 0 and phases["switch"] >= 0
    assert 0 < document["update_s"]["p50"] < document["total_s"]["p50"]
    assert document["ratio_total_to_update"] > 1.0
    assert "trigger -> first answer: p50" in run.stderr
