"""Base models in another dtype or quantized: what loads where, and adapters that travel."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from learner_helpers import learner_settings, sentiment_request

from driftloop.learner.errors import ModelLoadError
from driftloop.learner.models.precision import BasePrecision
from driftloop.learner.models.resident import ResidentModels, default_base_model
from driftloop.schemas.enums import TaskKind
from driftloop.schemas.settings import LearnerSettings

BASE = default_base_model(TaskKind.CLASSIFICATION)


def test_the_default_is_float32_on_the_cpu_and_an_asked_dtype_anywhere() -> None:
    assert LearnerSettings().base_dtype == "auto" and LearnerSettings().base_quantization is None
    assert BasePrecision().loading_kwargs(cuda=False) == {"dtype": torch.float32}
    assert BasePrecision().is_float32(cuda=False)
    half = BasePrecision("float16")
    assert half.loading_kwargs(cuda=False) == {"dtype": torch.float16}
    assert half.loading_kwargs(cuda=True) == {"dtype": torch.float16}
    assert not half.is_float32(cuda=False)


@pytest.mark.parametrize("bits", ["4bit", "8bit"])
def test_quantization_without_cuda_or_bitsandbytes_is_a_clear_error(bits: str) -> None:
    with pytest.raises(ModelLoadError, match=f'"{bits}" needs a CUDA device'):
        BasePrecision(quantization=bits).loading_kwargs(cuda=False)  # type: ignore[arg-type]
    try:  # bitsandbytes is not among the dependencies: its absence is named
        import bitsandbytes  # noqa: F401
    except ImportError:
        with pytest.raises(ModelLoadError, match="pip install bitsandbytes"):
            BasePrecision("bfloat16", bits).loading_kwargs(cuda=True)  # type: ignore[arg-type]


def test_a_learner_asked_to_quantize_on_the_cpu_says_so_before_any_weights_load() -> None:
    cfg = LearnerSettings(device="cpu", base_quantization="4bit")
    with pytest.raises(ModelLoadError, match="set it to None"):
        ResidentModels.for_learner(cfg).get(BASE, TaskKind.CLASSIFICATION)


def test_an_update_on_a_bf16_base_stores_a_float32_adapter_any_base_serves(  # type: ignore[no-untyped-def]
        tmp_path: Path, resident_models) -> None:
    from driftloop.learner.registry.version_log import VersionLog
    from driftloop.learner.serving import ModelHost
    from driftloop.learner.training.update import IncrementalUpdater

    settings = learner_settings(str(tmp_path / "store"), base_dtype="bfloat16", device="cpu")
    learner = IncrementalUpdater(settings)
    base = learner.models.get(BASE, TaskKind.CLASSIFICATION)
    assert {p.dtype for p in base.model.parameters()} == {torch.bfloat16}
    result = learner.update(sentiment_request("r-bf16", n=48), VersionLog())
    assert result.train_report.steps > 0
    event = result.event
    folder = learner.store.fetch(event.adapter_uri, event.sha256, tmp_path / "fetched")
    from safetensors.torch import load_file

    stored = load_file(next(folder.glob("*.safetensors")))
    assert {t.dtype for t in stored.values()} == {torch.float32}
    # The same adapter on a float32 base (the session's) and on the bf16 one answer alike.
    texts = ["what a wonderful film", "dull and far too long", "I loved every minute"]
    answers = []
    for models in (resident_models, learner.models):
        host = ModelHost(models, max_length=32)
        try:
            host.load("sentiment", event.version_id, folder, event.base_model)
            answers.append([a.label for a in host.predict("sentiment", event.version_id,
                                                          texts)])
        finally:
            host.close()
    assert answers[0] == answers[1]
