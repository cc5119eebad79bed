"""A replay buffer per task: a bounded reservoir of past examples plus the new ones.

Fine-tuning only on the newest examples forgets what the model knew; the learner gets a
micro-batch that mixes new and replayed examples at a set ratio, balanced over classes and
domains, ordered easy to hard when curriculum is on, deduplicated by content, and bounded in
bytes (it travels inline in a ``training-requests`` event).
"""

from __future__ import annotations

import hashlib
import math
import random
from collections import OrderedDict, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, fields
from typing import Any

from ..schemas.enums import ExampleOrigin
from ..schemas.events import TrainingExample
from ..schemas.events.training import easy_first
from .errors import ConfigurationError

__all__ = ["BufferOp", "LabeledExample", "ReplayBuffer", "draw_examples"]

BufferOp = tuple[str, Any]
"""One change of a buffer, as :meth:`ReplayBuffer.replay` applies it again: ``("add",
example)``, ``("revise", example)``, ``("commit", domain)``, ``("carry", domain)`` or
``("settle", None)``."""

# Per-example overhead of the JSON around input and target inside a training request.
_JSON_OVERHEAD = 160


@dataclass(frozen=True, slots=True)
class LabeledExample:
    """A joined interaction and its label: what the learner trains on."""

    input: str
    target: str
    domain: str = "default"
    weight: float = 1.0
    difficulty: float | None = None
    interaction_id: str | None = None
    # What the deployed model answered and the feedback kind that gave the target: the
    # learner makes the examples it got wrong into challenge probes.
    model_answer: str | None = None
    feedback_kind: str | None = None
    # The task's regime when the interaction was seen (see streams/requests.py).
    regime: int = 0
    # Which answer of a reviewer gave the target: 0 the first, n the n-th change of it
    # (feedback with ``metadata.revises``); see ReplayBuffer.revise.
    revision: int = 0
    # The slices the producer named (``(key, value)`` pairs under the task's slice_keys).
    slices: tuple[tuple[str, str], ...] = ()

    def __setstate__(self, state: list[Any]) -> None:
        # Buffers are pickled into changelogs; one written before a field was added has a
        # shorter state, and a slot left unset would raise on first read.
        for spec in fields(self):
            object.__setattr__(self, spec.name, spec.default)
        for spec, value in zip(fields(self), state, strict=False):
            object.__setattr__(self, spec.name, value)

    @property
    def content_hash(self) -> str:
        """Same input and target, same hash: duplicates are kept once."""
        digest = hashlib.blake2b(digest_size=16)
        digest.update(self.input.encode("utf-8", "surrogatepass"))
        digest.update(b"\x00")
        digest.update(self.target.encode("utf-8", "surrogatepass"))
        return digest.hexdigest()

    @property
    def size_bytes(self) -> int:
        answer = len(self.model_answer.encode("utf-8", "surrogatepass")) if self.model_answer else 0
        named = sum(len(k) + len(v) + 6 for k, v in self.slices)
        return (len(self.input.encode("utf-8", "surrogatepass")) + len(self.target) + answer
                + named + _JSON_OVERHEAD)

    def to_training(self, origin: ExampleOrigin) -> TrainingExample:
        return TrainingExample(input=self.input, target=self.target, weight=self.weight,
                               origin=origin, difficulty=self.difficulty, domain=self.domain,
                               interaction_id=self.interaction_id,
                               model_answer=self.model_answer, feedback_kind=self.feedback_kind,
                               regime=self.regime, slices=dict(self.slices))


class ReplayBuffer:
    """New examples since the last training, and a reservoir sample of everything before.

    Parameters
    ----------
    capacity
        Most examples kept in the reservoir (uniform sample of all examples ever committed).
    max_new
        Most new examples kept; beyond it the oldest new example is dropped.
    max_bytes
        Bound on reservoir + new examples together (the buffer is persisted in a table).
    seed
        Seed of the reservoir sampling and of the batch draws.

    Examples
    --------
    >>> buffer = ReplayBuffer(capacity=4, seed=1)
    >>> for i in range(6):
    ...     _ = buffer.add(LabeledExample(f"text {i}", "pos" if i % 2 else "neg"))
    >>> buffer.add(LabeledExample("text 0", "neg"))  # same content: refused
    False
    >>> batch = buffer.build_batch(size=4, replay_ratio=0.0)
    >>> sorted(e.target for e in batch)
    ['neg', 'neg', 'pos', 'pos']
    >>> buffer.commit()  # the batch was sent: the new examples join the reservoir
    >>> buffer.new_count, len(buffer.reservoir)
    (0, 4)
    """

    def __init__(self, *, capacity: int = 2000, max_new: int = 5000,
                 max_bytes: int = 4 * 1024 * 1024, seed: int = 0) -> None:
        for name, value in (("capacity", capacity), ("max_new", max_new),
                            ("max_bytes", max_bytes)):
            if not isinstance(value, int) or value < 1:
                raise ConfigurationError(f"{name} must be a positive integer, got {value!r}")
        self.capacity = capacity
        self.max_new = max_new
        self.max_bytes = max_bytes
        self.seed = seed
        self._reset()

    def _reset(self) -> None:
        self.step_seq = 0  # the worker's step that last wrote this buffer (streams/redo.py)
        self._journal: list[BufferOp] = []
        self._rng = random.Random(self.seed)
        self._new: OrderedDict[str, LabeledExample] = OrderedDict()
        # Sent in a request, and no version trained on them promoted yet (carry/settle).
        self._carried: OrderedDict[str, LabeledExample] = OrderedDict()
        self._reservoir: list[LabeledExample] = []
        self._reservoir_hashes: set[str] = set()
        self._seen = 0  # examples ever offered to the reservoir
        self._bytes = 0

    def __setstate__(self, state: dict[str, Any]) -> None:
        # A buffer pickled before the step stamp, the journal or carried examples existed.
        self.__dict__.update({"step_seq": 0, "_journal": [], "_carried": OrderedDict(),
                              **state})

    # -- read-only views -----------------------------------------------------------------
    @property
    def new_count(self) -> int:
        return len(self._new)

    @property
    def reservoir(self) -> tuple[LabeledExample, ...]:
        return tuple(self._reservoir)

    @property
    def new_examples(self) -> tuple[LabeledExample, ...]:
        return tuple(self._new.values())

    @property
    def carried_examples(self) -> tuple[LabeledExample, ...]:
        """Examples sent in a request that no promoted version has trained on yet."""
        return tuple(self._carried.values())

    @property
    def size_bytes(self) -> int:
        return self._bytes

    # -- updates -------------------------------------------------------------------------
    def add(self, example: LabeledExample) -> bool:
        """Add a new example; False when the same content is already in the buffer."""
        key = example.content_hash
        if key in self._new or key in self._carried or key in self._reservoir_hashes:
            return False
        self._journal.append(("add", example))
        self._insert(key, example)
        return True

    def revise(self, example: LabeledExample) -> bool:
        """Put ``example`` in place of the examples an earlier answer gave its interaction.

        A reviewer who changes their answer publishes a revision (feedback with
        ``metadata.revises``); added beside the first answer's example, it would teach the
        model two targets for one input. The earlier examples go, new or already in the
        reservoir. False (nothing changes) when the buffer already holds this revision or
        a later one for the interaction: a redelivered or late revision never undoes a
        newer one.

        >>> buffer = ReplayBuffer()
        >>> buffer.add(LabeledExample("meh", "pos", interaction_id="i-1"))
        True
        >>> buffer.revise(LabeledExample("meh", "neg", interaction_id="i-1", revision=1))
        True
        >>> [(e.target, e.revision) for e in buffer.new_examples]
        [('neg', 1)]
        >>> buffer.revise(LabeledExample("meh", "neg", interaction_id="i-1", revision=1))
        False
        """
        interaction = example.interaction_id
        if interaction is None:
            return self.add(example)
        stale_new = [k for k, e in self._new.items() if e.interaction_id == interaction]
        stale_sent = [k for k, e in self._carried.items() if e.interaction_id == interaction]
        stale_kept = [i for i, e in enumerate(self._reservoir) if e.interaction_id == interaction]
        held = ([self._new[k] for k in stale_new] + [self._carried[k] for k in stale_sent]
                + [self._reservoir[i] for i in stale_kept])
        if any(e.revision >= example.revision for e in held):
            return False
        self._journal.append(("revise", example))
        for key in stale_new:
            self._bytes -= self._new.pop(key).size_bytes
        for key in stale_sent:
            self._bytes -= self._carried.pop(key).size_bytes
        for index in reversed(stale_kept):  # each removal moves the last slot into its place
            self._remove_reservoir(index)
        key = example.content_hash
        if key not in self._new and key not in self._carried \
                and key not in self._reservoir_hashes:
            self._insert(key, example)
        return True

    def _insert(self, key: str, example: LabeledExample) -> None:
        self._new[key] = example
        self._bytes += example.size_bytes
        while len(self._new) > self.max_new:
            self._drop_new()
        self._fit_bytes()

    def _drop_new(self) -> None:
        _, dropped = self._new.popitem(last=False)
        self._bytes -= dropped.size_bytes

    def _fit_bytes(self) -> None:
        # Old knowledge goes first (a random reservoir slot), then the oldest examples sent
        # and not yet learnt by a promoted version, the newest examples last.
        while self._bytes > self.max_bytes and self._reservoir:
            self._remove_reservoir(self._rng.randrange(len(self._reservoir)))
        while self._bytes > self.max_bytes and self._carried:
            self._bytes -= self._carried.popitem(last=False)[1].size_bytes
        while self._bytes > self.max_bytes and len(self._new) > 1:
            self._drop_new()

    def _remove_reservoir(self, index: int) -> None:
        removed = self._reservoir[index]
        self._reservoir[index] = self._reservoir[-1]
        self._reservoir.pop()
        self._reservoir_hashes.discard(removed.content_hash)
        self._bytes -= removed.size_bytes

    def new_domain_counts(self) -> dict[str, int]:
        """How many new examples each domain has, by domain name.

        >>> buffer = ReplayBuffer()
        >>> buffer.extend([LabeledExample("a", "pos", domain="news"),
        ...                LabeledExample("b", "neg", domain="tweets"),
        ...                LabeledExample("c", "pos", domain="news")])
        3
        >>> buffer.new_domain_counts()
        {'news': 2, 'tweets': 1}
        """
        counts: dict[str, int] = defaultdict(int)
        for example in self._new.values():
            counts[example.domain] += 1
        return dict(sorted(counts.items()))

    def commit(self, domain: str | None = None) -> None:
        """Move the new examples into the reservoir (Algorithm R): call after a training
        request carrying them was sent.

        With ``domain``, only that domain's new examples move; the others stay new (a
        request per domain, see ``build_batch``).
        """
        self._journal.append(("commit", domain))
        for key, example in list(self._new.items()):
            if domain is not None and example.domain != domain:
                continue
            del self._new[key]
            self._offer(key, example)
        self._fit_bytes()

    def carry(self, domain: str | None = None) -> None:
        """Set the new examples aside as sent but not yet learnt (instead of :meth:`commit`):
        later requests carry them again as new examples, until :meth:`settle` (a version
        trained on them was promoted). A rejected candidate's labels are then not lost to
        the next one; triggers count only the examples never sent. Beyond ``max_new`` sent
        examples, the oldest go to the reservoir.

        >>> buffer = ReplayBuffer()
        >>> buffer.extend([LabeledExample("a", "pos"), LabeledExample("b", "neg")])
        2
        >>> buffer.carry(); buffer.new_count, len(buffer.carried_examples)
        (0, 2)
        >>> _ = buffer.add(LabeledExample("c", "pos"))
        >>> sorted(e.input for e in buffer.build_batch(size=8, replay_ratio=0.0))
        ['a', 'b', 'c']
        >>> buffer.settle(), len(buffer.carried_examples), len(buffer.reservoir)
        (True, 0, 2)
        """
        self._journal.append(("carry", domain))
        for key, example in list(self._new.items()):
            if domain is not None and example.domain != domain:
                continue
            del self._new[key]
            self._carried[key] = example
        while len(self._carried) > self.max_new:
            self._offer(*self._carried.popitem(last=False))
        self._fit_bytes()

    def settle(self) -> bool:
        """A version trained on the carried examples was promoted: into the reservoir they
        go (Algorithm R), replayed from now on like any learnt example. False when none
        were carried (nothing changes)."""
        if not self._carried:
            return False
        self._journal.append(("settle", None))
        for key, example in list(self._carried.items()):
            del self._carried[key]
            self._offer(key, example)
        self._fit_bytes()
        return True

    def _offer(self, key: str, example: LabeledExample) -> None:
        """Offer one example no longer new to the reservoir (Algorithm R)."""
        self._seen += 1
        if len(self._reservoir) < self.capacity:
            self._reservoir.append(example)
            self._reservoir_hashes.add(key)
            return
        self._bytes -= example.size_bytes  # refused or replacing: not both counted
        slot = self._rng.randrange(self._seen)
        if slot < self.capacity:
            old = self._reservoir[slot]
            self._reservoir_hashes.discard(old.content_hash)
            self._bytes -= old.size_bytes
            self._reservoir[slot] = example
            self._reservoir_hashes.add(key)
            self._bytes += example.size_bytes

    # -- the journal of changes ---------------------------------------------------------------
    def take_journal(self) -> tuple[BufferOp, ...]:
        """The changes since the last call, in order; the journal starts empty again.

        The worker keeps them in the step's state record, so a buffer record a kill cut off
        can be rebuilt from the one before it (:mod:`driftloop.streams.redo`).

        >>> buffer = ReplayBuffer()
        >>> buffer.add(LabeledExample("a", "pos")), buffer.add(LabeledExample("a", "pos"))
        (True, False)
        >>> buffer.commit()
        >>> [kind for kind, _ in buffer.take_journal()], buffer.take_journal()
        (['add', 'commit'], ())
        """
        journal = getattr(self, "_journal", [])  # a buffer pickled before the journal existed
        self._journal = []
        return tuple(journal)

    def replay(self, ops: Iterable[BufferOp]) -> None:
        """Apply changes taken from another copy of this buffer (same contents, same seed):
        the result is that copy's, byte for byte, and the changes are journaled again.

        >>> one, two = ReplayBuffer(capacity=2, seed=3), ReplayBuffer(capacity=2, seed=3)
        >>> for i in range(5):
        ...     _ = one.add(LabeledExample(f"t{i}", "pos"))
        >>> one.commit()
        >>> two.replay(one.take_journal())
        >>> two.reservoir == one.reservoir, len(two.take_journal())
        (True, 6)
        """
        for kind, argument in ops:
            if kind == "add":
                self.add(argument)
            elif kind == "revise":
                self.revise(argument)
            elif kind == "commit":
                self.commit(argument)
            elif kind == "carry":
                self.carry(argument)
            elif kind == "settle":
                self.settle()
            else:
                raise ValueError(f"unknown buffer change {kind!r}")

    # -- micro-batches -------------------------------------------------------------------
    def build_batch(self, *, size: int = 256, replay_ratio: float = 0.5, balance: bool = True,
                    curriculum: bool = True, max_bytes: int = 1024 * 1024,
                    domain: str | None = None) -> list[TrainingExample]:
        """Mix new and replayed examples; the buffer itself is not changed.

        ``replay_ratio`` is the share of replayed examples in a full batch; when there are
        fewer new examples, the replayed share shrinks with them, so the ratio holds.
        With ``domain``, the new examples are only that domain's (a learner with an adapter
        per domain trains the lineage of its new examples' domain); the replayed ones still
        come from every domain, against forgetting.
        """
        if not isinstance(size, int) or size < 1:
            raise ConfigurationError(f"size must be a positive integer, got {size!r}")
        if not 0.0 <= replay_ratio < 1.0:
            raise ConfigurationError(f"replay_ratio must be in [0, 1), got {replay_ratio!r}")
        if domain is not None and not isinstance(domain, str):
            raise ConfigurationError(f"domain must be a string or None, got {domain!r}")
        pool = [e for e in (*self._carried.values(), *self._new.values())
                if domain is None or e.domain == domain]
        seed = f"{self.seed}:{self._seen}:{len(self._new)}"
        rng = random.Random(seed if domain is None else f"{seed}:{domain}")
        new_quota = min(len(pool), size - math.floor(size * replay_ratio))
        replay_quota = min(len(self._reservoir), size - new_quota,
                           math.floor(new_quota * replay_ratio / (1.0 - replay_ratio) + 1e-9))
        budget = [max_bytes]
        chosen = [(e, ExampleOrigin.NEW)
                  for e in draw_examples(pool, new_quota, balance, rng, budget)]
        chosen += [(e, ExampleOrigin.REPLAY)
                   for e in draw_examples(self._reservoir, replay_quota, balance, rng, budget)]
        if not curriculum:
            rng.shuffle(chosen)
        batch = [example.to_training(origin) for example, origin in chosen]
        # Easy first: difficulty is 1 - the model's confidence (the learner's rule too).
        return [batch[i] for i in easy_first(batch)] if curriculum else batch

    # -- contract helpers ----------------------------------------------------------------
    def clone(self) -> ReplayBuffer:
        return ReplayBuffer(**self.get_params())

    def get_params(self) -> dict[str, Any]:
        return {"capacity": self.capacity, "max_new": self.max_new, "max_bytes": self.max_bytes,
                "seed": self.seed}

    def extend(self, examples: Iterable[LabeledExample]) -> int:
        """Add several examples; returns how many were new content."""
        return sum(self.add(example) for example in examples)

    def __repr__(self) -> str:
        return (f"ReplayBuffer(capacity={self.capacity}, new={len(self._new)}, "
                f"carried={len(self._carried)}, reservoir={len(self._reservoir)}, "
                f"bytes={self._bytes})")


def draw_examples(pool: list[LabeledExample], quota: int, balance: bool, rng: random.Random,
         budget: list[int]) -> list[LabeledExample]:
    """Up to ``quota`` examples of ``pool`` in random order, within ``budget[0]`` bytes (the
    budget left is written back, so the next draw of the same batch shares it).

    With ``balance``, round robin over the (class, domain) groups: every group gets its share
    before any group gets a second one.

    >>> pool = [LabeledExample(f"t{i}", "pos" if i < 6 else "neg") for i in range(8)]
    >>> budget = [10_000]
    >>> sorted(e.target for e in draw_examples(pool, 4, True, random.Random(0), budget))
    ['neg', 'neg', 'pos', 'pos']
    >>> budget[0] == 10_000 - 4 * pool[0].size_bytes
    True
    """
    if quota <= 0:
        return []
    if not balance:
        order = rng.sample(pool, len(pool))
        groups: list[list[LabeledExample]] = [order]
    else:
        by_group: dict[tuple[str, str], list[LabeledExample]] = defaultdict(list)
        for example in pool:
            by_group[(example.target, example.domain)].append(example)
        groups = [rng.sample(items, len(items)) for _, items in sorted(by_group.items())]
    picked: list[LabeledExample] = []
    while len(picked) < quota and any(groups):
        for group in groups:
            if not group or len(picked) >= quota:
                continue
            example = group.pop()
            if example.size_bytes > budget[0]:
                continue
            budget[0] -= example.size_bytes
            picked.append(example)
    return picked
