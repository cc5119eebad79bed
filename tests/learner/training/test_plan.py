"""plan_update: what a gate will judge on, decided before any model loads."""

from __future__ import annotations

import pytest

from driftloop.learner.errors import TrainingRequestError
from driftloop.learner.gate.pool import GatePool
from driftloop.learner.gate.split import held_out
from driftloop.learner.registry.version_log import VersionLog
from driftloop.learner.training.plan import plan_update
from driftloop.schemas.events import TrainingExample, TrainingRequest
from driftloop.schemas.settings import Settings

SETTINGS = Settings(learner={"gate_recent_examples": 400, "gate_old_examples": 600})


def held(n: int, prefix: str) -> list[str]:
    return [t for t in (f"{prefix} {i}" for i in range(10_000)) if held_out(t, 0.25)][:n]


def request(regime: int, n: int = 40) -> TrainingRequest:
    return TrainingRequest(id="r", ts=0.0, task="t", trigger="drift", examples=[
        TrainingExample(input=f"new {regime} {i}", target="a", domain="live", regime=regime)
        for i in range(n)])


def test_the_gate_judges_the_current_regime_apart_from_the_older_ones() -> None:
    pool = GatePool(capacity=100, max_bytes=1_000_000, holdout_fraction=0.25)
    pool.admit([TrainingExample(input=t, target="a", domain="live", regime=r)
                for r in (0, 1, 2) for t in held(20, f"old {r}")])
    plan = plan_update(request(regime=2), VersionLog(), SETTINGS, pool)
    assert plan.regime == 2
    assert {e.regime for e in plan.pooled} == {2} and len(plan.pooled) == 20
    assert {e.regime for e in plan.older} == {0, 1} and len(plan.older) == 40
    gate = plan.gate_split
    assert gate.holdout_new == plan.split.holdout_new + plan.pooled
    assert gate.holdout_replay == plan.split.holdout_replay + plan.older
    # The first regime has nothing older; its recent evidence is bounded.
    small = SETTINGS.model_copy(update={"learner": SETTINGS.learner.model_copy(
        update={"gate_recent_examples": 15})})
    first = plan_update(request(regime=0), VersionLog(), small, pool)
    assert first.older == ()
    assert len(first.pooled) == max(15 - len(first.split.holdout_new), 0)
    assert {e.regime for e in first.pooled} <= {0}


def test_recent_traffic_is_every_regime_since_the_one_the_parent_trained_on() -> None:
    from driftloop.schemas import ModelVersion

    pool = GatePool(capacity=100, max_bytes=1_000_000, holdout_fraction=0.25)
    pool.admit([TrainingExample(input=t, target="a", domain="live", regime=r)
                for r in (0, 1, 2, 3) for t in held(20, f"old {r}")])

    def parent(metadata: dict[str, object]) -> VersionLog:
        return VersionLog().apply(ModelVersion(
            version_id="p", ts=1.0, task="t", base_model="m", adapter_uri="file:///p",
            sha256="0" * 64, size_bytes=1, status="promoted", metadata=metadata))

    # Trained up to regime 1: regimes 2 and 3 are new to it (two signals of one shift).
    plan = plan_update(request(regime=3), parent({"regime": 1}), SETTINGS, pool)
    assert plan.parent is not None and plan.parent.version_id == "p"
    assert {e.regime for e in plan.pooled} == {2, 3} and len(plan.pooled) == 40
    assert {e.regime for e in plan.older} == {0, 1}
    # Trained in the current regime, or a version that does not say: the current one only.
    for metadata in ({"regime": 3}, {}, {"regime": "3"}):
        plan = plan_update(request(regime=3), parent(metadata), SETTINGS, pool)
        assert {e.regime for e in plan.pooled} == {3}, metadata
        assert {e.regime for e in plan.older} == {0, 1, 2}


def test_with_an_adapter_per_domain_older_traffic_is_the_lineages_own_domain() -> None:
    pool = GatePool(capacity=100, max_bytes=1_000_000, holdout_fraction=0.25)
    pool.admit([TrainingExample(input=t, target="a", domain=d, regime=0)
                for d in ("tweets", "movies") for t in held(20, f"old {d}")])
    examples = [TrainingExample(input=f"new {i}", target="a", domain="movies", regime=1)
                for i in range(40)]
    examples += [TrainingExample(input=f"{d} replayed {i}", target="a", domain=d,
                                 origin="replay", regime=0)
                 for d in ("tweets", "movies") for i in range(40)]
    given = TrainingRequest(id="r", ts=0.0, task="t", trigger="drift", examples=examples)
    plan = plan_update(given, VersionLog(), SETTINGS, pool)  # one lineage: every domain
    assert {e.domain for e in plan.older} == {e.domain for e in plan.split.holdout_replay} \
        == {"tweets", "movies"}
    per_domain = Settings(learner=SETTINGS.learner.model_dump(),
                          tasks={"t": {"adapter_per_domain": True}})
    plan = plan_update(given, VersionLog(), per_domain, pool)
    assert plan.domain == "movies" and len(plan.older) == 20
    assert {e.domain for e in plan.older} == {e.domain for e in plan.split.holdout_replay} \
        == {"movies"}
    # the other domain's replayed examples still train the candidate
    assert {e.domain for e in plan.split.train if e.origin == "replay"} == {"tweets", "movies"}


def test_a_request_without_two_new_examples_is_refused_before_any_model_loads() -> None:
    pool = GatePool(capacity=10, max_bytes=10_000, holdout_fraction=0.25)
    with pytest.raises(TrainingRequestError, match="at least two new examples"):
        plan_update(request(regime=0, n=1), VersionLog(), SETTINGS, pool)
