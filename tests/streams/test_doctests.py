"""The runnable examples in the docstrings of ``driftloop.streams`` stay true."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["active", "buffer", "commands", "detectors", "drift", "ingest", "join", "metrics",
           "pipeline", "quality", "state_codec",
           "triggers"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name: str) -> None:
    module = importlib.import_module(f"driftloop.streams.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
    assert result.attempted > 0
