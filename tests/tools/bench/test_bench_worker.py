"""``driftloop bench worker`` on the real broker: both sides run, every round is printed."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

DRIFTLOOP = Path(sys.executable).parent / "driftloop"


def test_bench_worker_prints_both_rates_per_round_and_the_ratio_of_the_best(
        kafka_broker, tmp_path: Path) -> None:
    env = {**os.environ, "DRIFTLOOP_KAFKA__BOOTSTRAP_SERVERS": kafka_broker.bootstrap_servers,
           "DRIFTLOOP_WORKER__DATA_DIR": str(tmp_path)}
    run = subprocess.run([str(DRIFTLOOP), "bench", "worker", "--events", "3000", "--batch",
                          "100", "--rounds", "2", "--timeout", "240"],
                         capture_output=True, text=True, timeout=600, env=env)
    assert run.returncode == 0, run.stdout + run.stderr
    rounds = re.findall(r"round (\d)/2: raw ([\d,]+) events/s, worker ([\d,]+) events/s",
                        run.stdout)
    assert [r[0] for r in rounds] == ["1", "2"], run.stdout
    raw = max(float(r[1].replace(",", "")) for r in rounds)
    full = max(float(r[2].replace(",", "")) for r in rounds)
    assert raw > 0 and full > 0
    printed = float(re.search(r"ratio worker/raw:\s+([\d.]+)", run.stdout).group(1))
    assert printed == pytest.approx(full / raw, abs=0.01)


def test_bench_worker_refuses_zero_rounds(kafka_broker) -> None:
    env = {**os.environ, "DRIFTLOOP_KAFKA__BOOTSTRAP_SERVERS": kafka_broker.bootstrap_servers}
    run = subprocess.run([str(DRIFTLOOP), "bench", "worker", "--rounds", "0"],
                         capture_output=True, text=True, timeout=60, env=env)
    assert run.returncode != 0 and "--rounds" in run.stderr
