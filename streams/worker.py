"""Run the worker: build the app, wire the agents, hand the process to Faust's worker.

Faust's worker installs SIGINT/SIGTERM handlers that stop the agents, let the current step
finish, flush the producer and commit what was processed; ``kill -9`` loses only steps whose
offsets were not committed, and those are processed again (see :mod:`.step`).
"""

from __future__ import annotations

import asyncio
import gc
import logging

import faust

from ..schemas.settings import Settings
from .agents import WorkerParts, wire
from .app import build_app
from .changelogs import ensure_changelogs

__all__ = ["build_worker", "run_worker", "tune_gc"]


def build_worker(settings: Settings) -> tuple[faust.App, WorkerParts]:
    app = build_app(settings)
    return app, wire(app, settings)


def tune_gc(threshold: int) -> tuple[int, int, int]:
    """Collect young objects every ``threshold`` allocations and freeze what exists now.

    Each decoded event allocates dozens of short-lived objects (pydantic models, dicts,
    floats) that reference counting frees; at CPython's default threshold (700) the young
    generation is scanned every few events, and each older collection also walks the
    imported libraries and the tables. Freezing moves everything alive at start-up (modules,
    Faust, River, pydantic) out of the collector's sight for good. Returns the thresholds
    in force. ``threshold == 0`` keeps the interpreter's own.

    >>> before = gc.get_threshold()
    >>> tune_gc(0) == before
    True
    """
    if threshold > 0:
        gc.collect()
        gc.freeze()
        _, older, oldest = gc.get_threshold()
        gc.set_threshold(threshold, older, oldest)
    return gc.get_threshold()


def run_worker(settings: Settings, *, loglevel: str = "WARNING") -> None:
    """Run until stopped by a signal; returns after a graceful stop."""
    app, parts = build_worker(settings)
    asyncio.run(ensure_changelogs(settings, parts.tables.all()))
    tune_gc(settings.worker.gc_threshold)
    worker = faust.Worker(app, loglevel=loglevel, quiet=True, redirect_stdouts=False,
                          override_logging=False)
    logging.getLogger("faust").setLevel(loglevel)
    worker.execute_from_commandline()
