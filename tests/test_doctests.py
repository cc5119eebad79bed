"""The runnable examples in the docstrings of every driftloop package stay true.

Every module is found and run; a module without examples must be named below, with the
reason, so a module that loses its examples (or a new one without any) is noticed.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

WITHOUT_EXAMPLES: dict[str, set[str]] = {
    # Plain enum values.
    "driftloop.schemas": {"enums"},
    # The Faust app, its wiring and the process: shown by the broker tests instead.
    "driftloop.streams": {"agents", "app", "calibrate", "changelogs", "control", "errors",
                          "worker"},
    # Need a broker or a trained model to show anything.
    "driftloop.learner": {"benchmark", "errors", "federated_round", "kafka_topics", "service",
                          "update", "version_topic"},
    "driftloop.learner.serving": {"probe"},
    # Commands, benchmarks and Kafka I/O: run by tests/tools and the benches.
    "driftloop.tools": {"__main__", "aggregate_cmd", "bench_cmd", "bench_codec", "bench_learner",
                        "bench_serve",
                        "bench_worker", "cli", "config_cmd", "demo_cmd", "demo_run", "errors",
                        "kafka_cmd", "learner_cmd", "report_cmd", "report_html", "serve_cmd",
                        "status", "status_cmd", "topic_reader", "topics_cmd", "versions_cmd",
                        "worker_cmd", "bench_quality"},
}


def modules(package: str) -> list[str]:
    found = importlib.import_module(package).__path__
    return sorted(info.name for info in pkgutil.iter_modules(found) if not info.ispkg)


CASES = [(package, name) for package in WITHOUT_EXAMPLES for name in modules(package)]


@pytest.mark.parametrize("package", sorted(WITHOUT_EXAMPLES))
def test_every_exempt_module_exists(package: str) -> None:
    assert WITHOUT_EXAMPLES[package] <= set(modules(package))


def test_the_modules_with_examples_are_found() -> None:
    names = {f"{package}.{name}" for package, name in CASES}
    assert {"driftloop.schemas.codec", "driftloop.streams.buffer", "driftloop.learner.registry",
            "driftloop.learner.serving.subscriber", "driftloop.tools.replay"} <= names


@pytest.mark.parametrize(("package", "name"), CASES, ids=lambda value: str(value))
def test_docstring_examples_run(package: str, name: str) -> None:
    module = importlib.import_module(f"{package}.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
    assert result.attempted > 0 or name in WITHOUT_EXAMPLES[package]
