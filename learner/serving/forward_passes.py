"""Requests that wait for a forward pass go through the next one together.

On a CPU, one pass over 16 short texts costs little more than a pass over one, so requests
that arrive while a pass runs wait in a :class:`ForwardPassQueue` and share the next pass
of their task and version (up to ``max_batch`` texts): throughput grows with concurrency
instead of queueing. Each request gets back its own answers, in its own order.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["ForwardPassQueue"]

Answer = TypeVar("Answer")


Follow = Callable[[], str | None]
"""Names the version serving a task when the pass runs (see :meth:`ForwardPassQueue.submit`)."""


@dataclass(slots=True)
class _Waiting(Generic[Answer]):
    task: str
    version_id: str
    texts: list[str]
    future: asyncio.Future[list[Answer]]
    follow: Follow | None = None


class ForwardPassQueue(Generic[Answer]):
    """Groups waiting requests into one pass per task and version.

    Parameters
    ----------
    run
        One forward pass: ``await run(task, version_id, texts)`` returns one answer per
        text, in order.
    max_batch
        The most texts in one pass (a larger request still goes alone).

    Examples
    --------
    >>> import asyncio
    >>> passes = []
    >>> async def run(task, version_id, texts):
    ...     passes.append(len(texts))
    ...     return [text.upper() for text in texts]
    >>> queue = ForwardPassQueue(run, max_batch=8)
    >>> async def three_clients():
    ...     return await asyncio.gather(queue.submit("t", "v1", ["a"]),
    ...                                 queue.submit("t", "v1", ["b", "c"]),
    ...                                 queue.submit("t", "v1", ["d"]))
    >>> asyncio.run(three_clients()), passes, queue.batches
    ([['A'], ['B', 'C'], ['D']], [4], 1)
    """

    def __init__(self, run: Callable[..., Awaitable[list[Answer]]], *,
                 max_batch: int) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        self.run = run
        self.max_batch = max_batch
        self.batches = 0
        """Forward passes run so far."""
        self._waiting: list[_Waiting[Answer]] = []
        self._drainer: asyncio.Task[None] | None = None

    async def submit(self, task: str, version_id: str, texts: Sequence[str], *,
                     follow: Follow | None = None) -> list[Answer]:
        """The answers to ``texts``, from the next pass of ``task`` and ``version_id``.

        A request routed to the version serving its task may pass ``follow``: its pass then
        runs with ``follow``'s answer at the moment it runs (``run`` gets it as a fourth
        argument), so a request that waited through a swap is answered by the new version.
        """
        future: asyncio.Future[list[Answer]] = asyncio.get_running_loop().create_future()
        self._waiting.append(_Waiting(task, version_id, list(texts), future, follow))
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        while self._waiting:
            group = self._next_group()
            first = group[0]
            texts = [text for item in group for text in item.texts]
            try:
                answers = await (self.run(first.task, first.version_id, texts)
                                 if first.follow is None else
                                 self.run(first.task, first.version_id, texts, first.follow))
            except Exception as exc:
                for item in group:
                    if not item.future.done():
                        item.future.set_exception(exc)
                continue
            self.batches += 1
            start = 0
            for item in group:
                if not item.future.done():  # the client may have gone away meanwhile
                    item.future.set_result(answers[start:start + len(item.texts)])
                start += len(item.texts)

    def _next_group(self) -> list[_Waiting[Answer]]:
        """Take the oldest request and those of its task and version that fit beside it."""
        def key_of(item: _Waiting[Answer]) -> tuple[str, str, bool]:
            return item.task, item.version_id, item.follow is not None

        key = key_of(self._waiting[0])
        group: list[_Waiting[Answer]] = []
        size = 0
        for item in self._waiting:
            if key_of(item) == key and (
                    not group or size + len(item.texts) <= self.max_batch):
                group.append(item)
                size += len(item.texts)
        chosen = {id(item) for item in group}
        self._waiting = [item for item in self._waiting if id(item) not in chosen]
        return group
