"""Every dead-letter reason the code can emit is in the contract's enum (issue 19).

The test walks the source of every package and reads the reason at each place a dead letter
or a decoding error is made: a literal there must be a member of ``DeadLetterReason``, and
the JSON Schema file lists exactly the enum's members.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import driftloop.schemas
from driftloop.schemas import DeadLetterReason, ValidationError, decode, json_schema
from driftloop.schemas.events import Feedback

ROOT = Path(driftloop.schemas.__file__).resolve().parent.parent
PACKAGES = ("schemas", "streams", "learner", "client", "tools")
# Callable name -> where its reason goes: a keyword, or a positional index.
SINKS: dict[str, tuple[str, int | None]] = {
    "dead_letter": ("reason", None),
    "DeadLetter": ("reason", None),
    "reject": ("reason", 0),
    "_dead_letter": ("reason", 1),
    "_reject_command": ("reason", 1),
    "ValidationError": ("code", None),
    "single": ("code", None),
}


def _sources() -> list[Path]:
    files = [p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")]
    assert len(files) > 50, ROOT
    return files


def _reasons_at_sinks() -> list[tuple[str, ast.expr]]:
    found = []
    for path in _sources():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if name not in SINKS:
                continue
            keyword, index = SINKS[name]
            args = [k.value for k in node.keywords if k.arg == keyword]
            if index is not None and len(node.args) > index:
                args.append(node.args[index])
            where = f"{path.relative_to(ROOT)}:{node.lineno}"
            found += [(where, arg) for arg in args]
    return found


def test_every_reason_the_code_emits_is_in_the_enum() -> None:
    members = {m.value for m in DeadLetterReason}
    found = _reasons_at_sinks()
    literals = [(where, arg.value) for where, arg in found
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str)]
    named = [(where, arg.attr) for where, arg in found if isinstance(arg, ast.Attribute)
             and isinstance(arg.value, ast.Name) and arg.value.id == "DeadLetterReason"]
    assert [(w, v) for w, v in literals if v not in members] == []
    assert [(w, a) for w, a in named if a not in DeadLetterReason.__members__] == []
    # Not vacuous: the walk sees the reasons of the worker, the learner and the codec.
    places = {where.split(":")[0] for where, _ in literals + named}
    assert {"streams/ingest.py", "learner/service.py", "schemas/codec.py"} <= places, places
    # Anything else at a reason position is passed through: a variable, a constant, an
    # error's code, a typed (reason, error) pair.
    others = [(w, ast.dump(a)) for w, a in found
              if not isinstance(a, ast.Constant | ast.Attribute | ast.Name | ast.Starred)]
    assert others == []


def test_the_contract_lists_exactly_the_enum() -> None:
    reason = json_schema("dead_letter")["properties"]["reason"]
    assert reason["enum"] == [m.value for m in DeadLetterReason]
    for member in DeadLetterReason:
        assert member.value in reason["description"], member


def test_an_unlisted_reason_fails_where_it_is_made() -> None:
    with pytest.raises(ValueError, match="not_a_reason"):
        ValidationError.single("x", "y", code="not_a_reason")


def test_an_unknown_schema_name_is_unknown_schema_not_invalid_event() -> None:
    raw = (b'{"schema_name":"driftloop.nope","schema_version":1,"id":"f",'
           b'"interaction_id":"i","ts":0,"task":"t","kind":"label","value":"pos"}')
    with pytest.raises(ValidationError) as caught:
        decode(raw, Feedback)
    assert caught.value.code is DeadLetterReason.UNKNOWN_SCHEMA
    assert str(caught.value) == 'feedback.schema_name: unknown schema "driftloop.nope"'
    # A known schema on the wrong topic breaks the contract of the expected one.
    other = raw.replace(b"driftloop.nope", b"driftloop.interaction")
    with pytest.raises(ValidationError) as caught:
        decode(other, Feedback)
    assert caught.value.code is DeadLetterReason.INVALID_EVENT
