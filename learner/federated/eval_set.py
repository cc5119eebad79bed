"""The aggregator's own labelled evaluation set: a JSONL file, one example a line.

Each line is ``{"input": ..., "target": ..., "domain": ...}`` (``domain`` optional). The set
belongs to whoever runs the aggregator (a curated, consented set at the federation's centre,
never examples copied from a site); the federated gate scores candidates on it, overall and
per domain.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import pydantic

from ...schemas.events import TrainingExample
from ..errors import FederationError

__all__ = ["load_eval_set"]


def load_eval_set(path: Path | str) -> list[TrainingExample]:
    """Read an evaluation set (refusing a missing, empty or malformed file, naming the line).

    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "eval.jsonl"
    >>> _ = path.write_text('{"input": "great", "target": "positive", "domain": "tweets"}\\n')
    >>> [(e.input, e.domain) for e in load_eval_set(path)]
    [('great', 'tweets')]
    >>> _ = path.write_text('{"input": "great"}\\n')
    >>> load_eval_set(path)
    Traceback (most recent call last):
    ...
    driftloop.learner.errors.FederationError: ...eval.jsonl line 1: ...
    """
    path = Path(path)
    if not path.is_file():
        raise FederationError(f"evaluation set {path} does not exist")
    examples = []
    with path.open("rb") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                examples.append(TrainingExample.model_validate(orjson.loads(line)))
            except (orjson.JSONDecodeError, pydantic.ValidationError) as exc:
                first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                raise FederationError(f"{path} line {number}: {first}") from None
    if not examples:
        raise FederationError(f"evaluation set {path} is empty")
    return examples
