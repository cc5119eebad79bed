"""The runnable examples in the docstrings of ``driftloop.tools`` stay true."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["kafka_jars", "kafka_probe", "local_kafka", "topics", "demo_processes", "demo_progress",
           "demo_traffic", "demo_verdict"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name: str) -> None:
    module = importlib.import_module(f"driftloop.tools.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
    assert result.attempted > 0
