"""What the inputs look like, whatever model served them: hashed byte bigrams of the text.

The embedding an interaction carries comes from the served adapter, so a promotion moves it
and the drift monitors must learn their reference again, blind to a shift for their warm-up.
These features come from the input text alone: a version never changes them, and a shift of
vocabulary, language, length or style moves them. Each text becomes the square roots of its
byte-bigram counts hashed into ``dim`` buckets (a batch at once, with numpy), which the drift
monitors reduce like an embedding: a distance to a centroid and a few random projections.

Every digit counts as ``0``. Inputs often carry a number that moves with every event (a
ticket number, an order id, a timestamp): its digits' bigrams follow the counter, so the
features drifted with it and the monitors alerted every few hundred events on steady
traffic (44 alerts in 40,000 events of ``ticket #<n>: <text>``, 56 with a timestamp in
front). Folded, a number is its length, which changes a handful of times in a counter's
life.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np

__all__ = ["text_features"]

# Knuth's multiplicative hash: spreads the 65,536 bigram codes over the buckets.
_MULTIPLIER = np.uint64(2654435761)


@lru_cache(maxsize=8)
def _bucket_table(dim: int) -> np.ndarray:
    """The bucket of every byte bigram ``256 * first + second``, digits read as ``0``: one
    lookup per bigram instead of the hash's arithmetic on each."""
    symbol = np.arange(256, dtype=np.uint64)
    symbol[ord("0"):ord("9") + 1] = ord("0")  # every digit is one symbol
    codes = (symbol[:, None] * np.uint64(256) + symbol[None, :]).ravel()
    table = (((codes * _MULTIPLIER) >> np.uint64(16)) % np.uint64(dim)).astype(np.int64)
    table.setflags(write=False)
    return table


def text_features(texts: Sequence[str], dim: int = 64) -> np.ndarray:
    """An ``(n, dim)`` array: the square-rooted hashed byte-bigram counts of each text.

    A text shorter than two bytes has no bigram and gives a row of zeros.

    >>> rows = text_features(["great film", "great film", "@user lol #fail"], dim=16)
    >>> rows.shape, bool((rows[0] == rows[1]).all()), bool((rows[0] == rows[2]).all())
    ((3, 16), True, False)
    >>> float(text_features(["a"], dim=8).sum()), text_features([], dim=8).shape
    (0.0, (0, 8))
    >>> ticket = text_features(["ticket 1207", "ticket 9315", "ticket 12"], dim=16)
    >>> bool((ticket[0] == ticket[1]).all()), bool((ticket[0] == ticket[2]).all())
    (True, False)
    """
    if dim < 1:
        raise ValueError(f"dim must be >= 1, got {dim}")
    n = len(texts)
    encoded = [text.encode("utf-8", "replace") for text in texts]
    lengths = np.fromiter(map(len, encoded), dtype=np.int64, count=n)
    if n == 0 or int(lengths.sum()) < 2:
        return np.zeros((n, dim))
    data = np.frombuffer(b"".join(encoded), dtype=np.uint8).astype(np.int64)
    owner = np.repeat(np.arange(n, dtype=np.int64), lengths)
    same = owner[:-1] == owner[1:]  # bigrams inside one text, not across two
    codes = (data[:-1] << 8 | data[1:])[same]
    flat = owner[:-1][same] * dim + _bucket_table(dim)[codes]
    counts = np.bincount(flat, minlength=n * dim).reshape(n, dim)
    return np.sqrt(counts)
