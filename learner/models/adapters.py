"""LoRA adapter hyperparameters and the adapter folder layout driftloop writes.

A folder is PEFT's standard layout (``adapter_config.json``, ``adapter_model.safetensors``,
written by ``save_pretrained`` with safetensors only, and PEFT's model card ``README.md``) in
the portable form of :mod:`.portable` (a classifier's head and pooling beside the encoder's
adapter), plus ``driftloop.json``: what driftloop records besides the weights (task kind,
class labels, prompt template). A PEFT process ignores that file and loads the adapter.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Collection
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ...schemas.enums import TaskKind
from ..errors import AdapterFormatError

__all__ = ["ADAPTER_METADATA_FILE", "ADAPTER_WEIGHTS_FILE", "PICKLE_SUFFIXES",
           "PROMPT_TEMPLATE_FILE", "AdapterMetadata", "LoraSpec", "check_filled",
           "check_safetensors_only", "load_peft_model", "read_metadata", "save_adapter",
           "save_on_parent_weights", "trainable_peft_model", "write_prompt_template"]

ADAPTER_METADATA_FILE = "driftloop.json"
ADAPTER_WEIGHTS_FILE = "adapter_model.safetensors"
PROMPT_TEMPLATE_FILE = "prompt_template.json"
# torch.save / pickle formats: loading one runs whatever code its author put in it.
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".joblib")


@dataclass(frozen=True, slots=True)
class LoraSpec:
    """LoRA rank, scaling, dropout and the module names it wraps.

    Examples
    --------
    >>> LoraSpec(r=8, alpha=16).scaling
    2.0
    >>> LoraSpec(r=0)
    Traceback (most recent call last):
    ...
    ValueError: r must be >= 1, got 0
    """

    r: int = 8
    alpha: int = 16
    dropout: float = 0.1
    target_modules: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.r < 1:
            raise ValueError(f"r must be >= 1, got {self.r}")
        if self.alpha <= 0:
            raise ValueError(f"alpha must be > 0, got {self.alpha}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")

    @property
    def scaling(self) -> float:
        return self.alpha / self.r


@dataclass(frozen=True, slots=True)
class AdapterMetadata:
    """What ``driftloop.json`` records next to the weights."""

    task_kind: TaskKind
    base_model: str
    version_id: str
    labels: tuple[str, ...] = ()
    prompt_template_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        data = asdict(self)
        data["task_kind"] = self.task_kind.value
        data["labels"] = list(self.labels)
        return json.dumps(data, sort_keys=True, indent=1)


def save_adapter(model: Any, folder: Path, metadata: AdapterMetadata) -> Path:
    """Write a PEFT model's adapter (safetensors only, in the portable form of
    :mod:`.portable`), PEFT's model card and ``driftloop.json`` into ``folder``."""
    from .portable import to_portable

    folder.mkdir(parents=True, exist_ok=True)
    configs = list(getattr(model, "peft_config", {}).values())
    named = [(config.base_model_name_or_path, config.revision) for config in configs]
    revision = _hub_revision(model)
    for config in configs:  # the model card and the config name the base model's id
        config.base_model_name_or_path = metadata.base_model
        config.revision = revision or config.revision
    try:
        # Embeddings are never trained here; "auto" would look for the base model's
        # config.json (absent beside a GGUF file) to decide whether to copy them.
        model.save_pretrained(str(folder), safe_serialization=True,
                              save_embedding_layers=False)
    finally:
        for config, (name, rev) in zip(configs, named, strict=True):
            config.base_model_name_or_path, config.revision = name, rev
    to_portable(folder, metadata.task_kind, metadata.base_model)
    if metadata.task_kind is TaskKind.GENERATION:
        write_prompt_template(folder, metadata.prompt_template_id)
    (folder / ADAPTER_METADATA_FILE).write_text(metadata.to_json(), encoding="utf-8")
    return folder


def _hub_revision(model: Any) -> str | None:
    """The hub commit the base model's weights were downloaded at (None for weights that
    came from a package or a local folder: transformers records none for them)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    encoder = getattr(base, "encoder", base)  # the classifier keeps its encoder apart
    for module in (base, encoder):
        commit = getattr(getattr(module, "config", None), "_commit_hash", None)
        if isinstance(commit, str) and commit:
            return commit
    return None


def save_on_parent_weights(parent: Path, folder: Path, metadata: AdapterMetadata, *,
                           replaced: Collection[str], write: Callable[[Path], object]) -> Path:
    """A candidate that serves its parent's weights untouched (a retrieval bank, a prompt
    policy): the parent's files but its metadata and ``replaced``, then ``write(folder)``
    adds the candidate's own, then ``metadata``.

    >>> import tempfile
    >>> parent, folder = Path(tempfile.mkdtemp()), Path(tempfile.mkdtemp()) / "c"
    >>> for name in ("adapter_model.safetensors", "bank.safetensors", ADAPTER_METADATA_FILE):
    ...     _ = (parent / name).write_text(name)
    >>> meta = AdapterMetadata(TaskKind.CLASSIFICATION, "m", "c", ("a", "b"))
    >>> _ = save_on_parent_weights(parent, folder, meta, replaced=("bank.safetensors",),
    ...                            write=lambda f: (f / "bank.safetensors").write_text("new"))
    >>> sorted(p.name for p in folder.iterdir()), (folder / "bank.safetensors").read_text()
    (['adapter_model.safetensors', 'bank.safetensors', 'driftloop.json'], 'new')
    >>> read_metadata(folder).version_id
    'c'
    """
    folder.mkdir(parents=True, exist_ok=True)
    for path in parent.iterdir():
        if path.is_file() and path.name != ADAPTER_METADATA_FILE and path.name not in replaced:
            shutil.copy2(path, folder / path.name)
    write(folder)
    (folder / ADAPTER_METADATA_FILE).write_text(metadata.to_json(), encoding="utf-8")
    return folder


def write_prompt_template(folder: Path, ref: str | None) -> None:
    """Write the prompt template a generation adapter was trained under into
    ``prompt_template.json``: a server without driftloop renders its prompts from it
    (the user message is ``instruction``, a blank line, then ``input_format`` with the input
    in place of ``{input}``, under the tokenizer's chat template)."""
    from .prompts import get_template

    template = get_template(ref)
    record = {"id": template.id, "version": template.version, "ref": template.ref,
              "instruction": template.instruction, "input_format": template.input_format,
              "choices": list(template.choices), "sha256": template.sha256}
    (folder / PROMPT_TEMPLATE_FILE).write_text(json.dumps(record, indent=2, sort_keys=True)
                                               + "\n", encoding="utf-8")


def check_safetensors_only(folder: Path) -> None:
    """Refuse an adapter folder that holds pickled weights or lacks safetensors weights.

    PEFT falls back to ``adapter_model.bin`` (``torch.load``, a pickle) when the safetensors
    file is missing; driftloop never lets it get that far.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     _ = (Path(tmp) / "adapter_model.bin").write_bytes(b"pickle")
    ...     check_safetensors_only(Path(tmp))
    Traceback (most recent call last):
    ...
    driftloop.learner.errors.AdapterFormatError: adapter_model.bin: pickled weights are ...
    """
    if not folder.is_dir():
        raise AdapterFormatError(f"{folder} is not a folder")
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() in PICKLE_SUFFIXES:
            raise AdapterFormatError(f"{path.name}: pickled weights are never loaded (code "
                                     "could run); only safetensors are")
    weights = folder / ADAPTER_WEIGHTS_FILE
    if weights.is_symlink() or not weights.is_file():
        raise AdapterFormatError(f"{folder} has no {ADAPTER_WEIGHTS_FILE} (only safetensors "
                                 "weights are loaded)")


def read_metadata(folder: Path) -> AdapterMetadata:
    """Read ``driftloop.json`` from an adapter folder (refusing anything malformed).

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     meta = AdapterMetadata(TaskKind.CLASSIFICATION, "m", "v1", ("neg", "pos"))
    ...     _ = (Path(tmp) / ADAPTER_METADATA_FILE).write_text(meta.to_json())
    ...     read_metadata(Path(tmp)).labels
    ('neg', 'pos')
    """
    path = folder / ADAPTER_METADATA_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return AdapterMetadata(
            task_kind=TaskKind(data["task_kind"]),
            base_model=str(data["base_model"]),
            version_id=str(data["version_id"]),
            labels=tuple(str(label) for label in data.get("labels", ())),
            prompt_template_id=data.get("prompt_template_id"),
            extra=dict(data.get("extra", {})),
        )
    except FileNotFoundError:
        raise AdapterFormatError(f"{folder} has no {ADAPTER_METADATA_FILE}") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise AdapterFormatError(f"{path} is malformed: {exc}") from None


def check_filled(model: Any, folder: Path, adapter_name: str = "default") -> None:
    """Refuse an adapter that PEFT loaded into ``model`` without filling every weight.

    PEFT only warns when a folder's keys do not match the model (and says nothing about a
    head kept in ``modules_to_save``): a stored classifier loaded onto the in-memory class
    keeps a random head and answers at chance. This compares the weights file's keys with
    those ``adapter_name`` holds, reading only the file's header.
    """
    from peft import get_peft_model_state_dict
    from safetensors import safe_open

    with safe_open(str(folder / ADAPTER_WEIGHTS_FILE), framework="pt") as handle:
        stored = set(handle.keys())
    held = set(get_peft_model_state_dict(model, adapter_name=adapter_name))
    if stored == held:
        return
    missing, unused = sorted(held - stored), sorted(stored - held)
    raise AdapterFormatError(
        f"{folder} does not fit the model it was loaded into: {len(missing)} of its "
        f"{len(held)} adapter weights missing (first: {missing[:1]}), {len(unused)} stored "
        f"weights unused (first: {unused[:1]}); is it another base model's or layout's adapter?")


def load_peft_model(model: Any, folder: Path, *, adapter_name: str = "default",
                    is_trainable: bool = False) -> Any:
    """PEFT's ``PeftModel.from_pretrained`` of the adapter in ``folder`` (in-memory form),
    refusing one that does not fill the model (:func:`check_filled`)."""
    from peft import PeftModel

    peft_model = PeftModel.from_pretrained(model, str(folder), adapter_name=adapter_name,
                                           is_trainable=is_trainable)
    check_filled(peft_model, folder, adapter_name)
    return peft_model


def trainable_peft_model(model: Any, config: Any, parent_dir: Path | None) -> Any:
    """``model`` with a trainable adapter: a fresh one from PEFT ``config``, or the parent's
    adapter (at ``parent_dir``, stored form or in-memory form) loaded to continue training."""
    from peft import get_peft_model

    from .portable import internal_layout

    if parent_dir is None:
        return get_peft_model(model, config)
    with internal_layout(parent_dir) as folder:
        return load_peft_model(model, folder, is_trainable=True)
