"""``driftloop bench worker`` on the real broker: both sides run, every round is printed, the
ratio is the median of the rounds' ratios."""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

DRIFTLOOP = Path(sys.executable).parent / "driftloop"


def test_bench_worker_prints_both_rates_per_round_and_the_median_ratio(
        kafka_broker, tmp_path: Path) -> None:
    env = {**os.environ, "DRIFTLOOP_WORKER__DATA_DIR": str(tmp_path)}
    env.pop("DRIFTLOOP_KAFKA__BOOTSTRAP_SERVERS", None)  # the option names the broker
    run = subprocess.run([str(DRIFTLOOP), "bench", "worker", "--events", "3000", "--batch",
                          "100", "--rounds", "3", "--timeout", "240", "--json",
                          "--bootstrap-servers", kafka_broker.bootstrap_servers],
                         capture_output=True, text=True, timeout=900, env=env)
    assert run.returncode == 0, run.stdout + run.stderr
    rounds = re.findall(r"round (\d)/3: raw ([\d,]+) events/s, worker ([\d,]+) events/s",
                        run.stderr)  # with --json the text goes to stderr
    assert [r[0] for r in rounds] == ["1", "2", "3"], run.stderr
    ratios = [float(r[2].replace(",", "")) / float(r[1].replace(",", "")) for r in rounds]
    printed = float(re.search(r"ratio worker/raw:\s+([\d.]+)", run.stderr).group(1))
    assert printed == pytest.approx(statistics.median(ratios), abs=0.01)
    document = json.loads(run.stdout)
    assert document["median_ratio"] == pytest.approx(statistics.median(ratios), rel=0.01)
    assert document["min_ratio"] <= document["median_ratio"] <= document["max_ratio"]
    # Each round says how many drift alerts the worker raised (read from its /metrics).
    alerts = [int(n) for n in re.findall(r"events/s \([\d.]+\), (\d+) drift alerts", run.stderr)]
    assert alerts == document["worker_drift_alerts"] and len(alerts) == 3


def test_bench_worker_refuses_zero_rounds(kafka_broker) -> None:
    env = {**os.environ, "DRIFTLOOP_KAFKA__BOOTSTRAP_SERVERS": kafka_broker.bootstrap_servers}
    run = subprocess.run([str(DRIFTLOOP), "bench", "worker", "--rounds", "0"],
                         capture_output=True, text=True, timeout=60, env=env)
    assert run.returncode != 0 and "--rounds" in run.stderr
