"""A task's first version from labelled examples in a file: the cold start.

Until a task has a promoted version the service cannot answer it (and the worker has
nothing to join feedback to). ``driftloop learner bootstrap --task T --from FILE`` reads
labelled examples, trains the first adapter with the learner's own update (split, gate,
store) and publishes its version on ``model-versions``, where serving picks it up.

The file is JSON Lines (one object a line with ``input`` and ``target``, optionally
``domain`` and ``weight``) or CSV with a header naming an input column (``input`` or
``text``) and a target column (``target`` or ``label``). The request id is derived from the
task and the file's content, so running the same bootstrap twice names the same version.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Sequence
from pathlib import Path

import pydantic

from ...schemas.enums import TriggerKind
from ...schemas.events import TrainingExample, TrainingRequest
from ..errors import TrainingRequestError

__all__ = ["bootstrap_request", "read_examples"]

_INPUTS, _TARGETS = ("input", "text"), ("target", "label")


def read_examples(path: Path) -> list[TrainingExample]:
    """Labelled examples of a ``.jsonl``/``.json`` or ``.csv`` file; a bad line is an error
    naming it.

    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "a.csv").write_text("text,label\\ngreat film,positive\\n")
    >>> [(e.input, e.target) for e in read_examples(folder / "a.csv")]
    [('great film', 'positive')]
    >>> _ = (folder / "b.jsonl").write_text('{"input": "dull", "target": "negative"}\\n{oops\\n')
    >>> read_examples(folder / "b.jsonl")
    Traceback (most recent call last):
    ...
    driftloop.learner.errors.TrainingRequestError: ...b.jsonl line 2: not JSON (...)
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TrainingRequestError(f"cannot read {path}: {exc}") from None
    rows = _csv_rows(path, text) if path.suffix.lower() == ".csv" else _json_rows(path, text)
    examples = []
    for line, row in rows:
        try:
            examples.append(TrainingExample(**row))
        except pydantic.ValidationError as exc:
            problem = exc.errors()[0]
            where = ".".join(str(p) for p in problem["loc"])
            raise TrainingRequestError(f"{path} line {line}: {where}: {problem['msg']}") from None
    if not examples:
        raise TrainingRequestError(f"{path} holds no examples")
    return examples


def _json_rows(path: Path, text: str) -> list[tuple[int, dict[str, object]]]:
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise TrainingRequestError(f"{path} line {number}: not JSON ({exc.msg})") from None
        if not isinstance(row, dict):
            raise TrainingRequestError(f"{path} line {number}: expected an object with "
                                       "'input' and 'target'")
        rows.append((number, {k: v for k, v in row.items()
                              if k in ("input", "target", "domain", "weight")}))
    return rows


def _csv_rows(path: Path, text: str) -> list[tuple[int, dict[str, object]]]:
    reader = csv.DictReader(io.StringIO(text))
    header = reader.fieldnames or []
    source = next((c for c in _INPUTS if c in header), None)
    target = next((c for c in _TARGETS if c in header), None)
    if source is None or target is None:
        raise TrainingRequestError(f"{path}: the header {header} names no input column "
                                   f"({' or '.join(_INPUTS)}) or no target column "
                                   f"({' or '.join(_TARGETS)})")
    rows = []
    for number, row in enumerate(reader, start=2):
        fields: dict[str, object] = {"input": row[source], "target": row[target]}
        if row.get("domain"):
            fields["domain"] = row["domain"]
        rows.append((number, fields))
    return rows


def bootstrap_request(task: str, examples: Sequence[TrainingExample], *,
                      labels: Sequence[str] = ()) -> TrainingRequest:
    """The first training request of ``task``: no parent, its id from the content.

    >>> request = bootstrap_request("t", [TrainingExample(input="a", target="x")])
    >>> request.id.startswith("bootstrap-t-"), request.parent_version, request.trigger.value
    (True, None, 'manual')
    """
    digest = hashlib.sha256()
    for example in examples:
        digest.update(example.model_dump_json().encode())
        digest.update(b"\n")
    return TrainingRequest(
        id=f"bootstrap-{task}-{digest.hexdigest()[:16]}", ts=0.0, task=task,
        trigger=TriggerKind.MANUAL, reason="bootstrap: the task's first version",
        labels=list(labels) or None, examples=list(examples))
