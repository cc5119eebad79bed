from __future__ import annotations

import pytest
import torch

from driftloop.learner.errors import LearnerError
from driftloop.learner.models.device import select_device


def test_cpu_runs_in_full_precision() -> None:
    device = select_device("auto" if not torch.cuda.is_available() else "cpu")
    assert device.type == "cpu" and device.autocast_dtype is None


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_asked_for_but_absent() -> None:
    with pytest.raises(LearnerError, match="no CUDA device"):
        select_device("cuda")


def test_bad_arguments() -> None:
    with pytest.raises(LearnerError, match="unknown device"):
        select_device("tpu")  # type: ignore[arg-type]
    with pytest.raises(LearnerError, match="torch_threads"):
        select_device("cpu", 0)
