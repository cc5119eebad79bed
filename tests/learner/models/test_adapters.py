from __future__ import annotations

from pathlib import Path

import pytest

from driftloop.learner.errors import AdapterFormatError
from driftloop.learner.models.adapters import (
    ADAPTER_METADATA_FILE,
    AdapterMetadata,
    LoraSpec,
    check_safetensors_only,
    read_metadata,
)
from driftloop.schemas.enums import TaskKind


def test_metadata_round_trip(tmp_path: Path) -> None:
    meta = AdapterMetadata(TaskKind.GENERATION, "base", "v1", (), "sentiment@1", {"k": 1})
    (tmp_path / ADAPTER_METADATA_FILE).write_text(meta.to_json())
    assert read_metadata(tmp_path) == meta


@pytest.mark.parametrize("content", ["not json", "{}", '{"task_kind": "regression", '
                                     '"base_model": "m", "version_id": "v"}'])
def test_malformed_metadata(tmp_path: Path, content: str) -> None:
    (tmp_path / ADAPTER_METADATA_FILE).write_text(content)
    with pytest.raises(AdapterFormatError, match="malformed"):
        read_metadata(tmp_path)


def test_missing_metadata(tmp_path: Path) -> None:
    with pytest.raises(AdapterFormatError, match="has no"):
        read_metadata(tmp_path)


@pytest.mark.parametrize(("kwargs", "message"), [({"r": 0}, "r must"), ({"alpha": 0}, "alpha"),
                                                 ({"dropout": 1.0}, "dropout")])
def test_bad_lora_spec(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LoraSpec(**kwargs)


@pytest.mark.parametrize("name", ["adapter_model.bin", "pytorch_model.pt", "weights.PTH",
                                  "state.pkl", "model.ckpt"])
def test_pickled_weights_are_refused_even_beside_safetensors(tmp_path: Path, name: str) -> None:
    (tmp_path / "adapter_model.safetensors").write_bytes(b"weights")
    (tmp_path / name).write_bytes(b"\x80\x04pickle")
    with pytest.raises(AdapterFormatError, match="only safetensors"):
        check_safetensors_only(tmp_path)


def test_an_adapter_without_safetensors_weights_is_refused(tmp_path: Path) -> None:
    (tmp_path / "adapter_config.json").write_text("{}")
    with pytest.raises(AdapterFormatError, match="only safetensors"):
        check_safetensors_only(tmp_path)
    (tmp_path / "elsewhere.safetensors").write_bytes(b"w")
    (tmp_path / "adapter_model.safetensors").symlink_to(tmp_path / "elsewhere.safetensors")
    with pytest.raises(AdapterFormatError, match="only safetensors"):
        check_safetensors_only(tmp_path)


def test_the_model_host_refuses_a_pickle_before_peft_sees_it(tmp_path: Path) -> None:
    from driftloop.learner.models.resident import ResidentModels
    from driftloop.learner.serving import ModelHost

    meta = AdapterMetadata(TaskKind.CLASSIFICATION, "base", "v1", ("a", "b"))
    (tmp_path / ADAPTER_METADATA_FILE).write_text(meta.to_json())
    (tmp_path / "adapter_config.json").write_text("{}")
    (tmp_path / "adapter_model.bin").write_bytes(b"\x80\x04pickle")
    host = ModelHost(ResidentModels())
    try:
        with pytest.raises(AdapterFormatError, match=r"adapter_model\.bin: pickled weights"):
            host.load("t", "v1", tmp_path, "base")
    finally:
        host.close()


def test_a_parent_whose_weights_do_not_fit_is_refused_before_training(  # type: ignore[no-untyped-def]
        minilm, tmp_path: Path) -> None:
    import shutil

    from peft import LoraConfig
    from safetensors.torch import load_file, save_file

    from driftloop.learner.models.adapters import trainable_peft_model
    from driftloop.learner.models.classification import MeanPoolClassifier
    from driftloop.learner.serving import write_probe_adapter

    good = write_probe_adapter(minilm, tmp_path / "good", version_id="good",
                               labels=("negative", "positive"), favour="negative", seed=1)
    config = LoraConfig(r=8, target_modules=["query", "value"], modules_to_save=["head"])
    loaded = trainable_peft_model(MeanPoolClassifier(minilm.fresh_copy(), 2), config, good)
    assert any(p.requires_grad for p in loaded.parameters())
    bad = tmp_path / "bad"
    shutil.copytree(good, bad)
    weights = bad / "adapter_model.safetensors"
    state = load_file(str(weights))
    save_file({k: v for k, v in state.items() if "layer.0." not in k}, str(weights))
    with pytest.raises(AdapterFormatError, match="does not fit the model"):
        trainable_peft_model(MeanPoolClassifier(minilm.fresh_copy(), 2), config, bad)
