"""A new domain's starting adapter from every known domain's: their average.

Each domain's head of a task trained (through its lineage) from the same kind of start on
its own domain; averaging their updates gives a point a short way from every domain seen so
far, which is what a Reptile outer step of size one computes from per-task fine-tunes
(Nichol et al., 2018, "On first-order meta-learning algorithms"). A new domain's first
adapter can start there instead of from the single nearest domain's head
(``[tasks.<name>] domain_start = "merge"``; see :mod:`.transfer`).

The average is the federated merge's (:func:`~driftloop.learner.federated.lora_merge.
merge_lora_states`): dense LoRA updates averaged exactly, then factorised back to the
adapters' rank; a classifier's head (saved whole) is averaged as a plain weight. Measured in
``driftloop bench quality --only meta-start`` (docs/strategies.md).
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path

from ..errors import FederationError
from ..federated.lora_merge import merge_lora_states
from ..models.adapters import ADAPTER_METADATA_FILE, ADAPTER_WEIGHTS_FILE
from ..models.portable import internal_layout
from ..topics.sites import LORA_CONFIG_FILE, read_lora_config

__all__ = ["merge_adapter_folders"]


def merge_adapter_folders(folders: Sequence[Path], staging: Path) -> Path:
    """The uniform average of the adapters at ``folders`` (same base model, LoRA shape and
    labels), written to ``staging`` in driftloop's in-memory layout (what its loaders read),
    with the first folder's ``driftloop.json``; return ``staging``.

    Raises :class:`FederationError` for fewer than two folders or adapters whose layouts
    differ.

    >>> merge_adapter_folders([Path("only-one")], Path("merged"))
    Traceback (most recent call last):
    ...
    driftloop.learner.errors.FederationError: a merge needs two adapters or more, got 1
    """
    from safetensors.torch import load_file, save_file

    if len(folders) < 2:
        raise FederationError(f"a merge needs two adapters or more, got {len(folders)}")
    with ExitStack() as stack:
        inside = [stack.enter_context(internal_layout(f)) for f in folders]
        config = read_lora_config(inside[0])
        states = [load_file(str(f / ADAPTER_WEIGHTS_FILE)) for f in inside]
        merged = merge_lora_states(states, [1] * len(states),
                                   scaling=float(config["lora_alpha"]) / int(config["r"]))
        del states
        staging.mkdir(parents=True)
        shutil.copy(inside[0] / LORA_CONFIG_FILE, staging / LORA_CONFIG_FILE)
        shutil.copy(folders[0] / ADAPTER_METADATA_FILE, staging / ADAPTER_METADATA_FILE)
    save_file(merged, str(staging / ADAPTER_WEIGHTS_FILE), metadata={"format": "pt"})
    return staging
