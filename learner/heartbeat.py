"""A heartbeat file, so an orchestrator can tell a live learner from a stuck one.

The learner's event loop writes ``{"ts": ..., "pid": ..., "handled": ...}`` to the file every
few seconds (training runs in a worker thread, so the loop keeps beating through a long
update); ``driftloop learner health`` fails when the file is older than a bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable
from pathlib import Path

import orjson

__all__ = ["HEARTBEAT_FILE", "Heartbeat", "read_heartbeat"]

HEARTBEAT_FILE = "heartbeat.json"


class Heartbeat:
    """Writes the heartbeat file every ``every_s`` seconds while running.

    Examples
    --------
    >>> import asyncio, tempfile
    >>> from pathlib import Path
    >>> path = Path(tempfile.mkdtemp()) / "heartbeat.json"
    >>> async def beat_once():
    ...     async with Heartbeat(path, every_s=0.01, status=lambda: {"handled": 3}):
    ...         await asyncio.sleep(0.05)
    >>> asyncio.run(beat_once())
    >>> read_heartbeat(path)["handled"]
    3
    """

    def __init__(self, path: Path, *, every_s: float = 5.0,
                 status: Callable[[], dict[str, object]] | None = None) -> None:
        if every_s <= 0:
            raise ValueError(f"every_s must be positive, got {every_s}")
        self.path = path
        self.every_s = every_s
        self.status = status
        self._task: asyncio.Task[None] | None = None

    def beat(self) -> None:
        """Write the file once (atomically: a reader never sees half of it)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = {"ts": time.time(), "pid": os.getpid(), **(self.status() if self.status else {})}
        tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(orjson.dumps(data))
        tmp.replace(self.path)

    async def _run(self) -> None:
        while True:
            self.beat()
            await asyncio.sleep(self.every_s)

    async def __aenter__(self) -> Heartbeat:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


def read_heartbeat(path: Path) -> dict[str, object] | None:
    """The last heartbeat written to ``path``, or None if there is none (or it is unreadable)."""
    try:
        data = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("ts"), int | float) else None
