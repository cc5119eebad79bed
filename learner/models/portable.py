"""The stored form of an adapter that any PEFT process loads, and driftloop's form in memory.

driftloop trains a classification adapter as one PEFT model over
:class:`~.classification.MeanPoolClassifier` (encoder, mean pooling, a linear head kept as
a ``modules_to_save`` module), and PEFT saves that with keys and a config only driftloop's
class can read. What the store holds instead is the *portable* form:

- ``adapter_config.json``: PEFT's LoRA config of the **encoder** (``task_type`` is
  ``FEATURE_EXTRACTION``, ``base_model_name_or_path`` the base model's hub id), with
  ``adapter_model.safetensors`` keyed by the encoder's module names, so
  ``PeftModel.from_pretrained(AutoModel.from_pretrained(<base>), folder)`` loads it;
- ``pooling_config.json``: sentence-transformers' ``Pooling`` config (mean of the token
  embeddings under the attention mask);
- ``head.safetensors`` and ``head_config.json``: the linear head as sentence-transformers'
  ``Dense`` module keeps it (``linear.weight``, ``linear.bias``; ``in_features``,
  ``out_features``, identity activation), its outputs in the order of the version's
  ``labels``;
- ``README.md``: PEFT's model card; ``driftloop.json``: what driftloop records besides.

A generation adapter is PEFT's own layout already; its config gains the hub id and
``task_type`` ``CAUSAL_LM``. :func:`to_portable` turns a folder PEFT saved into that form,
:func:`internal_layout` gives driftloop's loaders the in-memory form back (a folder saved by
an older driftloop, already in that form, is used as it is).

Examples
--------
>>> import tempfile, torch
>>> from safetensors.torch import save_file
>>> folder = Path(tempfile.mkdtemp())
>>> _ = (folder / "adapter_config.json").write_text(json.dumps(
...     {"r": 8, "lora_alpha": 16, "modules_to_save": ["head"], "task_type": None,
...      "base_model_name_or_path": None, "auto_mapping": {"base_model_class": "X"}}))
>>> save_file({"base_model.model.encoder.encoder.layer.0.q.lora_A.weight": torch.ones(8, 4),
...            "base_model.model.head.weight": torch.zeros(2, 4),
...            "base_model.model.head.bias": torch.zeros(2)},
...           str(folder / "adapter_model.safetensors"))
>>> to_portable(folder, TaskKind.CLASSIFICATION, "sentence-transformers/all-MiniLM-L6-v2")
>>> sorted(p.name for p in folder.iterdir())  # doctest: +NORMALIZE_WHITESPACE
['adapter_config.json', 'adapter_model.safetensors', 'head.safetensors',
 'head_config.json', 'pooling_config.json']
>>> json.loads((folder / "adapter_config.json").read_text())["task_type"]
'FEATURE_EXTRACTION'
>>> with internal_layout(folder) as inside:
...     json.loads((inside / "adapter_config.json").read_text())["modules_to_save"]
['head']
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ...schemas.enums import TaskKind
from ..errors import AdapterFormatError

__all__ = ["HEAD_CONFIG_FILE", "HEAD_WEIGHTS_FILE", "POOLING_CONFIG_FILE", "internal_adapter",
           "internal_layout", "is_portable_classifier", "to_internal", "to_portable"]

CONFIG_FILE = "adapter_config.json"
WEIGHTS_FILE = "adapter_model.safetensors"
HEAD_WEIGHTS_FILE = "head.safetensors"
HEAD_CONFIG_FILE = "head_config.json"
POOLING_CONFIG_FILE = "pooling_config.json"

PEFT_PREFIX = "base_model.model."
ENCODER = "encoder."  # MeanPoolClassifier's attribute holding the encoder
HEAD = "head."  # and its head (classification.HEAD_MODULE)
ST_WEIGHT_PREFIX = "linear."  # sentence-transformers' Dense keeps its nn.Linear as `linear`
IDENTITY = "torch.nn.modules.linear.Identity"


def to_portable(folder: Path, kind: TaskKind, base_model: str) -> None:
    """Rewrite, in place, a folder PEFT saved from driftloop's in-memory model into the
    portable form (see the module's docstring). ``base_model`` is the version's base model
    id, recorded as ``base_model_name_or_path``."""
    config = _read_config(folder)
    config["base_model_name_or_path"] = base_model
    config["auto_mapping"] = None  # names a driftloop class no other process has
    _card_names_base(folder / "README.md", base_model)
    if kind is not TaskKind.CLASSIFICATION:
        config["task_type"] = "CAUSAL_LM"
        _write_json(folder / CONFIG_FILE, config)
        return
    from safetensors.torch import load_file, save_file

    state = load_file(str(folder / WEIGHTS_FILE))
    lora: dict[str, Any] = {}
    head: dict[str, Any] = {}
    for key, tensor in state.items():
        inner = key.removeprefix(PEFT_PREFIX)
        if inner.startswith(HEAD):
            head[ST_WEIGHT_PREFIX + inner.removeprefix(HEAD)] = tensor.contiguous()
        elif inner.startswith(ENCODER) and key.startswith(PEFT_PREFIX):
            lora[PEFT_PREFIX + inner.removeprefix(ENCODER)] = tensor.contiguous()
        else:
            raise AdapterFormatError(f"{folder}: unexpected tensor {key!r} in a classifier")
    weight = head.get(f"{ST_WEIGHT_PREFIX}weight")
    if weight is None or weight.dim() != 2:
        raise AdapterFormatError(f"{folder}: the classifier's head weights are missing")
    out_features, in_features = (int(n) for n in weight.shape)
    save_file(lora, str(folder / WEIGHTS_FILE), metadata={"format": "pt"})
    save_file(head, str(folder / HEAD_WEIGHTS_FILE), metadata={"format": "pt"})
    config["task_type"] = "FEATURE_EXTRACTION"
    config["modules_to_save"] = None
    _write_json(folder / CONFIG_FILE, config)
    _write_json(folder / HEAD_CONFIG_FILE, {
        "in_features": in_features, "out_features": out_features,
        "bias": f"{ST_WEIGHT_PREFIX}bias" in head, "activation_function": IDENTITY})
    _write_json(folder / POOLING_CONFIG_FILE, {
        "word_embedding_dimension": in_features, "pooling_mode_cls_token": False,
        "pooling_mode_mean_tokens": True, "pooling_mode_max_tokens": False,
        "pooling_mode_mean_sqrt_len_tokens": False, "pooling_mode_weightedmean_tokens": False,
        "pooling_mode_lasttoken": False, "include_prompt": True})


def is_portable_classifier(folder: Path) -> bool:
    """Whether ``folder`` holds a classifier in the portable form (its head apart)."""
    return (folder / HEAD_WEIGHTS_FILE).is_file()


def to_internal(folder: Path) -> Path:
    """Rewrite, in place, a portable classifier into driftloop's in-memory form (a no-op for
    any other folder); return ``folder``. For a private copy, such as a store fetch."""
    if not is_portable_classifier(folder):
        return folder
    from safetensors.torch import save_file

    state, config = internal_adapter(folder)
    save_file(state, str(folder / WEIGHTS_FILE), metadata={"format": "pt"})
    _write_json(folder / CONFIG_FILE, config)
    for name in (HEAD_WEIGHTS_FILE, HEAD_CONFIG_FILE, POOLING_CONFIG_FILE):
        (folder / name).unlink()
    return folder


def internal_adapter(folder: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """A portable classifier's weights and ``adapter_config.json`` in driftloop's in-memory
    form (the head a module to save beside the LoRA weights), read without writing a file:
    what :func:`to_internal` writes, for a reader that only needs them in memory."""
    from safetensors.torch import load_file

    pooling = _read_json(folder / POOLING_CONFIG_FILE)
    if not pooling.get("pooling_mode_mean_tokens") or any(
            pooling.get(f"pooling_mode_{mode}") for mode in (
                "cls_token", "max_tokens", "mean_sqrt_len_tokens", "weightedmean_tokens",
                "lasttoken")):
        raise AdapterFormatError(f"{folder}: driftloop's classifier pools by the mean of the "
                                 f"tokens; {POOLING_CONFIG_FILE} asks for another pooling")
    state = {PEFT_PREFIX + ENCODER + key.removeprefix(PEFT_PREFIX): tensor
             for key, tensor in load_file(str(folder / WEIGHTS_FILE)).items()}
    for key, tensor in load_file(str(folder / HEAD_WEIGHTS_FILE)).items():
        if not key.startswith(ST_WEIGHT_PREFIX):
            raise AdapterFormatError(f"{folder}: unexpected tensor {key!r} in the head")
        state[PEFT_PREFIX + HEAD + key.removeprefix(ST_WEIGHT_PREFIX)] = tensor
    config = _read_config(folder)
    config.update(task_type=None, modules_to_save=[HEAD.rstrip(".")])
    return state, config


@contextlib.contextmanager
def internal_layout(folder: Path) -> Iterator[Path]:
    """``folder`` in driftloop's in-memory form: a temporary converted copy of a portable
    classifier (removed on exit), else the folder itself."""
    if not is_portable_classifier(folder):
        yield folder
        return
    with tempfile.TemporaryDirectory(prefix="driftloop-internal-") as tmp:
        copy = Path(tmp) / folder.name
        shutil.copytree(folder, copy)
        yield to_internal(copy)


def _card_names_base(card: Path, base_model: str) -> None:
    """Add ``base_model`` to the front matter of PEFT's model card when it has none (PEFT
    reads it from a model config that driftloop's classifier does not have)."""
    if not card.is_file():
        return
    text = card.read_text(encoding="utf-8")
    head, sep, rest = text.removeprefix("---\n").partition("\n---\n")
    if not text.startswith("---\n") or not sep or "base_model:" in head:
        return
    card.write_text(f"---\nbase_model: {json.dumps(base_model)}\n{head}{sep}{rest}",
                    encoding="utf-8")


def _read_config(folder: Path) -> dict[str, Any]:
    return _read_json(folder / CONFIG_FILE)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise AdapterFormatError(f"{path.parent} has no {path.name}") from None
    except ValueError as exc:
        raise AdapterFormatError(f"{path} is malformed: {exc}") from None
    if not isinstance(data, dict):
        raise AdapterFormatError(f"{path} is not a JSON object")
    return data


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
