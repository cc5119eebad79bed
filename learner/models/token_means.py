"""The version-free vector of a text: the mean of the base model's input-token embeddings.

LoRA adapts attention (and a classifier's head), never the embedding table, so the mean is
the same whatever adapter serves: what a generation interaction carries as its
``input_embedding`` (a drift signal that a promotion does not move), and what a prompt
policy's worked examples are chosen by (:mod:`.prompt_policy`). It costs a table lookup,
not a forward pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["input_embeddings", "token_embedding_means"]


def input_embeddings(model: Any, tokenizer: Any, texts: Sequence[str], *,
                     max_length: int) -> list[list[float]]:
    """The mean of the base model's input (token) embeddings of each text (special tokens
    left out), rounded to six decimals."""
    import torch

    encoded = tokenizer(list(texts), padding=True, truncation=True, max_length=max_length,
                        add_special_tokens=False, return_tensors="pt")
    with torch.inference_mode():
        pooled = token_embedding_means(model.get_input_embeddings(), encoded["input_ids"],
                                       encoded["attention_mask"], decimals=6)
    return pooled.tolist()


def token_embedding_means(table: Any, input_ids: Any, attention_mask: Any, *,
                          decimals: int = 5) -> Any:
    """The mean of each row's token embeddings (``table``, the model's input embedding
    layer), padding left out, rounded to ``decimals``: a (batch, hidden) float tensor.

    LoRA adapts attention and the head, never the embedding table, so the means are the
    same whatever adapter serves: a drift signal that a promotion does not move.

    >>> import torch
    >>> table = torch.nn.Embedding(4, 2)
    >>> _ = table.weight.data.copy_(torch.tensor([[0., 0.], [1., 3.], [3., 1.], [9., 9.]]))
    >>> token_embedding_means(table, torch.tensor([[1, 2, 0]]), torch.tensor([[1, 1, 0]]))
    tensor([[2., 2.]], dtype=torch.float64)
    """
    import torch

    with torch.inference_mode():
        vectors = table(input_ids).double()  # rounded in float64: short JSON numbers
        mask = attention_mask.unsqueeze(-1).to(vectors.dtype)
        means = (vectors * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
        return torch.round(means, decimals=decimals)
