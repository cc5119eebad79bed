"""The runnable examples in the docstrings of ``driftloop.learner.serving`` stay true."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import driftloop.learner.serving

MODULES = sorted(info.name for info in pkgutil.iter_modules(driftloop.learner.serving.__path__))
# Modules whose public functions need a broker or a base model to show anything.
WITHOUT_EXAMPLES = {"probe"}


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name: str) -> None:
    module = importlib.import_module(f"driftloop.learner.serving.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
    assert result.attempted > 0 or name in WITHOUT_EXAMPLES
