"""The label requests waiting for a person, and the answers not yet published.

:class:`ReviewQueue` is the review page's state, without any I/O: the Kafka side
(:mod:`.desk`) feeds it requests and what the ``feedback`` topic says was answered, and
publishes what it hands back as due.

- Per task, requests are offered by priority, highest first, then oldest (request ``ts``).
- One entry per interaction: a second request for an interaction still waiting merges into
  the first (the higher priority one is kept, the other is *superseded*); a request for an
  interaction already answered is not offered at all.
- An answer is **held** for ``undo_window_s`` seconds before it is due for publishing, and
  :meth:`ReviewQueue.undo` takes a held answer back (the request is offered again). Once an
  answer has been handed out for publishing it stands: undo then publishes nothing and says
  so (:class:`NothingToUndo`). That is the whole correction story: a short window in which a
  slip costs nothing, rather than a second, revised label on the topic that every consumer of
  ``feedback`` would have to reconcile.
- :meth:`ReviewQueue.settled` tells the desk which requests it may commit the offsets of:
  those answered and published, superseded, or not offered because their interaction was
  answered. A held answer is not settled: a desk that dies in the window offers the request
  again after a restart instead of losing it.
"""

from __future__ import annotations

import math
import operator
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ..schemas.events import Feedback, Interaction, LabelRequest
from ..schemas.settings import Settings
from .answers import AlreadyAnswered, ReviewError, UnknownRequest, review_feedback

__all__ = ["HeldAnswer", "Neighbour", "NothingToUndo", "ReviewQueue", "TaskCounts"]

_Unit = tuple[float, ...] | None  # an embedding scaled to length 1 (None: none, or all zero)


class NothingToUndo(ReviewError):
    """The reviewer has no answer still held: nothing answered yet, or the last answer was
    published already (it stands; nothing is published by the undo)."""

    status = 409


@dataclass(frozen=True, slots=True)
class HeldAnswer:
    """An accepted answer, waiting for its undo window to pass (``due``, on the queue's
    clock) before it is published."""

    feedback: Feedback
    request: LabelRequest
    reviewer: str
    due: float


@dataclass(frozen=True, slots=True)
class Neighbour:
    """A request of the same task whose interaction is close by embedding cosine;
    ``label`` is the answer it got, None while it waits."""

    request_id: str
    text: str
    label: str | None
    similarity: float


@dataclass(frozen=True, slots=True)
class TaskCounts:
    """Requests of one task: waiting, answered but still undoable, answered for good."""

    pending: int = 0
    held: int = 0
    answered: int = 0


class ReviewQueue:
    """Pending label requests by task and priority, held answers, what is settled.

    Parameters
    ----------
    settings
        The tasks (their labels decide which answers are valid) and the ``[review]`` defaults.
    undo_window_s
        Seconds an answer is held (and undoable) before it is due; default
        ``review.undo_window_s``.
    memory
        Answered requests kept per task to show as neighbours; default ``review.memory``.
    clock
        Monotonic seconds (a test passes its own).

    Neighbours come from what this queue has seen: the other requests waiting and the ones
    answered here (up to ``memory`` per task). The worker's replay buffer, which knows every
    labelled example, lives in the Faust worker's tables and is not read here; an answer
    learnt from the ``feedback`` topic carries no embedding, so it is no neighbour either.

    Examples
    --------
    >>> from driftloop.schemas import Interaction
    >>> def request(n, priority, embedding=None):
    ...     seen = Interaction(id=f"i{n}", ts=n, task="t", model_version="v1",
    ...                        input=f"text {n}", embedding=embedding,
    ...                        scores={"probabilities": {"neg": 0.5, "pos": 0.5}})
    ...     return LabelRequest(id=f"lr-i{n}", ts=n, task="t", interaction=seen,
    ...                         reason="margin", priority=priority)
    >>> now = [0.0]
    >>> queue = ReviewQueue(Settings(), undo_window_s=10, clock=lambda: now[0])
    >>> [queue.offer(r) for r in (request(1, 0.2, [1, 0]), request(2, 0.9, [0.9, 0.1]),
    ...                           request(3, 0.9, [0, 1]))]
    [True, True, True]
    >>> [r.id for r in queue.pending("t")]  # highest priority first, then oldest
    ['lr-i2', 'lr-i3', 'lr-i1']
    >>> queue.answer("lr-i2", "pos", reviewer="ann").id
    'lr-i2.review'
    >>> queue.answer("lr-i2", "neg", reviewer="bob")
    Traceback (most recent call last):
    ...
    driftloop.review.answers.AlreadyAnswered: 'lr-i2' was answered already (by ann)
    >>> [(n.request_id, n.label, round(n.similarity, 2)) for n in queue.neighbours("lr-i1", 2)]
    [('lr-i2', 'pos', 0.99), ('lr-i3', None, 0.0)]
    >>> queue.undo("ann").id, queue.counts()["t"]
    ('lr-i2', TaskCounts(pending=3, held=0, answered=0))
    >>> _ = queue.answer("lr-i2", "neg", reviewer="ann")
    >>> now[0] = 11.0
    >>> [held.feedback.value for held in queue.take_due()], queue.settled("lr-i2")
    (['neg'], False)
    >>> queue.mark_published(["lr-i2"]); queue.settled("lr-i2")
    True
    >>> queue.undo("ann")
    Traceback (most recent call last):
    ...
    driftloop.review.queue.NothingToUndo: the last answer of ann (to 'lr-i2') is published ...
    """

    def __init__(self, settings: Settings, *, undo_window_s: float | None = None,
                 memory: int | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        window = settings.review.undo_window_s if undo_window_s is None else undo_window_s
        if not (isinstance(window, int | float) and 0 <= window < math.inf):
            raise ValueError(f"undo_window_s must be a finite number >= 0, got {window!r}")
        kept = settings.review.memory if memory is None else memory
        if kept < 1:
            raise ValueError(f"memory must be >= 1, got {kept}")
        self.settings = settings
        self.undo_window_s = float(window)
        self.memory = kept
        self.clock = clock
        self._reset()

    def _reset(self) -> None:
        self._pending: dict[str, LabelRequest] = {}
        self._held: dict[str, HeldAnswer] = {}  # in answer order
        self._sending: dict[str, HeldAnswer] = {}
        self._published: set[str] = set()
        self._answered_by: dict[str, str] = {}  # request id -> reviewer (held or later)
        self._last_answer: dict[str, str] = {}  # reviewer -> request id of their last answer
        self._alias: dict[str, str] = {}  # superseded or not offered -> the request kept
        self._interaction: dict[tuple[str, str], str] = {}  # (task, interaction) -> request
        self._answered: Counter[str] = Counter()  # per task, handed out or learnt
        # per task, answered here: (request, answer, unit embedding or None)
        self._labelled: dict[str, deque[tuple[LabelRequest, str, _Unit]]] = {}
        self._unit: dict[str, tuple[float, ...]] = {}  # waiting request id -> unit embedding

    # -- requests in ------------------------------------------------------------------

    def offer(self, request: LabelRequest) -> bool:
        """Take a label request; True when it is now offered (new, or replacing a lower
        priority request for the same interaction), False when it changes nothing offered (a
        repeat, lower priority than the one waiting, or its interaction answered)."""
        rid = request.id
        if rid in self._pending or self._answered_state(rid) or rid in self._alias:
            return False
        key = (request.task, request.interaction.id)
        kept = self._interaction.get(key)
        if kept is not None and kept not in self._pending:  # answered already
            self._alias[rid] = kept
            return False
        if kept is not None:
            waiting = self._pending[kept]
            if request.priority <= waiting.priority:
                self._alias[rid] = kept
                return False
            self._drop_pending(kept)
            self._alias[kept] = rid
        self._add_pending(request)
        self._interaction[key] = rid
        return True

    def learn_answered(self, request_id: str, *, task: str, interaction_id: str) -> None:
        """Someone answered ``request_id`` and it is on the ``feedback`` topic (this desk
        before a restart, another desk): it is not offered again, nor another request for the
        same interaction. An answer of this queue still held for it is dropped, so the
        request stays one label."""
        if request_id in self._published or request_id in self._sending:
            self._sending.pop(request_id, None)  # its own answer, read back
            self._published.add(request_id)
            return
        held = self._held.pop(request_id, None)
        if held is not None:
            self._forget_labelled(held.request)
        self._answered[task] += 1
        self._drop_pending(request_id)
        self._alias.pop(request_id, None)
        key = (task, interaction_id)
        other = self._interaction.get(key)
        if other is not None and other != request_id and other in self._pending:
            self._drop_pending(other)
            self._alias[other] = request_id
        self._interaction[key] = request_id
        self._published.add(request_id)

    def forget(self, request_ids: Iterable[str]) -> None:
        """Stop offering these waiting requests (their partition went to another desk);
        answers already given are kept."""
        for rid in request_ids:
            request = self._pending.get(rid)
            if request is not None:
                self._drop_pending(rid)
                self._interaction.pop((request.task, request.interaction.id), None)

    # -- what is offered ----------------------------------------------------------------

    def pending(self, task: str | None = None, *, exclude: Iterable[str] = (),
                limit: int | None = None) -> list[LabelRequest]:
        """Waiting requests (of ``task``, else of every task) in the order they are offered."""
        skip = set(exclude)
        chosen = [r for r in self._pending.values()
                  if (task is None or r.task == task) and r.id not in skip]
        chosen.sort(key=_offer_order)
        return chosen if limit is None else chosen[:limit]

    def next(self, task: str | None = None, *, exclude: Iterable[str] = ()) -> LabelRequest | None:
        """The request to answer next (of ``task``, else of any task), None when none waits."""
        skip = set(exclude)
        chosen = [r for r in self._pending.values()
                  if (task is None or r.task == task) and r.id not in skip]
        return min(chosen, key=_offer_order) if chosen else None

    def get(self, request_id: str) -> LabelRequest | None:
        """The waiting request ``request_id`` stands for (itself, or the one that superseded
        it); None when it is not waiting."""
        return self._pending.get(self._resolve(request_id))

    @property
    def tasks(self) -> list[str]:
        """Every task this queue has seen a request or an answer of, sorted."""
        seen = {r.task for r in self._pending.values()}
        seen |= {h.request.task for h in (*self._held.values(), *self._sending.values())}
        return sorted(seen | {task for task, n in self._answered.items() if n})

    def counts(self) -> dict[str, TaskCounts]:
        """Per task: requests waiting, answers held (undoable), answers handed out or
        learnt from the feedback topic."""
        pending = Counter(r.task for r in self._pending.values())
        held = Counter(h.request.task for h in self._held.values())
        return {task: TaskCounts(pending[task], held[task], self._answered[task])
                for task in self.tasks}

    def neighbours(self, request_id: str, k: int = 3) -> list[Neighbour]:
        """Up to ``k`` requests of the same task closest to ``request_id`` by embedding
        cosine, most similar first; [] when it has no embedding. See the class docstring for
        which requests are candidates."""
        rid = self._resolve(request_id)
        request = self._pending.get(rid) or next(
            (h.request for h in (*self._held.values(), *self._sending.values())
             if h.request.id == rid), None)
        if request is None or k < 1:
            return []
        target = self._unit.get(rid) or _unit(_vector(request.interaction))
        if target is None:
            return []
        found: dict[str, Neighbour] = {}
        candidates = [(other, label, unit)
                      for other, label, unit in self._labelled.get(request.task, ())]
        candidates += [(other, None, self._unit.get(other.id))
                       for other in self._pending.values() if other.task == request.task]
        for other, label, unit in candidates:
            if unit is None or len(unit) != len(target) or other.id in found or other.id == rid:
                continue
            similarity = sum(map(operator.mul, target, unit))
            found[other.id] = Neighbour(other.id, other.interaction.input, label, similarity)
        return sorted(found.values(), key=lambda n: (-n.similarity, n.request_id))[:k]

    # -- answers --------------------------------------------------------------------------

    def answer(self, request_id: str, value: object, reviewer: str) -> Feedback:
        """Accept ``reviewer``'s answer to a waiting request and hold it for the undo window;
        the feedback it will be published as.

        Raises :class:`~.answers.InvalidAnswer` (the request keeps waiting),
        :class:`~.answers.AlreadyAnswered` or :class:`~.answers.UnknownRequest`.
        """
        rid = self._resolve(request_id)
        request = self._pending.get(rid)
        if request is None:
            if self._answered_state(rid):
                by = self._answered_by.get(rid)
                raise AlreadyAnswered(f"{request_id!r} was answered already"
                                      + (f" (by {by})" if by else ""))
            raise UnknownRequest(f"no label request {request_id!r} is waiting here")
        feedback = review_feedback(self.settings, request, value, reviewer=reviewer)
        unit = self._unit.get(rid)
        self._drop_pending(rid)
        self._held[rid] = HeldAnswer(feedback, request, reviewer,
                                     due=self.clock() + self.undo_window_s)
        self._answered_by[rid] = reviewer
        self._last_answer[reviewer] = rid
        labelled = self._labelled.setdefault(request.task, deque(maxlen=self.memory))
        labelled.append((request, str(feedback.value), unit))
        return feedback

    def undo(self, reviewer: str) -> LabelRequest:
        """Take back ``reviewer``'s latest answer still held; the request waits again and is
        returned. :class:`NothingToUndo` when none is held (nothing is published by it)."""
        for rid in reversed(self._held):
            held = self._held[rid]
            if held.reviewer == reviewer:
                del self._held[rid]
                del self._answered_by[rid]
                self._forget_labelled(held.request)
                self._add_pending(held.request)
                return held.request
        last = self._last_answer.get(reviewer)
        if last is not None and self._answered_state(last):
            raise NothingToUndo(f"the last answer of {reviewer} (to {last!r}) is published "
                                "already and stands; nothing was undone")
        raise NothingToUndo(f"{reviewer} has no answer to undo")

    def take_due(self, *, everything: bool = False) -> list[HeldAnswer]:
        """Answers whose undo window has passed (all of them with ``everything``: the desk
        is stopping), in answer order; they can no longer be undone. Report them with
        :meth:`mark_published` once the broker has them."""
        now = self.clock()
        due = [rid for rid, held in self._held.items() if everything or held.due <= now]
        out = []
        for rid in due:
            held = self._held.pop(rid)
            self._sending[rid] = held
            self._answered[held.request.task] += 1
            out.append(held)
        return out

    def next_due(self) -> float | None:
        """When the next held answer is due (the queue's clock), None when none is held."""
        return min((h.due for h in self._held.values()), default=None)

    def mark_published(self, request_ids: Iterable[str]) -> None:
        """The broker acknowledged the feedback of these requests: they are settled."""
        for rid in request_ids:
            if self._sending.pop(rid, None) is not None:
                self._published.add(rid)

    def settled(self, request_id: str) -> bool:
        """Whether the desk may commit past this request: its answer published, or it was
        superseded, or not offered because its interaction was answered."""
        return request_id in self._published or request_id in self._alias

    @property
    def unpublished(self) -> int:
        """Answers held or handed out but not acknowledged by the broker yet."""
        return len(self._held) + len(self._sending)

    # -- internals ------------------------------------------------------------------------

    def _answered_state(self, rid: str) -> bool:
        return rid in self._held or rid in self._sending or rid in self._published

    def _resolve(self, rid: str) -> str:
        seen = set()
        while rid in self._alias and rid not in seen:
            seen.add(rid)
            rid = self._alias[rid]
        return rid

    def _add_pending(self, request: LabelRequest) -> None:
        self._pending[request.id] = request
        unit = _unit(_vector(request.interaction))
        if unit is not None:
            self._unit[request.id] = unit

    def _drop_pending(self, rid: str) -> None:
        self._pending.pop(rid, None)
        self._unit.pop(rid, None)

    def _forget_labelled(self, request: LabelRequest) -> None:
        labelled = self._labelled.get(request.task)
        if labelled:
            for entry in [e for e in labelled if e[0].id == request.id]:
                labelled.remove(entry)


def _offer_order(request: LabelRequest) -> tuple[float, float, str]:
    return -request.priority, request.ts, request.id


def _vector(interaction: Interaction) -> list[float] | None:
    """What neighbours are found by: the model's embedding, else (a generation task, whose
    service sends none) the version-free input embedding."""
    return interaction.embedding or interaction.input_embedding


def _unit(vector: list[float] | None) -> _Unit:
    if not vector:
        return None
    norm = math.sqrt(sum(x * x for x in vector))
    if not norm or not math.isfinite(norm):
        return None
    return tuple(x / norm for x in vector)
