"""The runnable examples in the docstrings of ``driftloop.schemas`` stay true.

Named apart from ``tests/streams/test_doctests.py``: test files share one module namespace.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import driftloop.schemas

MODULES = sorted(info.name for info in pkgutil.iter_modules(driftloop.schemas.__path__))
# Modules whose public names carry no example of their own (the enums are plain values).
WITHOUT_EXAMPLES = {"enums"}


def test_every_module_is_listed() -> None:
    assert {"codec", "contracts", "events", "fields", "reasons", "settings"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name: str) -> None:
    module = importlib.import_module(f"driftloop.schemas.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
    assert result.attempted > 0 or name in WITHOUT_EXAMPLES
