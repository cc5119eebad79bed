"""Where the learner computes: CUDA with mixed precision when present, else the CPU."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import torch

from ..errors import LearnerError
from .precision import cuda_half_dtype, cuda_in_use

__all__ = ["ComputeDevice", "select_device"]


@dataclass(frozen=True, slots=True)
class ComputeDevice:
    """A torch device and the autocast dtype used on it (None: full precision).

    Examples
    --------
    >>> device = select_device("cpu")
    >>> device.type, device.autocast_dtype
    ('cpu', None)
    >>> with device.autocast():
    ...     (torch.ones(2) * 2).dtype
    torch.float32
    """

    device: torch.device
    autocast_dtype: torch.dtype | None = None

    @property
    def type(self) -> str:
        return self.device.type

    @contextlib.contextmanager
    def autocast(self) -> Iterator[None]:
        """Mixed precision on CUDA (bf16 where supported, else fp16); a no-op on the CPU."""
        if self.autocast_dtype is None:
            yield
            return
        with torch.autocast(device_type=self.device.type, dtype=self.autocast_dtype):
            yield


def select_device(preference: Literal["auto", "cpu", "cuda"] = "auto",
                  torch_threads: int | None = None) -> ComputeDevice:
    """Pick the device named by the settings; ``auto`` takes CUDA when it is available.

    ``torch_threads`` caps the CPU threads torch uses: the learner shares small machines with
    the broker and the stream worker, and oversubscribed cores slow everyone down.
    """
    if preference not in ("auto", "cpu", "cuda"):
        raise LearnerError(f"unknown device {preference!r}; expected auto, cpu or cuda")
    if torch_threads is not None:
        if torch_threads < 1:
            raise LearnerError(f"torch_threads must be >= 1, got {torch_threads}")
        torch.set_num_threads(torch_threads)
    if preference == "cuda" and not torch.cuda.is_available():
        raise LearnerError("device=cuda was asked for but torch sees no CUDA device")
    if not cuda_in_use(preference):
        return ComputeDevice(torch.device("cpu"))
    return ComputeDevice(torch.device("cuda"), cuda_half_dtype())
