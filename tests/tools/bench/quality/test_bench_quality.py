"""``driftloop bench quality``: drift detection, continual learning, active learning."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from driftloop.tools.commands.bench import BENCHES, bench

DRIFTLOOP = "driftloop (worker set-up)"
ADWIN = "River ADWIN on confidence"


def _scores(report: dict, candidate: str) -> dict[str, dict]:
    return {s["scenario"]: s for s in report["drift"]["scores"] if s["candidate"] == candidate}


def test_the_bench_is_registered() -> None:
    assert "quality" in BENCHES
    out = CliRunner().invoke(bench, ["quality", "--help"])
    assert out.exit_code == 0 and "--quick" in out.output and "--json" in out.output


def test_the_drift_part_runs_alone_and_writes_its_figures(tmp_path: Path) -> None:
    path = tmp_path / "out" / "quality.json"
    out = CliRunner().invoke(bench, ["quality", "--quick", "--only", "drift", "--seed", "3",
                                     "--json", str(path)])
    assert out.exit_code == 0, out.output
    report = json.loads(path.read_text())
    assert report["quick"] is True and report["seed"] == 3
    assert "continual" not in report and "active" not in report
    ours, adwin = _scores(report, DRIFTLOOP), _scores(report, ADWIN)
    assert set(ours) == set(adwin) == set(report["drift"]["scenarios"])
    sudden = ours["sudden, score"]
    assert sudden["detected"] == sudden["changes"] > 0
    assert 0 < sudden["median_delay_events"] < 5_000
    assert ours["sudden, embedding"]["detected"] == ours["sudden, embedding"]["changes"]
    assert adwin["sudden, embedding"]["detected"] == 0  # confidence alone cannot see it
    for name, spec in report["drift"]["scenarios"].items():
        if spec["kind"] == "stable":
            assert ours[name]["stable_events"] == spec["length"] * 2  # two seeded streams
            assert ours[name]["false_alarms_per_100k"] >= 0.0
    assert "FA/100k" in out.output and "stable, bursty scores" in out.output
    assert f"figures written to {path}" in out.output


def test_bad_options_are_usage_errors() -> None:
    for args in (["--only", "everything"], ["--seed", "-1"], ["--threads", "0"]):
        out = CliRunner().invoke(bench, ["quality", *args])
        assert out.exit_code == 2, (args, out.output)


@pytest.mark.slow
def test_the_quick_bench_reports_every_section(tmp_path: Path) -> None:
    import torch

    torch.set_num_threads(2)
    path = tmp_path / "quality.json"
    out = CliRunner().invoke(bench, ["quality", "--quick", "--threads", "2",
                                     "--json", str(path)])
    assert out.exit_code == 0, out.output
    report = json.loads(path.read_text())
    assert {"drift", "continual", "active"} <= set(report)

    runs = {r["run"]: r for r in report["continual"]["runs"]}
    assert set(runs) == {"none", "replay", "no_replay", "retrain"}
    domains = report["continual"]["config"]["domains"]
    served = report["continual"]["config"]["per_domain"] * len(domains)
    for run in runs.values():
        assert 0.0 <= run["prequential_accuracy"] <= 1.0
        assert set(run["final_heldout"]) == set(domains)
        assert all(0.0 <= a <= 1.0 for a in run["final_heldout"].values())
        assert set(run["forgetting"]) == set(domains[:-1])
        assert run["prequential_curve"][-1]["events"] == served
        assert run["update_seconds"] >= 0 and run["predict_seconds"] > 0
    assert runs["none"]["updates"] == 0
    for name in ("replay", "no_replay", "retrain"):
        assert runs[name]["updates"] >= 2 and runs[name]["update_seconds"] > 0
        assert runs[name]["update_cpu_seconds"] > 0 and runs[name]["examples_trained"] > 0
    assert runs["retrain"]["promoted"] == runs["retrain"]["updates"]  # the reference serves
    # Learning from the stream beats the frozen bootstrap version on the new domain.
    last = domains[-1]
    assert max(runs[n]["final_heldout"][last] for n in ("replay", "no_replay", "retrain")) > \
        runs["none"]["final_heldout"][last]

    curves = {c["sampler"]: c for c in report["active"]["curves"]}
    assert set(curves) == {"uncertainty", "random"}
    for curve in curves.values():
        assert curve["labels"] and curve["labels"] == sorted(curve["labels"])
        assert all(0.0 <= a <= 1.0 for a in curve["accuracy"])
    for heading in ("drift detection", "continual learning", "active learning",
                    "driftloop, replay", "full retraining", "uncertainty"):
        assert heading in out.output
