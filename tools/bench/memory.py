"""Peak memory of a piece of work: the process's resident set, sampled while it runs.

``ru_maxrss`` only gives the peak since the process started, so a thread reads the current
resident set (``/proc/self/statm``, Linux) every few milliseconds while the work runs; where
that file is missing the figures are None. On CUDA the allocator's own peak is read too.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

__all__ = ["MemoryPeak", "current_rss", "peak_memory"]

_STATM = Path("/proc/self/statm")
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def current_rss() -> int | None:
    """The process's resident set in bytes now (None where ``/proc`` is missing)."""
    try:
        return int(_STATM.read_text().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        return None


@dataclass(slots=True)
class MemoryPeak:
    """Resident set before the work and its peak during it (bytes); CUDA's allocator too.

    >>> peak = MemoryPeak(before=100, peak=120)
    >>> peak.ratio, peak.added
    (1.2, 20)
    """

    before: int | None = None
    peak: int | None = None
    cuda_before: int | None = None
    cuda_peak: int | None = None

    @property
    def ratio(self) -> float | None:
        """Peak over the resident set before (1.0: the work needed nothing more)."""
        return self.peak / self.before if self.before and self.peak else None

    @property
    def added(self) -> int | None:
        return self.peak - self.before if self.before and self.peak else None


@contextmanager
def peak_memory(interval_s: float = 0.002) -> Iterator[MemoryPeak]:
    """Measure the resident set's peak while the ``with`` body runs.

    >>> with peak_memory() as measured:
    ...     block = bytearray(32 * 1024 * 1024)
    >>> measured.before is None or measured.peak >= measured.before
    True
    """
    import torch

    measured = MemoryPeak(before=current_rss())
    measured.peak = measured.before
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        measured.cuda_before = torch.cuda.memory_allocated()
    done = threading.Event()

    def sample() -> None:
        while True:
            now = current_rss()
            if now is not None and (measured.peak is None or now > measured.peak):
                measured.peak = now
            if done.wait(interval_s):
                return

    sampler = threading.Thread(target=sample, name="peak-memory", daemon=True)
    sampler.start()
    try:
        yield measured
    finally:
        done.set()
        sampler.join()
        now = current_rss()  # the last moment counts too
        if now is not None and (measured.peak is None or now > measured.peak):
            measured.peak = now
        if cuda:
            torch.cuda.synchronize()
            measured.cuda_peak = torch.cuda.max_memory_allocated()
