"""Hypothesis strategies built from the JSON Schema files, and the reference validator.

``valid(short)`` draws samples that follow the file's shape (types, bounds, patterns,
enums, consts, the Feedback kind->value condition, nested ``$ref``s), with optional and
unknown fields sometimes present; ``mutated(short)`` takes such a sample and breaks it in
one place (drops a field, swaps in a value of another type, crosses a bound, a bad enum
or const). Neither knows the Python types: the point is to compare them with the files.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from functools import cache
from typing import Any

import jsonschema
import orjson
from hypothesis import strategies as st
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from driftloop.schemas import JSON_SCHEMA_NAMES, json_schema

# orjson writes integers up to 64 bits; JSON Schema bounds in the files stay far below.
_INT64 = 2**63 - 1


def ecma_pattern(pattern: str) -> str:
    """``pattern`` with ECMA-262's ``$`` (end of input only) spelled for Python's ``re``.

    JSON Schema names ECMA-262 regular expressions, where ``$`` does not match before a
    final newline; Python's ``re`` does, so ``jsonschema`` (which uses ``re.search``) would
    accept ``"sentiment\\n"`` as a task name that the contract, and driftloop, refuse.
    """
    return pattern[:-1] + r"\Z" if pattern.endswith("$") and not pattern.endswith(r"\$") \
        else pattern


def _ecma_pattern_keyword(validator: Any, pattern: str, instance: Any, schema: Any) -> Any:
    if validator.is_type(instance, "string") and not re.search(ecma_pattern(pattern), instance):
        yield jsonschema.ValidationError(f"{instance!r} does not match {pattern!r}")


# Draft 2020-12 as jsonschema implements it, with the one ECMA-262 fix above.
ContractValidator = jsonschema.validators.extend(
    jsonschema.Draft202012Validator, {"pattern": _ecma_pattern_keyword})


@cache
def registry() -> Registry:
    """Every driftloop schema by ``$id``, so ``$ref`` across files resolves offline."""
    resources = []
    for short in JSON_SCHEMA_NAMES:
        schema = json_schema(short)
        # Without "$schema", jsonschema keeps ContractValidator when it follows a $ref into
        # another file instead of switching to the stock Draft202012Validator.
        del schema["$schema"]
        resources.append((schema["$id"], DRAFT202012.create_resource(schema)))
    return Registry().with_resources(resources)


@cache
def validator(short: str) -> Any:
    return ContractValidator(json_schema(short), registry=registry())


def schema_by_id(uri: str) -> dict[str, Any]:
    return registry().contents(uri)


# Values of every JSON type, tricky ones on purpose: numeric strings, booleans for numbers,
# integral floats, bounds, trailing newlines, huge and tiny numbers.
NASTY: list[Any] = [
    None, True, False, 0, 1, -1, 1.0, 0.5, 1.5, -0.0, 2.0, 1e300, -1e-300, 5e-324,
    2**53 - 1, 2**53, -(2**53), 2**63 - 1, "", "1", "1.5", "true", "null", "a", "a\n",
    "a b", "-x", "Ω", "x" * 300, "label", "rating", "correction", "candidate", "drift",
    "driftloop.interaction", "driftloop.feedback", "0" * 64, "0" * 63 + "G", "e30=", "e30",
    [], [1.0], ["a"], [None], {}, {"a": 1}, {"input": "x", "target": "y"},
]

_json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-_INT64, _INT64),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(st.characters(exclude_categories=["Cs"]), max_size=8),
)
any_json = st.recursive(
    _json_scalars,
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)

_text_chars = st.characters(exclude_categories=["Cs"])
_MAX_ARRAY = 6  # embeddings may have 8192 entries; a few are enough to judge them


def _resolve(schema: dict[str, Any], root: dict[str, Any]) -> tuple[dict[str, Any], dict]:
    ref = schema.get("$ref")
    if ref is None:
        return schema, root
    if ref.startswith("#/"):
        target: Any = root
        for part in ref[2:].split("/"):
            target = target[part]
    else:
        target = root = schema_by_id(ref)
    return target, root


def _string(schema: dict[str, Any]) -> st.SearchStrategy[str]:
    lo, hi = schema.get("minLength", 0), schema.get("maxLength")
    if "pattern" in schema:
        strategy = st.from_regex(ecma_pattern(schema["pattern"]), fullmatch=True,
                                 alphabet=_text_chars)
        return strategy.filter(lambda s: lo <= len(s) <= (hi or len(s)))
    return st.text(_text_chars, min_size=lo, max_size=min(hi or lo + 40, lo + 40))


def _number(schema: dict[str, Any], integer: bool) -> st.SearchStrategy[Any]:
    lo, hi = schema.get("minimum"), schema.get("maximum")
    if integer:
        ints = st.integers(max(lo, -_INT64) if lo is not None else -_INT64,
                           min(hi, _INT64) if hi is not None else _INT64)
        # JSON Schema counts 3.0 as an integer: writers in other languages may send it.
        return ints | ints.filter(lambda i: abs(i) < 2**53).map(float)
    exclusive = schema.get("exclusiveMinimum")
    floats = st.floats(min_value=exclusive if exclusive is not None else lo, max_value=hi,
                       exclude_min=exclusive is not None, allow_nan=False,
                       allow_infinity=False)
    ints = st.integers(
        int(exclusive) + 1 if exclusive is not None else int(lo) if lo is not None else -1000,
        int(hi) if hi is not None else 10**6)
    return floats | ints


def _object(schema: dict[str, Any], root: dict[str, Any]) -> st.SearchStrategy[dict]:
    props: dict[str, Any] = schema.get("properties", {})
    if not props:
        extra = schema.get("additionalProperties", True)
        values = any_json if extra is True else strategy(extra, root)
        return st.dictionaries(st.text(_text_chars, max_size=6), values, max_size=3)
    required = set(schema.get("required", []))
    # Strategies are built once here, not per draw: building from_regex is the slow part.
    values = {name: strategy(sub, root) for name, sub in props.items()}
    conditions = [
        (rule["if"], {name: strategy({**props[name], **narrowed}, root)
                      for name, narrowed in rule["then"].get("properties", {}).items()})
        for rule in schema.get("allOf", []) if "if" in rule
    ]
    extra_keys = st.text(_text_chars, min_size=1, max_size=6).filter(lambda k: k not in props)
    open_ended = schema.get("additionalProperties", True) is True

    @st.composite
    def build(draw: Callable[..., Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, value in values.items():
            if name in required or draw(st.booleans()):
                out[name] = draw(value)
        for condition, then in conditions:  # if/then: redraw what the condition governs
            if ContractValidator(condition).is_valid(out):
                for name, value in then.items():
                    if name in out:
                        out[name] = draw(value)
        if open_ended:
            out.update(draw(st.dictionaries(extra_keys, any_json, max_size=2)))
        return out

    return build()


def strategy(schema: dict[str, Any], root: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Valid instances of ``schema`` (a sub-schema of ``root``)."""
    schema, root = _resolve(schema, root)
    if "const" in schema:
        return st.just(schema["const"])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    types = schema.get("type")
    if isinstance(types, list):
        return st.one_of([strategy({**schema, "type": t}, root) for t in types])
    if types == "null":
        return st.none()
    if types == "boolean":
        return st.booleans()
    if types == "string":
        return _string(schema)
    if types in ("number", "integer"):
        return _number(schema, types == "integer")
    if types == "array":
        items = strategy(schema.get("items", {}), root) if schema.get("items") else any_json
        lo = schema.get("minItems", 0)
        hi = min(schema.get("maxItems", _MAX_ARRAY), lo + _MAX_ARRAY)
        return st.lists(items, min_size=lo, max_size=hi)
    if types == "object":
        return _object(schema, root)
    return any_json


@cache
def valid(short: str) -> st.SearchStrategy[dict[str, Any]]:
    """Samples of the event (or envelope) ``short`` that its JSON Schema accepts."""
    schema = json_schema(short)
    return strategy(schema, schema)


def paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Where a value could be broken: every key and (the first few) array positions."""
    out = [prefix]
    if isinstance(value, dict):
        for key, sub in value.items():
            out.extend(paths(sub, (*prefix, key)))
    elif isinstance(value, list):
        for index, sub in enumerate(value[:3]):
            out.extend(paths(sub, (*prefix, index)))
    return out


def subschema(schema: dict[str, Any], root: dict[str, Any], path: tuple) -> dict[str, Any]:
    """The part of ``schema`` that governs the value at ``path`` ({} when nothing does)."""
    for part in path:
        schema, root = _resolve(schema, root)
        if isinstance(part, int):
            schema = schema.get("items") or {}
        elif part in schema.get("properties", {}):
            schema = schema["properties"][part]
        elif isinstance(schema.get("additionalProperties"), dict):
            schema = schema["additionalProperties"]
        else:
            return {}
    return _resolve(schema, root)[0]


def near_bounds(schema: dict[str, Any]) -> list[Any]:
    """Values on and just past each bound, enum and const of ``schema``."""
    out: list[Any] = []
    for key in ("minimum", "maximum", "exclusiveMinimum"):
        if key in schema:
            bound = schema[key]
            out += [bound, bound - 1, bound + 1, bound - 1e-9, bound + 1e-9, float(bound)]
    for key, step in (("minLength", -1), ("maxLength", 1), ("minItems", -1), ("maxItems", 1)):
        if key in schema and schema[key] + step >= 0:
            size = schema[key] + step
            out.append("a" * size if key.endswith("Length") else [0.5] * size)
    for allowed in schema.get("enum", []) + ([schema["const"]] if "const" in schema else []):
        if isinstance(allowed, str):  # an optional enum also allows null: no near miss of it
            out += [allowed.upper(), f"{allowed} ", allowed[:-1]]
    return out


@st.composite
def mutated(draw: Callable[..., Any], short: str) -> dict[str, Any]:
    """A valid sample broken in one place (which may, by chance, still be valid).

    One field (top level or nested) is dropped, or takes a value just past one of its
    bounds, a near-miss of its enum or const, a value of another type, or any JSON value.
    """
    schema = json_schema(short)
    sample = copy.deepcopy(draw(valid(short)))
    path = draw(st.sampled_from([p for p in paths(sample) if p]))
    parent: Any = sample
    for part in path[:-1]:
        parent = parent[part]
    last = path[-1]
    if isinstance(parent, dict) and draw(st.integers(0, 3)) == 0:
        del parent[last]  # drops a required field, or an optional one (still valid)
        return sample
    tricky = near_bounds(subschema(schema, schema, path)) + NASTY
    parent[last] = draw(st.sampled_from(tricky) | any_json)
    return sample


def wire(sample: Any) -> bytes:
    return orjson.dumps(sample)
