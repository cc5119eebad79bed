"""Lazy re-exports for package ``__init__`` modules (PEP 562).

The learner's packages export their main names, but importing one must not load torch
until a name that needs it is used: ``driftloop --help`` and ``driftloop status`` import
``driftloop.learner`` and stay fast.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(package: str, names: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` that imports ``names[name]`` (a submodule of ``package``)
    the first time ``name`` is asked for.

    >>> getattr_ = lazy_exports("driftloop.learner", {"LearnerError": "errors"})
    >>> getattr_("LearnerError").__name__
    'LearnerError'
    >>> getattr_("Nope")
    Traceback (most recent call last):
    ...
    AttributeError: module 'driftloop.learner' has no attribute 'Nope'
    """

    def __getattr__(name: str) -> Any:
        if name in names:
            return getattr(importlib.import_module(f".{names[name]}", package), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
