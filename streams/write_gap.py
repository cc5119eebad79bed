"""A test hook: spread a step's state records out in time, so a kill lands among them.

A step's records reach the producer within microseconds of each other, so a kill -9 at a
random moment almost never falls between two of them. With ``DRIFTLOOP_TEST_WRITE_GAP_S``
set (tests and ``bench faults`` only; never a setting), the worker's producer waits that long
after sending each record of the shared state table: a kill then cuts many steps' writes in
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


def install_write_gap(changelog_topic: Any) -> float:
    """Slow the sends of ``changelog_topic`` (a Faust topic) when the variable is set; the
    pause in seconds (0 when unset).

    Faust's producer buffer sends one record at a time through the record's topic
    (``publish_message``), so a pause there holds back every later record, in order.

    >>> import os
    >>> os.environ.pop(ENV, None), install_write_gap(object())
    (None, 0.0)
    """
    raw = os.environ.get(ENV, "")
    if not raw:
        return 0.0
    gap = float(raw)
    publish = changelog_topic.publish_message

    async def publish_slowly(fut: Any, wait: bool = False) -> Any:
        result = await publish(fut, wait=wait)
        await asyncio.sleep(gap)  # the hook itself: a wider window between records
        return result

    changelog_topic.publish_message = publish_slowly
    log.warning("test hook %s=%s: each state record is followed by a pause", ENV, raw)
    return gap
