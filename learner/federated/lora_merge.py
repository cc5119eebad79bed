"""Example-weighted averaging of LoRA adapters that share a base model and a LoRA shape.

A LoRA layer adds ``ΔW = scaling · B @ A`` to a frozen weight (``A``: r x in, ``B``: out x r).
Averaging ``A`` and ``B`` separately is not averaging the updates: with weights ``w_i``,
``(Σ w_i B_i) @ (Σ w_i A_i)`` has cross terms ``w_i w_j B_i @ A_j`` that no site trained.
So :func:`merge_lora_states` averages the dense updates, ``ΔW = Σ w_i · scaling · B_i @ A_i``
(exact), then factorises ``ΔW`` back to rank ``r`` with a truncated SVD: of all rank-r
matrices, the truncated SVD is the closest to ``ΔW`` (Eckart-Young), and the merged adapter
keeps the federation's LoRA shape, so any PEFT loader and the next round's sites can use it.
The singular values are split evenly between the factors (``B = U √S``, ``A = √S Vᵀ``).

Every other tensor (a classifier head saved whole as a PEFT ``modules_to_save`` module,
biases) is a plain weight of the model: it is averaged directly.

:func:`merge_report` measures, per LoRA layer, how far each way lands from the exact
average (``tests/learner/federated/test_lora_merge.py`` and the federated tests check the numbers).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch

from ..errors import FederationError

__all__ = ["LoraPair", "MergeReport", "lora_pairs", "merge_lora_states", "merge_report",
           "naive_merge", "normalised_weights"]

State = Mapping[str, torch.Tensor]
_A, _B = ".lora_A.", ".lora_B."


@dataclass(frozen=True, slots=True)
class LoraPair:
    """The keys of one LoRA layer's two factors in a PEFT state dict."""

    a: str
    b: str


def lora_pairs(state: State) -> dict[str, LoraPair]:
    """The LoRA layers of a state dict, by module name (refusing a factor without its pair).

    >>> state = {"m.q.lora_A.weight": torch.zeros(2, 4), "m.q.lora_B.weight": torch.zeros(4, 2),
    ...          "m.head.modules_to_save.weight": torch.zeros(3, 4)}
    >>> lora_pairs(state)
    {'m.q': LoraPair(a='m.q.lora_A.weight', b='m.q.lora_B.weight')}
    """
    pairs: dict[str, LoraPair] = {}
    for key in state:
        if _A in key:
            module = key.split(_A, 1)[0]
            partner = key.replace(_A, _B, 1)
            if partner not in state:
                raise FederationError(f"{key} has no matching lora_B factor ({partner})")
            pairs[module] = LoraPair(key, partner)
        elif _B in key and key.replace(_B, _A, 1) not in state:
            raise FederationError(f"{key} has no matching lora_A factor")
    return pairs


def normalised_weights(counts: Sequence[int]) -> list[float]:
    """Averaging weights proportional to example counts (refusing zero or negative counts).

    >>> normalised_weights([300, 100])
    [0.75, 0.25]
    >>> normalised_weights([5, 0])
    Traceback (most recent call last):
    ...
    driftloop.learner.errors.FederationError: example counts must be positive, got [5, 0]
    """
    if not counts or any(c <= 0 for c in counts):
        raise FederationError(f"example counts must be positive, got {list(counts)}")
    total = float(sum(counts))
    return [c / total for c in counts]


def _check_same_shapes(states: Sequence[State]) -> None:
    first = states[0]
    for i, state in enumerate(states[1:], start=1):
        if set(state) != set(first):
            missing = sorted(set(first) ^ set(state))[:3]
            raise FederationError(f"adapter {i} has other tensors than adapter 0 "
                                  f"(e.g. {missing}): not the same LoRA layout")
        for key, tensor in state.items():
            if tuple(tensor.shape) != tuple(first[key].shape):
                raise FederationError(f"{key}: shape {tuple(tensor.shape)} in adapter {i}, "
                                      f"{tuple(first[key].shape)} in adapter 0")


def _refactorise(delta: torch.Tensor, rank: int, scaling: float) -> tuple[torch.Tensor,
                                                                          torch.Tensor]:
    """``(A, B)`` of rank ``rank`` with ``scaling · B @ A`` closest to ``delta``."""
    u, s, vh = torch.linalg.svd(delta / scaling, full_matrices=False)
    root = s[:rank].sqrt()
    return root[:, None] * vh[:rank], u[:, :rank] * root[None, :]


def merge_lora_states(states: Sequence[State], counts: Sequence[int], *,
                      scaling: float) -> dict[str, torch.Tensor]:
    """Merge adapters by example-weighted averaging of their dense LoRA updates.

    Parameters
    ----------
    states
        PEFT adapter state dicts (as in ``adapter_model.safetensors``) of the same layout.
    counts
        Examples behind each adapter: the averaging weights.
    scaling
        The adapters' LoRA scaling (``lora_alpha / r``), the same for all of them.

    Examples
    --------
    >>> _ = torch.manual_seed(0)
    >>> def site():
    ...     return {"q.lora_A.weight": torch.randn(2, 6), "q.lora_B.weight": torch.randn(6, 2),
    ...             "head.modules_to_save.weight": torch.randn(3, 6)}
    >>> one, two = site(), site()
    >>> merged = merge_lora_states([one, two], [3, 1], scaling=2.0)
    >>> merged["q.lora_A.weight"].shape, merged["q.lora_B.weight"].shape
    (torch.Size([2, 6]), torch.Size([6, 2]))
    >>> head = 0.75 * one["head.modules_to_save.weight"] + 0.25 * two["head.modules_to_save.weight"]
    >>> torch.allclose(merged["head.modules_to_save.weight"], head)
    True
    """
    if not states:
        raise FederationError("nothing to merge: no adapters")
    if len(states) != len(counts):
        raise FederationError(f"{len(states)} adapters but {len(counts)} example counts")
    weights = normalised_weights(counts)
    _check_same_shapes(states)
    pairs = lora_pairs(states[0])
    factors = {key for pair in pairs.values() for key in (pair.a, pair.b)}
    merged: dict[str, torch.Tensor] = {}
    for pair in pairs.values():
        rank = states[0][pair.a].shape[0]
        delta = sum(w * scaling * (s[pair.b].double() @ s[pair.a].double())
                    for w, s in zip(weights, states, strict=True))
        a, b = _refactorise(delta, rank, scaling)
        dtype = states[0][pair.a].dtype
        merged[pair.a], merged[pair.b] = a.to(dtype).contiguous(), b.to(dtype).contiguous()
    for key in states[0]:
        if key not in factors:
            merged[key] = sum(w * s[key].double() for w, s in
                              zip(weights, states, strict=True)).to(states[0][key].dtype)
    return merged


def naive_merge(states: Sequence[State], counts: Sequence[int]) -> dict[str, torch.Tensor]:
    """Every tensor averaged on its own, ``A`` and ``B`` included (for comparison only).

    >>> state = {"q.lora_A.weight": torch.ones(1, 2), "q.lora_B.weight": torch.ones(2, 1)}
    >>> naive_merge([state, state], [1, 1])["q.lora_A.weight"]
    tensor([[1., 1.]])
    """
    weights = normalised_weights(counts)
    _check_same_shapes(states)
    return {key: sum(w * s[key].double() for w, s in zip(weights, states, strict=True))
            .to(states[0][key].dtype) for key in states[0]}


@dataclass(frozen=True, slots=True)
class MergeReport:
    """Relative Frobenius error, against the exact average of the updates, of each merge.

    ``svd_error``: the truncated-SVD merge (what driftloop publishes); ``naive_error``:
    ``A`` and ``B`` averaged separately. Means over the LoRA layers.
    """

    svd_error: float
    naive_error: float
    layers: int

    def as_metadata(self) -> dict[str, float]:
        return {"svd_relative_error": round(self.svd_error, 6),
                "naive_relative_error": round(self.naive_error, 6), "lora_layers": self.layers}


def merge_report(states: Sequence[State], counts: Sequence[int], merged: State) -> MergeReport:
    """How far the merged and the naive updates are from the exact weighted average.

    >>> _ = torch.manual_seed(1)
    >>> sites = [{"q.lora_A.weight": torch.randn(2, 8), "q.lora_B.weight": torch.randn(8, 2)}
    ...          for _ in range(2)]
    >>> merged = merge_lora_states(sites, [1, 1], scaling=1.0)
    >>> report = merge_report(sites, [1, 1], merged)
    >>> report.svd_error < report.naive_error
    True
    """
    weights = normalised_weights(counts)
    naive = naive_merge(states, counts)
    svd_errors, naive_errors = [], []
    for pair in lora_pairs(states[0]).values():
        exact = sum(w * (s[pair.b].double() @ s[pair.a].double())
                    for w, s in zip(weights, states, strict=True))
        norm = float(torch.linalg.norm(exact)) or 1.0
        for got, errors in ((merged, svd_errors), (naive, naive_errors)):
            approx = got[pair.b].double() @ got[pair.a].double()
            errors.append(float(torch.linalg.norm(approx - exact)) / norm)
    layers = len(svd_errors)
    if not layers:
        return MergeReport(0.0, 0.0, 0)
    return MergeReport(sum(svd_errors) / layers, sum(naive_errors) / layers, layers)
