"""Run the worker: build the app, wire the agents, hand the process to Faust's worker.

Faust's worker installs SIGINT/SIGTERM handlers that stop the agents, let the current step
finish, flush the producer and commit what was processed; ``kill -9`` loses only steps whose
offsets were not committed, and those are processed again (see :mod:`.agents`).
"""

from __future__ import annotations

import asyncio
import logging

import faust

from ..schemas.settings import Settings
from .agents import WorkerRuntime, wire
from .app import build_app
from .changelogs import ensure_changelogs

__all__ = ["build_worker", "run_worker"]


def build_worker(settings: Settings) -> tuple[faust.App, WorkerRuntime]:
    app = build_app(settings)
    return app, wire(app, settings)


def run_worker(settings: Settings, *, loglevel: str = "WARNING") -> None:
    """Run until stopped by a signal; returns after a graceful stop."""
    app, runtime = build_worker(settings)
    asyncio.run(ensure_changelogs(settings, runtime.tables()))
    worker = faust.Worker(app, loglevel=loglevel, quiet=True, redirect_stdouts=False,
                          override_logging=False)
    logging.getLogger("faust").setLevel(loglevel)
    worker.execute_from_commandline()
