"""The runnable examples in the docstrings of every driftloop package stay true.

Every module of every package is found and run; a module without examples must be named
below, with the reason, so a module that loses its examples (or a new one without any) is
noticed. A package's ``__init__`` only re-exports names and needs none.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

PACKAGES = ("driftloop.schemas", "driftloop.client", "driftloop.review", "driftloop.streams",
            "driftloop.learner", "driftloop.tools")

WITHOUT_EXAMPLES: set[str] = {
    # Plain enum values.
    "driftloop.schemas.enums",
    # The Faust app, its wiring and the process: shown by the broker tests instead.
    *(f"driftloop.streams.{name}" for name in ("agents", "app", "changelogs", "control",
                                               "errors", "worker")),
    # Need a broker or a trained model to show anything.
    "driftloop.client.kafka",
    "driftloop.learner.errors",
    "driftloop.learner.federated.round",
    "driftloop.learner.service",
    "driftloop.learner.serving.lora_api",
    "driftloop.learner.serving.probe",
    "driftloop.learner.topics.versions",
    "driftloop.learner.training.update",
    # Commands, benchmarks and Kafka I/O: run by tests/tools and the benches.
    "driftloop.tools.__main__",
    "driftloop.tools.cli",
    "driftloop.tools.errors",
    *(f"driftloop.tools.commands.{name}" for name in (
        "aggregate", "bench", "config", "demo", "kafka", "learner", "push", "report", "review",
        "serve",
        "status",
        "topics", "versions", "worker")),
    *(f"driftloop.tools.bench.{name}" for name in (
        "codec", "learner", "serve", "trainer_baseline", "worker", "quality.calibrate",
        "quality.embedding",
        "quality.run", "faults.deployment", "faults.scenarios")),
    # The demo's run, its first version and its judging: a broker, the children and
    # trained versions; tests/tools/demo (test_bootstrap, test_judge with a stand-in
    # scorer, test_demo end to end).
    *(f"driftloop.tools.demo.{name}" for name in ("bootstrap", "judge", "run")),
    "driftloop.tools.ops.report.page",
    "driftloop.tools.ops.report.reading",
    "driftloop.tools.ops.status",
}


def _modules() -> list[tuple[str, bool]]:
    """Every module below :data:`PACKAGES`, with whether it is a package."""
    found = []
    for top in PACKAGES:
        package = importlib.import_module(top)
        found.append((top, True))
        found.extend((info.name, info.ispkg)
                     for info in pkgutil.walk_packages(package.__path__, f"{top}."))
    return sorted(found)


MODULES = _modules()
CASES = [name for name, is_package in MODULES if not is_package]


def test_every_exempt_module_exists() -> None:
    assert WITHOUT_EXAMPLES <= set(CASES)


def test_the_modules_with_examples_are_found() -> None:
    assert {"driftloop.schemas.codec", "driftloop.streams.buffer",
            "driftloop.learner.registry.version_log", "driftloop.learner.serving.subscriber",
            "driftloop.tools.ops.replay"} <= set(CASES)


@pytest.mark.parametrize("name", [name for name, _ in MODULES])
def test_docstring_examples_run(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
    assert result.attempted > 0 or name in WITHOUT_EXAMPLES or name not in CASES
