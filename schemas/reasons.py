"""Pydantic's error reports, rewritten as driftloop's ``<path>: <reason>`` lines.

A path starts with the event's short name and follows JSON: ``interaction.scores.confidence``,
``training_request.examples[3].weight``. A reason says what was expected and what came,
spelled as JSON (``expected a number, got "five"``), so a producer written in any language
can read it.

Examples
--------
>>> import pydantic
>>> from driftloop.schemas import Feedback
>>> try:
...     Feedback.model_validate({"schema_name": "driftloop.feedback", "schema_version": 1,
...         "id": "f", "interaction_id": "i", "ts": -1, "task": "t",
...         "kind": "rating", "value": "five"})
... except pydantic.ValidationError as exc:
...     for line in field_errors("feedback", exc):
...         print(line)
feedback.ts: expected a number >= 0, got -1
feedback.value: expected a number for kind=rating, got "five"
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pydantic

from .errors import FieldError, show_value

__all__ = ["field_errors"]

_EXPECTED_TYPE = {
    "string_type": "a string",
    "float_type": "a number",
    "int_type": "an integer",
    "bool_type": "a boolean",
    "dict_type": "an object",
    "model_type": "an object",
    "model_attributes_type": "an object",
    "list_type": "an array",
    "text_or_number_type": "a string or a number",
}

_BOUND = {
    "greater_than_equal": ("a number >= {}", "ge"),
    "greater_than": ("a number > {}", "gt"),
    "less_than_equal": ("a number <= {}", "le"),
    "less_than": ("a number < {}", "lt"),
    "string_too_short": ("at least {} character{}", "min_length"),
    "string_too_long": ("at most {} character{}", "max_length"),
    "too_short": ("at least {} item{}", "min_length"),
    "too_long": ("at most {} item{}", "max_length"),
}


def _bound(template: str, bound: Any) -> str:
    if isinstance(bound, float) and bound.is_integer():
        bound = int(bound)  # "a number >= 0", as the JSON Schema file spells it
    return template.format(bound, "" if bound == 1 else "s")


def reason(error: dict[str, Any]) -> str:
    """One pydantic error as a sentence: what was expected, what came."""
    kind, value, ctx = error["type"], error.get("input"), error.get("ctx") or {}
    if kind == "missing":
        return "required field missing"
    if kind == "value_error":
        return str(ctx.get("error", error["msg"]))
    if kind in _EXPECTED_TYPE:
        return f"expected {_EXPECTED_TYPE[kind]}, got {show_value(value)}"
    if kind in _BOUND:
        template, key = _BOUND[kind]
        got = len(value) if kind.endswith(("too_short", "too_long")) else show_value(value)
        return f"expected {_bound(template, ctx.get(key))}, got {got}"
    if kind in ("enum", "literal_error"):
        return f"expected {ctx.get('expected')}, got {show_value(value)}"
    if kind == "string_pattern_mismatch":
        return f"expected a string matching {ctx.get('pattern')}, got {show_value(value)}"
    if kind == "finite_number":
        return f"expected a finite number, got {value}"
    return f"{str(error['msg']).lower()}, got {show_value(value)}"


def _path(prefix: str, loc: Iterable[Any]) -> str:
    path = prefix
    for item in loc:
        path += f"[{item}]" if isinstance(item, int) else f".{item}"
    return path


def field_errors(prefix: str, exc: pydantic.ValidationError) -> list[FieldError]:
    """Every violation pydantic found, one line per field, in the order it found them."""
    errors: list[FieldError] = []
    seen: set[str] = set()
    for error in exc.errors(include_url=False):
        # Validators wrapping a field add a "function-..." step to the location.
        loc = [part for part in error["loc"] if not str(part).startswith("function-")]
        path = _path(prefix, loc)
        if path not in seen:
            seen.add(path)
            errors.append(FieldError(path, reason(error)))
    return errors
