"""Example-weighted LoRA merging: exact where it can be, closest rank-r where it cannot."""

from __future__ import annotations

import pytest
import torch

from driftloop.learner.errors import FederationError
from driftloop.learner.federated.lora_merge import (
    lora_pairs,
    merge_lora_states,
    merge_report,
    naive_merge,
    normalised_weights,
)

SCALING = 2.0


def site(seed: int, *, r: int = 4, used: int | None = None, out: int = 12,
         inp: int = 10) -> dict[str, torch.Tensor]:
    """A random adapter; ``used`` < r leaves the other rank directions empty."""
    g = torch.Generator().manual_seed(seed)
    a, b = torch.randn(r, inp, generator=g), torch.randn(out, r, generator=g)
    if used is not None:
        a[used:], b[:, used:] = 0.0, 0.0
    return {"m.q.lora_A.weight": a, "m.q.lora_B.weight": b,
            "m.head.modules_to_save.weight": torch.randn(3, inp, generator=g),
            "m.head.modules_to_save.bias": torch.randn(3, generator=g)}


def delta(state: dict[str, torch.Tensor]) -> torch.Tensor:
    return SCALING * state["m.q.lora_B.weight"].double() @ state["m.q.lora_A.weight"].double()


def test_merge_is_the_exact_weighted_average_when_the_ranks_fit() -> None:
    # Two rank-2 updates on r=4: their average has rank <= 4, so rank 4 holds it exactly.
    one, two = site(1, used=2), site(2, used=2)
    merged = merge_lora_states([one, two], [300, 100], scaling=SCALING)
    assert torch.allclose(delta(merged), 0.75 * delta(one) + 0.25 * delta(two), atol=1e-5)
    naive = naive_merge([one, two], [300, 100])
    assert not torch.allclose(delta(naive), delta(merged), atol=1e-2)  # cross terms
    for key in ("m.head.modules_to_save.weight", "m.head.modules_to_save.bias"):
        assert torch.allclose(merged[key], 0.75 * one[key] + 0.25 * two[key])


def test_merge_is_the_best_rank_r_approximation_and_beats_naive_averaging() -> None:
    states, counts = [site(s) for s in range(3)], [5, 3, 2]
    merged = merge_lora_states(states, counts, scaling=SCALING)
    exact = sum(w * delta(s) for w, s in zip(normalised_weights(counts), states, strict=True))
    singular = torch.linalg.svdvals(exact)
    # Eckart-Young: the error of the best rank-4 approximation is the tail of the spectrum.
    error = torch.linalg.norm(delta(merged) - exact)
    assert float(error) == pytest.approx(float(singular[4:].norm()), rel=1e-4)
    report = merge_report(states, counts, merged)
    assert report.layers == 1 and report.svd_error < report.naive_error
    assert merged["m.q.lora_A.weight"].shape == (4, 10)
    assert merged["m.q.lora_B.weight"].shape == (12, 4)


def test_merging_one_adapter_or_copies_keeps_its_update() -> None:
    one = site(7)
    for merged in (merge_lora_states([one], [9], scaling=SCALING),
                   merge_lora_states([one, one], [1, 5], scaling=SCALING)):
        assert torch.allclose(delta(merged), delta(one), atol=1e-4)


@pytest.mark.parametrize("counts", [[0, 4], [3, -1], []])
def test_zero_negative_or_missing_counts_are_refused(counts: list[int]) -> None:
    with pytest.raises(FederationError, match="example counts must be positive"):
        normalised_weights(counts)


def test_mismatched_shapes_and_layouts_are_refused() -> None:
    with pytest.raises(FederationError, match=r"shape \(2, 10\) in adapter 1, \(4, 10\)"):
        merge_lora_states([site(1), site(2, r=2)], [1, 1], scaling=SCALING)
    other = site(3)
    other["m.k.lora_A.weight"] = torch.zeros(4, 10)
    other["m.k.lora_B.weight"] = torch.zeros(12, 4)
    with pytest.raises(FederationError, match="other tensors"):
        merge_lora_states([site(1), other], [1, 1], scaling=SCALING)
    with pytest.raises(FederationError, match="2 adapters but 1 example counts"):
        merge_lora_states([site(1), site(2)], [1], scaling=SCALING)
    with pytest.raises(FederationError, match="no adapters"):
        merge_lora_states([], [], scaling=SCALING)


def test_a_factor_without_its_pair_is_refused() -> None:
    lonely = site(1)
    del lonely["m.q.lora_B.weight"]
    with pytest.raises(FederationError, match="no matching lora_B"):
        lora_pairs(lonely)
    lonely = site(1)
    del lonely["m.q.lora_A.weight"]
    with pytest.raises(FederationError, match="no matching lora_A"):
        lora_pairs(lonely)
