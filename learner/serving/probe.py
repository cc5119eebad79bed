"""Probe adapters: real PEFT classification adapters whose answer is known in advance.

A probe is built exactly like a trained adapter (the learner's classifier, LoRA config and
save path), with seeded small LoRA weights and a head biased toward one label, so whoever
loads it can tell from ``/predict`` alone which version answered. Smoke checks of a
deployment and the swap benchmark use them; training would only add minutes.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ...schemas.enums import TaskKind
from ..models.adapters import AdapterMetadata, LoraSpec, save_adapter
from ..models.classification import HEAD_MODULE, MeanPoolClassifier, classifier_lora_config
from ..models.generation import generator_lora_config
from ..models.resident import BaseModel

__all__ = ["write_generation_probe", "write_probe_adapter"]


def write_probe_adapter(base: BaseModel, folder: Path, *, version_id: str,
                        labels: Sequence[str], favour: str, seed: int = 0,
                        margin: float = 6.0) -> Path:
    """Write an adapter to ``folder`` that answers ``favour`` for (almost) any input.

    ``margin`` is the head's bias toward ``favour`` in logits; the LoRA weights are seeded
    noise, so two probes with different seeds also differ in their probabilities.
    """
    import torch
    from peft import get_peft_model

    if favour not in labels:
        raise ValueError(f"favour must be one of {list(labels)}, got {favour!r}")
    generator = torch.Generator().manual_seed(seed)
    classifier = MeanPoolClassifier(base.fresh_copy(), len(labels))
    model = get_peft_model(classifier, classifier_lora_config(LoraSpec()))
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.02)
        head = getattr(model.base_model.model, HEAD_MODULE).modules_to_save["default"]
        head.weight.copy_(torch.randn(head.weight.shape, generator=generator) * 0.01)
        head.bias.zero_()
        head.bias[list(labels).index(favour)] = margin
    metadata = AdapterMetadata(TaskKind.CLASSIFICATION, base.model_id, version_id, tuple(labels),
                               extra={"probe": True, "favour": favour, "seed": seed})
    return save_adapter(model, folder, metadata)


def write_generation_probe(base: BaseModel, folder: Path, *, version_id: str,
                           prompt_template_id: str | None = None, seed: int = 0,
                           scale: float = 0.0) -> Path:
    """Write a causal-LM LoRA adapter of ``base`` to ``folder``.

    With ``scale`` 0 the LoRA update is zero and the answers are the base model's; a
    larger ``scale`` seeds the update with noise of that size, so two probes answer apart.
    """
    import torch
    from peft import get_peft_model

    generator = torch.Generator().manual_seed(seed)
    model = get_peft_model(base.fresh_copy(), generator_lora_config(LoraSpec()))
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=generator) * scale)
    metadata = AdapterMetadata(TaskKind.GENERATION, base.model_id, version_id,
                               prompt_template_id=prompt_template_id,
                               extra={"probe": True, "seed": seed, "scale": scale})
    return save_adapter(model, folder, metadata)
