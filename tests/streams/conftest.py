"""Fixtures of the stream tests: ``worker_factory`` starts real ``driftloop worker`` processes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from stream_helpers import WorkerProcess

from driftloop.schemas.settings import Settings


@pytest.fixture
def worker_factory(kafka_settings: Settings, tmp_path: Path
                   ) -> Iterator[Callable[..., WorkerProcess]]:
    started: list[WorkerProcess] = []

    def make(**env: str) -> WorkerProcess:
        data_dir = tmp_path / f"worker{len(started)}"  # each worker its own folder and log
        data_dir.mkdir()
        process = WorkerProcess(kafka_settings, data_dir, env)
        started.append(process)
        return process

    yield make
    for process in started:
        if process.proc is not None and process.proc.poll() is None:
            process.kill()
