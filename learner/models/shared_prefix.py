"""Greedy answers to prompts that begin alike, with their shared beginning computed once.

Every prompt a template renders starts with the same tokens (the chat template's system
message and the instruction: 43 of about 55 tokens for SmolLM2's sentiment prompts), and
batched generation runs them again for every prompt of every batch. Here the longest token
prefix common to all the prompts goes through the model once; its key/value cache is
copied for each batch, and each prompt's own tokens follow it, padded on their left *after*
the prefix (the padding is masked; the positions of the real tokens are those of the prompt
alone, since the model numbers positions from the attention mask), so a batch answers as
the same prompts left-padded whole would. Measured in ``driftloop bench learner --kind
generation`` (see docs/benchmarks.md).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import torch

__all__ = ["MIN_SHARED", "common_prefix", "generate_after", "prefix_cache", "repeated"]

MIN_SHARED = 8
"""Fewer shared tokens than this are not worth a cache."""


def common_prefix(rows: Sequence[Sequence[int]]) -> int:
    """The number of leading tokens every row shares, leaving each row at least one of its
    own (a generation step needs a token to answer from).

    >>> common_prefix([[1, 2, 3, 4], [1, 2, 3, 5], [1, 2, 9]])
    2
    >>> common_prefix([[1, 2, 3], [1, 2, 3]]), common_prefix([[7]]), common_prefix([])
    (2, 0, 0)
    """
    if not rows:
        return 0
    limit = min(len(row) for row in rows) - 1
    first = rows[0]
    shared = 0
    while shared < limit and all(row[shared] == first[shared] for row in rows):
        shared += 1
    return shared


def prefix_cache(model: Any, prefix: Sequence[int], device: Any) -> Any:
    """The model's key/value cache after ``prefix`` (one row)."""
    from transformers import DynamicCache

    cache = DynamicCache()
    model(input_ids=torch.tensor([list(prefix)], device=device), past_key_values=cache,
          use_cache=True)
    return cache


def repeated(cache: Any, count: int) -> Any:
    """A copy of the prefix's ``cache`` for a batch of ``count`` rows (the original serves
    the next batch too)."""
    batch_cache = copy.deepcopy(cache)
    batch_cache.batch_repeat_interleave(count)
    return batch_cache


def generate_after(model: Any, cache: Any, prefix: Sequence[int],
                   rows: Sequence[Sequence[int]], *, pad_token_id: int, max_new_tokens: int,
                   device: Any) -> torch.Tensor:
    """Greedy new tokens (one row per prompt) for prompts ``prefix + row``, the prefix's
    ``cache`` reused (copied: it serves the next batch too): each row is padded on its
    left, between the prefix and its tokens."""
    width = max(len(row) for row in rows)
    own = torch.tensor([[pad_token_id] * (width - len(row)) + list(row) for row in rows],
                       device=device)
    own_mask = torch.tensor([[0] * (width - len(row)) + [1] * len(row) for row in rows],
                            device=device)
    count, shared = len(rows), len(prefix)
    input_ids = torch.cat([torch.tensor([list(prefix)] * count, device=device), own], dim=1)
    attention_mask = torch.cat(
        [torch.ones(count, shared, dtype=own_mask.dtype, device=device), own_mask], dim=1)
    output = model.generate(input_ids=input_ids, attention_mask=attention_mask,
                            past_key_values=repeated(cache, count),
                            max_new_tokens=max_new_tokens,
                            do_sample=False, pad_token_id=pad_token_id)
    return output[:, input_ids.shape[1]:]
