"""The continual-learning experiment's configuration (the MiniLM runs are in test_bench_quality)."""

from __future__ import annotations

import pytest

from driftloop.tools.bench.quality.continual import ContinualConfig, run_continual


def test_the_quick_config_is_smaller_than_the_default():
    quick, full = ContinualConfig.named(quick=True), ContinualConfig.named(quick=False)
    assert len(quick.domains) < len(full.domains)
    assert quick.per_domain * len(quick.domains) < full.per_domain * len(full.domains)
    # A batch never straddles domains only if the batch divides the domain's length evenly
    # or the loop cuts it; both sizes give at least two training requests per domain.
    assert quick.per_domain // quick.every_examples >= 2
    assert full.per_domain // full.every_examples >= 2


@pytest.mark.parametrize("kwargs", [{"every_examples": 4}, {"per_domain": 0}, {"epochs": 0},
                                    {"bootstrap": 2}, {"domains": ("tweets",)}])
def test_bad_configs_are_refused(kwargs):
    with pytest.raises(ValueError):
        ContinualConfig(**kwargs)


def test_unknown_runs_are_refused_before_any_model_loads():
    with pytest.raises(ValueError, match="unknown runs"):
        run_continual(ContinualConfig.named(quick=True), runs=["magic"])
