"""``driftloop bench quality``: drift detection, continual learning, active learning."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from driftloop.tools.commands.bench import BENCHES, bench

VERDICTS = {"promoted", "forgetting", "better, refused", "not shown better"}

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
                                     "--json", "-o", str(path)])
    assert out.exit_code == 0, out.output
    report = json.loads(path.read_text())
    assert json.loads(out.stdout) == report  # --json: the document alone on stdout
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
    assert "FA/100k" in out.stderr and "stable, bursty scores" in out.stderr
    assert f"figures written to {path}" in out.stderr


def test_bad_options_are_usage_errors() -> None:
    for args in (["--only", "everything"], ["--seed", "-1"], ["--threads", "0"],
                 ["--seeds", "0"], ["--stream", "news"]):
        out = CliRunner().invoke(bench, ["quality", *args])
        assert out.exit_code == 2, (args, out.output)


@pytest.mark.slow
def test_the_quick_bench_reports_every_section(tmp_path: Path) -> None:
    import torch

    torch.set_num_threads(2)
    path = tmp_path / "quality.json"
    out = CliRunner().invoke(bench, ["quality", "--quick", "--threads", "2",
                                     "--output", str(path)])
    assert out.exit_code == 0, out.output
    report = json.loads(path.read_text())
    assert {"drift", "continual", "active"} <= set(report)

    continual = report["continual"]
    assert continual["settings"] == "driftloop's defaults"
    assert {r["stream"] for r in continual["runs"]} == {"vader", "questions"}
    for run in continual["runs"]:
        assert run["shifts"] and all(s["to"] for s in run["shifts"])
        assert 0.0 <= run["final_shifted"] <= 1.0 and 0.0 <= run["retrain_shifted"] <= 1.0
        assert run["requests"] >= 1 and run["examples_trained"] > 0
        assert run["requests_by_trigger"]  # what fired, by trigger
        # Perturbed held-out texts: harder than clean ones for the same version, not 0.
        assert 0.0 < run["robust_static_shifted"] <= run["static_shifted"] + 0.05
        assert 0.0 < run["robust_final_shifted"] <= 1.0
        # Paraphrases of a few held-out texts, both versions scored on the same ones.
        assert 0 < run["paraphrased"] <= 8
        for version in ("static", "final"):
            assert 0.0 <= run[f"robust_paraphrase_{version}_shifted"] <= 1.0
            assert 0.0 <= run[f"as_written_{version}_shifted"] <= 1.0
        # Within reach: the version served at each shift, scored again beside its update on
        # the shift's first labels; the same version's score as the shift's own figure.
        assert [r["to"] for r in run["reachable"]] == [s["to"] for s in run["shifts"]]
        for shift, reach in zip(run["shifts"], run["reachable"], strict=True):
            assert reach["served"] == shift["before"]
            assert 0 < reach["labels"] <= 240 and 0.0 <= reach["updated"] <= 1.0
            assert reach["gate"] in {"promoted", "rejected"}
        # Each candidate decided within 240 labels of a shift, with the gate's verdict; a
        # shift answered within 240 labels has a promoted one among them.
        for shift in run["shifts"]:
            assert all(0 <= c["labels"] <= 240 and c["verdict"] in VERDICTS
                       for c in shift["candidates"])
            if shift["labels_until_better"] is not None and shift["labels_until_better"] <= 240:
                assert any(c["verdict"] == "promoted" for c in shift["candidates"])
    questions = next(r for r in continual["runs"] if r["stream"] == "questions")
    # The loop learns the shifted question topics: beyond the static bootstrap version.
    assert questions["final_shifted"] > questions["static_shifted"]
    assert set(continual["summary"]) == {"vader", "questions"}
    for stream, figures in continual["summary"].items():
        answered = sum(s["labels_until_better"] is not None for r in continual["runs"]
                       if r["stream"] == stream for s in r["shifts"])
        assert figures["shifts_better_within_the_domain"] == answered
        assert figures["shifts_better_within_240_labels"] <= answered <= figures["shifts"]
        reachable = [(s, r) for run in continual["runs"] if run["stream"] == stream
                     for s, r in zip(run["shifts"], run["reachable"], strict=True)
                     if r["updated"] > r["served"]]
        assert figures["shifts_reachable_within_240_labels"] == len(reachable)
        assert figures["reachable_shifts_answered"] == sum(
            s["labels_until_better"] is not None and s["labels_until_better"] <= 240
            for s, _ in reachable)
        assert sum(figures["candidates_within_240_labels"].values()) == sum(
            len(s["candidates"]) for r in continual["runs"] if r["stream"] == stream
            for s in r["shifts"])

    curves = {c["sampler"]: c for c in report["active"]["curves"]}
    assert set(curves) == {"uncertainty", "random"}
    for curve in curves.values():
        assert curve["labels"] and curve["labels"] == sorted(curve["labels"])
        assert all(0.0 <= a <= 1.0 for a in curve["accuracy"])
    for heading in ("drift detection", "continual learning under live conditions",
                    "active learning", "full retraining", "uncertainty", "perturbed held-out",
                    "paraphrased held-out", "within reach",
                    "candidates decided within 240 labels of a shift"):
        assert heading in out.output
