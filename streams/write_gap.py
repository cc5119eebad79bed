"""A test hook: spread a step's state records out in time, so a kill lands among them.

A step's records reach the producer within microseconds of each other, so a kill -9 at a
random moment almost never falls between two of them. With ``DRIFTLOOP_TEST_WRITE_GAP_S``
set (tests and ``bench faults`` only; never a setting), the worker's producer waits that long
after sending each record of the shared state table: a kill then cuts most steps' writes in
the middle, the case :mod:`~driftloop.streams.redo` exists for.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

__all__ = ["ENV", "install_write_gap"]

ENV = "DRIFTLOOP_TEST_WRITE_GAP_S"

log = logging.getLogger(__name__)


def install_write_gap(app: Any, changelog_topic: str) -> float:
    """Wrap the producer buffer of ``app`` when the variable is set; the gap in seconds.

    >>> import os
    >>> os.environ.pop(ENV, None), install_write_gap(object(), "worker-state-changelog")
    (None, 0.0)
    """
    raw = os.environ.get(ENV, "")
    if not raw:
        return 0.0
    gap = float(raw)
    buffer = app.producer.buffer
    send = buffer._send_pending

    async def send_slowly(fut: Any) -> None:
        await send(fut)
        if fut.message.channel.get_topic_name() == changelog_topic:
            await asyncio.sleep(gap)  # the hook itself: a wider window between records

    buffer._send_pending = send_slowly
    log.warning("test hook %s=%s: each state record is followed by a pause", ENV, raw)
    return gap
