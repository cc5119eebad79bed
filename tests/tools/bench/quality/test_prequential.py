"""What a run of the continual experiment did to accuracy: prequential figures, forgetting."""

from __future__ import annotations

from driftloop.tools.bench.quality.continual import RUNS
from driftloop.tools.bench.quality.prequential import RunResult, forgetting


def test_forgetting_is_accuracy_after_a_domain_minus_at_the_end():
    after = {"tweets": {"tweets": 0.9, "movies": 0.5, "nyt": 0.5},
             "movies": {"tweets": 0.8, "movies": 0.8, "nyt": 0.6},
             "nyt": {"tweets": 0.7, "movies": 0.85, "nyt": 0.8}}
    assert forgetting(after) == {"tweets": 0.2, "movies": -0.05}
    assert forgetting({}) == {}


def test_a_run_reports_prequential_accuracy_per_window_and_domain():
    run = RunResult("replay", RUNS["replay"], correct=[True, False, True, True],
                    domains=["a", "a", "b", "b"],
                    after_domain={"a": {"a": 1.0, "b": 0.5}, "b": {"a": 0.5, "b": 1.0}})
    run.spent(2.0, 1.5)
    assert run.prequential(2) == [{"events": 2, "domain": "a", "accuracy": 0.5},
                                  {"events": 4, "domain": "b", "accuracy": 1.0}]
    summary = run.to_dict(window=2)
    assert summary["prequential_accuracy"] == 0.75
    assert summary["prequential_by_domain"] == {"a": 0.5, "b": 1.0}
    assert summary["final_heldout"] == {"a": 0.5, "b": 1.0} and summary["mean_forgetting"] == 0.5
    assert summary["update_seconds"] == 2.0 and summary["update_cpu_seconds"] == 1.5
