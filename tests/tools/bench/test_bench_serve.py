"""``driftloop bench serve --via push`` on the real broker: the subscriber's swaps and the
pusher's, each timed to the first answer by the new version, printed side by side."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

DRIFTLOOP = Path(sys.executable).parent / "driftloop"


def test_bench_serve_via_push_prints_both_swap_latencies(kafka_broker, unused_port) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "DRIFTLOOP_KAFKA__BOOTSTRAP_SERVERS": kafka_broker.bootstrap_servers}
    run = subprocess.run([str(DRIFTLOOP), "bench", "serve", "--via", "push", "--swaps", "3",
                          "--rounds", "1", "--requests", "20", "--port", str(unused_port)],
                         capture_output=True, text=True, timeout=600, env=env)
    assert run.returncode == 0, run.stdout + run.stderr
    found = re.findall(r"swap latency over 3 promotions .*: median (\d+) ms, p95 (\d+) ms, "
                       r"max (\d+) ms \((.+?)[,)]", run.stdout)
    assert [how for *_, how in found] == ["the replica's subscriber", "driftloop push"], \
        run.stdout
    assert all(0 < int(median) <= int(high) for median, _, high, _ in found)
    # Where the subscriber's swaps spent their time, phase by phase.
    phases = re.findall(r"^  (delivery|fetch|load|answer) +median (\d+) ms", run.stdout, re.M)
    assert [name for name, _ in phases] == ["delivery", "fetch", "load", "answer"], run.stdout
    assert "ERROR" not in run.stderr and "WARNING" not in run.stderr, run.stderr
