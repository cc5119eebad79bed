"""Give the C allocator's free memory back to the system after an update.

PyTorch's CPU tensors come from the C library's ``malloc``. After an update glibc keeps most
of what the update freed (activations, gradients, logits) in its arenas, so the learner's
resident set stayed near the update's peak between updates: SmolLM2-135M, 32 examples,
2.1-2.5 GB idle against 1.4 GB once ``malloc_trim(0)`` ran. Elsewhere (macOS, musl) this
does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from collections.abc import Callable

__all__ = ["release_free_memory"]


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        return libc.malloc_trim if libc is not None else None  # type: ignore[no-any-return]
    except (OSError, AttributeError):  # not glibc
        return None


def release_free_memory() -> bool:
    """Return the allocator's free pages to the system; False where that is not possible.

    >>> isinstance(release_free_memory(), bool)
    True
    """
    trim = _malloc_trim()
    if trim is None:
        return False
    return bool(trim(0))
