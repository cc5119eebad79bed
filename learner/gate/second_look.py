"""A second look: a rejected candidate is judged again on the labels that came after it.

Soon after a shift a candidate is gated on a few dozen held-out texts (a quarter of one
request's new labels, and the pooled ones of the same regime), and one that is ten points
better on the new traffic is often not *shown* better there: it is rejected for want of
evidence, and the next candidate starts again with a slice of the same size. The labels
that arrive after a candidate was trained are texts it never saw, and the served parent
never saw them either: every one of them, not only a held-out quarter, is fair evidence
about that candidate. A :class:`Ledger` keeps a rejected candidate's paired outcomes
against its parent; the next update scores the candidate on its request's new texts (the
ones it trains on too: the ledger's candidate did not), adds them, and judges the pooled
evidence once more. This is the champion/challenger comparison of serving systems, on the
labels the loop has anyway.

Error rate: the second look is a second decision about the same candidate, on evidence
that includes the first's, so it is made at half the gate's level: a candidate no better
than its parent passes one of its two looks at most ``1.5 * alpha`` of the time (a union
bound). Older traffic is not scored again: the first look's comparison there (not shown
worse) stands, and so do its challenge-prompt and robustness figures.

A ledger lives in the learner's memory, one per task and parent (the newest rejected
candidate's); a restart forgets it, and the candidate then has had its one look.

Examples
--------
>>> from driftloop.learner.gate.paired import compare
>>> from driftloop.schemas.events import TrainingExample
>>> ledger = Ledger("c1", "v1", trained=digests(["seen"]), counted=digests(["held"]),
...                 recent=compare([True, True, False], [False, True, False]), old=None)
>>> later = [TrainingExample(input=t, target="a") for t in ("seen", "held", "new", "new")]
>>> [e.input for e in ledger.fresh(later)]  # trained on, already counted, repeated
['new']
>>> ledger.add(["new"], compare([True], [False])).recent.wins
2
>>> looks = SecondLooks()
>>> looks.open("task", ledger)
>>> looks.get("task", "v1", "c1") is ledger, looks.get("task", "v1", "c2")
(True, None)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

from ...schemas.enums import ExampleOrigin
from ...schemas.events import TrainingExample
from .paired import PairedComparison, pool
from .pool import text_digest
from .rule import GateDecision, GateRule, Metrics

__all__ = ["Ledger", "SecondLooks", "digests", "second_look"]


def digests(texts: Iterable[str]) -> frozenset[str]:
    """The gate's digests of texts (what a ledger remembers of them, as the pool does).

    >>> digests(["a", "a", "b"]) == digests(["b", "a"])
    True
    """
    return frozenset(text_digest(text) for text in texts)


@dataclass(slots=True)
class Ledger:
    """A rejected candidate's evidence against its parent, on texts neither trained on.

    Attributes
    ----------
    version_id, parent_id
        The candidate and the parent it was compared with.
    trained
        Digests of the texts the candidate trained on (never evidence about it).
    counted
        Digests of the texts already in :attr:`recent`.
    recent
        The paired comparison on recent traffic so far (the first look's, then grown).
    old
        The first look's comparison on older traffic (None: there was none).
    before, after
        The first look's metrics of parent and candidate (challenge prompts, robustness,
        slices: judged again as they were).
    """

    version_id: str
    parent_id: str
    trained: frozenset[str]
    counted: frozenset[str]
    recent: PairedComparison
    old: PairedComparison | None
    before: Metrics = field(default_factory=dict)
    after: Metrics = field(default_factory=dict)

    def fresh(self, examples: Sequence[TrainingExample]) -> list[TrainingExample]:
        """The examples that are new evidence: real new labels (not replayed, not written
        by a model) whose text the candidate never trained on and the ledger has not
        counted, each text once."""
        seen = set(self.trained | self.counted)
        out = []
        for example in examples:
            if example.origin is not ExampleOrigin.NEW:
                continue
            key = text_digest(example.input)
            if key not in seen:
                seen.add(key)
                out.append(example)
        return out

    def add(self, texts: Sequence[str], comparison: PairedComparison) -> Ledger:
        """The ledger with ``comparison`` (on ``texts``, not counted before) pooled in."""
        if comparison.n != len(texts):
            raise ValueError(f"{comparison.n} pairs for {len(texts)} texts")
        return replace(self, counted=self.counted | digests(texts),
                       recent=pool(self.recent, comparison) if self.recent.n else comparison)


def second_look(rule: GateRule, ledger: Ledger) -> GateDecision:
    """The gate's rule on the ledger's evidence, at half its level (see the module).

    >>> from driftloop.learner.gate.paired import compare
    >>> ahead = compare([True] * 30 + [False] * 70, [True] * 10 + [False] * 90)
    >>> ledger = Ledger("c1", "v1", frozenset(), frozenset(), ahead, old=None)
    >>> decision = second_look(GateRule(alpha=0.1), ledger)
    >>> decision.promote, decision.reasons[0].split(":")[0]
    (True, 'second look')
    """
    half = replace(rule, alpha=rule.alpha / 2)
    paired = {"holdout": ledger.recent}
    if ledger.old is not None and ledger.old.n:
        paired["replay"] = ledger.old
    decision = half.decide(ledger.before, ledger.after, paired)
    return replace(decision, reasons=(
        f"second look: {ledger.version_id} against {ledger.parent_id} on "
        f"{ledger.recent.n} recent texts it never trained on, at {half.alpha:g}",
        *decision.reasons))


class SecondLooks:
    """The ledgers a learner keeps: per task and parent, the newest rejected candidate's."""

    def __init__(self) -> None:
        self._ledgers: dict[tuple[str, str], Ledger] = {}

    def open(self, task: str, ledger: Ledger) -> None:
        """Keep ``ledger`` (it replaces the parent's previous one); ledgers of the task's
        other parents go (their parent no longer serves)."""
        for key in [k for k in self._ledgers if k[0] == task and k[1] != ledger.parent_id]:
            del self._ledgers[key]
        self._ledgers[(task, ledger.parent_id)] = ledger

    def get(self, task: str, parent_id: str, version_id: str) -> Ledger | None:
        """The ledger of ``version_id`` against ``parent_id``, if kept."""
        ledger = self._ledgers.get((task, parent_id))
        return ledger if ledger is not None and ledger.version_id == version_id else None

    def close(self, task: str, parent_id: str) -> None:
        """Forget the parent's ledger (its candidate had its look, or a child was promoted)."""
        self._ledgers.pop((task, parent_id), None)

    def __len__(self) -> int:
        return len(self._ledgers)
