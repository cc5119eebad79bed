"""The challenge-prompt suite of a task: prompts with expected answers and tags.

A JSONL file, one case a line: ``{"id": ..., "input": ..., "expected": ..., "tags": [...]}``
and, for a case taken from a real error, ``"source": {...}`` (where it came from).
It grows: :meth:`ChallengeSuite.append` adds cases taken from real errors (interactions people
corrected, :mod:`driftloop.learner.gate.error_probes`), and every later candidate must keep
answering them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import LearnerError

__all__ = ["ChallengeCase", "ChallengeSuite", "ChallengeSuiteError", "cases_from_errors"]


class ChallengeSuiteError(LearnerError):
    """A challenge file is missing or has a malformed line (the message names the line)."""


@dataclass(frozen=True, slots=True)
class ChallengeCase:
    """One prompt and the answer a good model gives."""

    input: str
    expected: str
    tags: tuple[str, ...] = ()
    id: str = ""
    # Where a case came from (interaction, request, what the model answered); not part of
    # its identity.
    source: dict[str, str | None] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not self.id:
            digest = hashlib.sha256(f"{self.input}\0{self.expected}".encode()).hexdigest()
            object.__setattr__(self, "id", digest[:16])

    def to_json(self) -> str:
        data: dict[str, object] = {"id": self.id, "input": self.input,
                                   "expected": self.expected, "tags": list(self.tags)}
        if self.source:
            data["source"] = self.source
        return json.dumps(data, ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class ChallengeSuite:
    """The cases of one suite, in file order.

    Examples
    --------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "suite.jsonl"
    >>> ChallengeSuite.append(path, [ChallengeCase("not bad at all", "positive", ("negation",))])
    1
    >>> ChallengeSuite.append(path, [ChallengeCase("not bad at all", "positive")])  # known
    0
    >>> suite = ChallengeSuite.load(path)
    >>> len(suite), suite.tags()
    (1, ['negation'])
    """

    cases: tuple[ChallengeCase, ...] = ()
    source: Path | None = field(default=None, compare=False)

    def __len__(self) -> int:
        return len(self.cases)

    def __iter__(self) -> Iterator[ChallengeCase]:
        return iter(self.cases)

    def tags(self) -> list[str]:
        return sorted({tag for case in self.cases for tag in case.tags})

    def without(self, inputs: Iterable[str]) -> ChallengeSuite:
        """The suite less the cases whose input is one of ``inputs``.

        >>> suite = ChallengeSuite((ChallengeCase("a", "x"), ChallengeCase("b", "y")))
        >>> [case.input for case in suite.without(["a"])]
        ['b']
        """
        left_out = set(inputs)
        return ChallengeSuite(tuple(c for c in self.cases if c.input not in left_out),
                              self.source)

    @classmethod
    def load(cls, path: Path | str | None) -> ChallengeSuite:
        """Read a suite; ``None`` is the empty suite, a named missing file is an error."""
        if path is None:
            return cls()
        path = Path(path)
        if not path.is_file():
            raise ChallengeSuiteError(f"challenge suite {path} does not exist")
        cases = []
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
                if not isinstance(data, dict):
                    raise ValueError("expected an object")
                text, expected = data["input"], data["expected"]
                tags = data.get("tags", [])
                if not isinstance(text, str) or not isinstance(expected, str):
                    raise ValueError("input and expected must be strings")
                if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
                    raise ValueError("tags must be a list of strings")
                source = data.get("source")
                if source is not None and not (isinstance(source, dict) and all(
                        isinstance(v, str | None) for v in source.values())):
                    raise ValueError("source must be an object of strings")
                cases.append(ChallengeCase(text, expected, tuple(tags), str(data.get("id", "")),
                                           source))
            except (ValueError, KeyError) as exc:
                raise ChallengeSuiteError(f"{path}:{number}: {exc}") from None
        return cls(tuple(cases), path)

    @staticmethod
    def append(path: Path | str, cases: Iterable[ChallengeCase]) -> int:
        """Add cases not yet in the file (by id); return how many were added."""
        path = Path(path)
        known = {case.id for case in ChallengeSuite.load(path)} if path.is_file() else set()
        new = [case for case in cases if case.id not in known]
        if new:
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a", encoding="utf-8") as out:
                out.writelines(case.to_json() + "\n" for case in new)
        return len(new)


def cases_from_errors(inputs: Sequence[str], expected: Sequence[str], hits: Sequence[bool], *,
                      source: str, limit: int) -> list[ChallengeCase]:
    """Challenge cases from the examples a model got wrong (at most ``limit``).

    Tagged ``from-error`` and ``source:<source>`` so an operator can trace each case back.

    >>> [c.input for c in cases_from_errors(["a", "b", "c"], ["x", "y", "z"],
    ...                                     [True, False, False], source="r1", limit=1)]
    ['b']
    """
    wrong = [ChallengeCase(text, answer, ("from-error", f"source:{source}"))
             for text, answer, hit in zip(inputs, expected, hits, strict=True) if not hit]
    return wrong[:limit]
