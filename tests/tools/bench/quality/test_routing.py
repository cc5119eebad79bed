"""Routing one text to its domain by the nearest centroid: measured on the real encoder."""

from __future__ import annotations

from driftloop.learner.models.resident import ResidentModels
from driftloop.tools.bench.quality.routing import routing_accuracy, summarise_routing


def test_routing_is_measured_for_both_vectors_and_beats_chance_on_vader() -> None:
    run = routing_accuracy("vader", seed=0, heldout=20, models=ResidentModels(capacity=1))
    for kind in ("encoder", "token_means"):
        figures = run[kind]
        assert set(figures["accuracy"]) == {"tweets", "movies", "amazon", "nyt"}
        # four domains: chance is 0.25; the encoder measured 0.85 on 80 texts a domain
        assert figures["mean_accuracy"] > 0.5, figures
        assert 0 <= figures["other_distance_p10"] <= 2 and 0 <= figures["own_distance_p90"] <= 2
    summary = summarise_routing([run, {**run, "seed": 1}])["vader"]["encoder"]
    assert summary["seeds"] == 2 and summary["accuracy"]["min"] == run["encoder"]["mean_accuracy"]
