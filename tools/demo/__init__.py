"""``driftloop demo``: the whole loop on the VADER stream, with a verdict against a static model.

The run (:mod:`.run`), its traffic and simulated people (:mod:`.traffic`), its child
processes, the progress line, the verdict, and the VADER loader (:mod:`.vader`).
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["DemoProfile", "DemoResult", "Verdict", "read_domain", "run_demo"]

# Re-exported lazily: the verdict loads torch, the command line should not.
_LAZY = {"DemoProfile": "run", "DemoResult": "run", "run_demo": "run", "Verdict": "verdict",
         "read_domain": "vader"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
