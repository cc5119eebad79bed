"""The runnable examples in the docstrings of ``driftloop.learner`` stay true."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import driftloop.learner

MODULES = sorted(info.name for info in pkgutil.iter_modules(driftloop.learner.__path__)
                 if not info.ispkg)
# Modules whose public pieces need a broker or a trained model to show anything.
WITHOUT_EXAMPLES = {"__init__", "benchmark", "errors", "kafka_topics", "service", "update",
                    "version_topic"}


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name: str) -> None:
    module = importlib.import_module(f"driftloop.learner.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
    assert result.attempted > 0 or name in WITHOUT_EXAMPLES
