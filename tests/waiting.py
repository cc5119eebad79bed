"""Waiting in tests: poll a condition until it holds, with a deadline, never a fixed sleep.

Import from tests as ``from waiting import wait_until`` (pytest puts the ``tests`` folder on
``sys.path`` because ``tests/conftest.py`` lives there). :func:`wait_until` blocks (for plain
tests and threads); :func:`wait_until_async` awaits, and its condition may be a coroutine
function. Both return the condition's first truthy value, so a condition can hand back what it
found. At the deadline they raise :class:`WaitTimeout` naming ``what`` and what was last seen.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

__all__ = ["WaitTimeout", "wait_until", "wait_until_async"]

T = TypeVar("T")


class WaitTimeout(AssertionError, TimeoutError):
    """A condition did not hold by its deadline.

    An :class:`AssertionError`, so pytest reports it as a failed check; a
    :class:`TimeoutError` too, for helpers whose callers expect that (``consume_until``).
    """


def _timeout(what: str, timeout: float, last: object, seen: Callable[[], object] | None
             ) -> WaitTimeout:
    detail = seen() if seen is not None else f"last seen: {last!r}"
    return WaitTimeout(f"{what} not met after {timeout:.1f} s ({detail})")


def wait_until(condition: Callable[[], T], timeout: float, what: str, *,
               interval: float = 0.2, seen: Callable[[], object] | None = None) -> T:
    """Call ``condition`` until it returns something truthy and return that; fail at the deadline.

    ``what`` names the condition (``"the worker ready"``); ``seen`` describes the state for the
    failure message (default: the condition's last value). ``interval`` is the poll period.
    An exception from ``condition`` propagates: raise one there to stop waiting early (a
    process that died).
    """
    deadline = time.monotonic() + timeout
    while True:
        last = condition()
        if last:
            return last
        if time.monotonic() > deadline:
            raise _timeout(what, timeout, last, seen)
        time.sleep(interval)  # the poll period of a condition wait with a deadline


async def wait_until_async(condition: Callable[[], T | Awaitable[T]], timeout: float, what: str,
                           *, interval: float = 0.2, seen: Callable[[], object] | None = None
                           ) -> T:
    """:func:`wait_until` for async tests: ``condition`` may return an awaitable.

    ``interval=0`` suits a condition that itself blocks for a while (a consumer's
    ``getmany(timeout_ms=...)``).
    """
    deadline = time.monotonic() + timeout
    while True:
        last = condition()
        if inspect.isawaitable(last):
            last = await last
        if last:
            return last
        if time.monotonic() > deadline:
            raise _timeout(what, timeout, last, seen)
        await asyncio.sleep(interval)  # the poll period of a condition wait with a deadline
