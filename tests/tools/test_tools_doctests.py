"""The runnable examples in the docstrings of ``driftloop.tools`` stay true.

Every module whose source holds an example is found, so a new module cannot be forgotten.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil
from pathlib import Path

import pytest

import driftloop.tools as tools

MODULES = sorted(
    info.name for info in pkgutil.iter_modules(tools.__path__)
    if ">>>" in (Path(tools.__path__[0]) / f"{info.name}.py").read_text(encoding="utf-8")
)


def test_the_modules_with_examples_are_found() -> None:
    assert {"replay", "report_data", "lazy_group", "local_kafka", "demo_traffic"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name: str) -> None:
    module = importlib.import_module(f"driftloop.tools.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
    assert result.attempted > 0
