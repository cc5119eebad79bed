"""The learner on a CUDA device (skipped without one; ``driftloop bench gpu-check`` runs them):
mixed precision picked by itself, and an adapter trained there serves alike on a CPU."""

from __future__ import annotations

import pytest
import torch
from learner_helpers import learner_settings, sentiment_request

from driftloop.learner.models.device import select_device
from driftloop.learner.models.resident import ResidentModels
from driftloop.learner.registry.version_log import VersionLog
from driftloop.learner.serving.model_host import ModelHost
from driftloop.learner.training.update import IncrementalUpdater

pytestmark = [pytest.mark.cuda, pytest.mark.slow,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


def test_auto_picks_cuda_with_mixed_precision() -> None:
    device = select_device("auto")
    assert device.type == "cuda"
    assert device.autocast_dtype == (torch.bfloat16 if torch.cuda.is_bf16_supported()
                                     else torch.float16)


def test_an_adapter_trained_on_cuda_serves_alike_on_a_cpu(tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = learner_settings(str(tmp_path / "store"))
    updater = IncrementalUpdater(settings)
    result = updater.update(sentiment_request("cuda-1", n=128), VersionLog())
    event = result.event
    assert event.metadata["device"] == "cuda"
    held_out = list(result.split.holdout_new)
    folder = updater.store.fetch(event.adapter_uri, event.sha256, tmp_path / "fetched")
    host = ModelHost(ResidentModels(capacity=1))  # serving on the CPU
    try:
        host.load(event.task, event.version_id, folder, event.base_model)
        answers = host.predict(event.task, event.version_id, [e.input for e in held_out])
    finally:
        host.close()
    accuracy = sum(a.label == e.target for a, e in zip(answers, held_out, strict=True)) \
        / len(held_out)
    assert accuracy == pytest.approx(event.metrics_after["holdout_score"], abs=0.05)


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two CUDA devices")
def test_an_update_spreads_over_every_gpu_of_the_box(tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = learner_settings(str(tmp_path / "store"), data_parallel=0)
    result = IncrementalUpdater(settings).update(sentiment_request("cuda-dp", n=128),
                                                 VersionLog())
    assert result.event.metadata["device"] == "cuda"
    assert result.event.metadata["train_processes"] == torch.cuda.device_count()
