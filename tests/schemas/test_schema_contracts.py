"""Each JSON Schema file and its Python type judge every sample the same way.

A producer in any language validates against ``schemas/json``; driftloop decodes with the
pydantic types (and the command with :func:`~driftloop.schemas.decode_command`). Hypothesis
draws samples from each file's shape, valid ones and ones broken in one place, and both
verdicts must agree.
"""

from __future__ import annotations

import copy
import dataclasses
import enum
import types
import typing
from typing import Any

import jsonschema
import pytest
from contract_strategies import (
    NASTY,
    ContractValidator,
    mutated,
    near_bounds,
    paths,
    subschema,
    valid,
    validator,
    wire,
)
from event_samples import FULL
from hypothesis import given
from pydantic import BaseModel

from driftloop.schemas import (
    BATCH_SCHEMA_NAME,
    EVENT_TYPES,
    JSON_SCHEMA_NAMES,
    Command,
    Event,
    Feedback,
    Interaction,
    Scores,
    TrainingExample,
    ValidationError,
    decode,
    decode_batch,
    decode_command,
    enums,
    json_schema,
)
from driftloop.schemas.codec import event_short_name, to_dict

EVENTS = {event_short_name(cls): cls for cls in EVENT_TYPES.values()}
# The contracts a Python decoder judges: the events, and the command (no schema_name: the
# Kafka header marks it).
JUDGED = [*EVENTS, "command"]
ENVELOPED = [short for short in JSON_SCHEMA_NAMES if short != "command"]
# One fully populated command: every field set, an unknown one too.
FULL_COMMAND = {"id": "candidate-v4", "task": "sentiment", "kind": "candidate",
                "reason": "gate passed", "version": "v4", "ts": 1_700_000_005.0,
                "event": {"version_id": "v4", "status": "candidate"}, "sent_by": "registry"}
# The $defs of the files and the nested Python models they stand for.
NESTED: dict[str, type[BaseModel]] = {"scores": Scores, "training_example": TrainingExample}


def python_accepts(raw: bytes, cls: type[Event]) -> bool:
    try:
        decode(raw, cls)
    except ValidationError:
        return False
    return True


def command_accepted(raw: bytes) -> bool:
    try:
        decode_command(raw)
    except ValidationError:
        return False
    return True


def disagreement(sample: Any, short: str) -> str | None:
    expected = validator(short).is_valid(sample)
    got = command_accepted(wire(sample)) if short == "command" \
        else python_accepts(wire(sample), EVENTS[short])
    if expected == got:
        return None
    errors = [e.message for e in validator(short).iter_errors(sample)]
    return (f"JSON Schema says {'valid' if expected else errors}, "
            f"driftloop says {'valid' if got else 'invalid'} for {sample!r}")


def assert_same_verdict(sample: Any, short: str) -> None:
    problem = disagreement(sample, short)
    if problem:
        pytest.fail(problem)


# -- the files themselves ---------------------------------------------------------------

@pytest.mark.parametrize("short", JSON_SCHEMA_NAMES)
def test_each_file_is_a_valid_draft_2020_12_schema(short: str) -> None:
    schema = json_schema(short)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == f"https://driftloop.dev/schemas/{short}/1"
    assert schema["additionalProperties"] is True  # unknown fields are tolerated


@pytest.mark.parametrize("short", ENVELOPED)
def test_each_event_file_names_its_contract_and_version(short: str) -> None:
    schema = json_schema(short)
    assert schema["properties"]["schema_name"] == {
        "const": f"driftloop.{short}", "description": schema["properties"]["schema_name"]
        ["description"]}
    assert schema["properties"]["schema_version"]["type"] == "integer"
    assert schema["properties"]["schema_version"]["minimum"] == 1
    assert {"schema_name", "schema_version"} <= set(schema["required"])


def test_the_command_file_is_the_wire_form_of_the_command_type() -> None:
    # Byte-compatible with what workers have always read: the dataclass's fields, no
    # schema_name (the driftloop-command header marks a command).
    schema = json_schema(Command)
    assert schema == json_schema("command")
    assert list(schema["properties"]) == [f.name for f in dataclasses.fields(Command)]
    assert "schema_name" not in schema["properties"]


def _object_schemas(schema: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    found = [("", schema)]
    found += [(name, sub) for name, sub in schema.get("$defs", {}).items()]
    return found


@pytest.mark.parametrize("short", JSON_SCHEMA_NAMES)
def test_every_property_has_a_description(short: str) -> None:
    for where, obj in _object_schemas(json_schema(short)):
        assert obj.get("description"), f"{short} {where or 'root'} has no description"
        for name, prop in obj["properties"].items():
            assert prop.get("description"), f"{short}.{name} has no description"


def _model_of(short: str, where: str) -> type[BaseModel]:
    return NESTED[where] if where else EVENTS[short]


@pytest.mark.parametrize("short", list(EVENTS))
def test_properties_required_and_defaults_match_the_python_type(short: str) -> None:
    for where, obj in _object_schemas(json_schema(short)):
        model = _model_of(short, where)
        fields = model.model_fields
        assert set(obj["properties"]) == set(fields), f"{short} {where}"
        required = {name for name, f in fields.items() if f.is_required()}
        assert set(obj.get("required", [])) == required, f"{short} {where}"
        for name, prop in obj["properties"].items():
            if "default" in prop:
                default = fields[name].get_default(call_default_factory=True)
                if isinstance(default, BaseModel):
                    default = default.model_dump(exclude_none=True)
                assert prop["default"] == default, f"{short}.{name}"


def _enum_of(annotation: Any) -> type[enum.Enum] | None:
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return annotation
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        found = [_enum_of(arg) for arg in typing.get_args(annotation)]
        return next((e for e in found if e), None)
    return None


def test_command_properties_required_and_defaults_match_the_python_type() -> None:
    schema = json_schema("command")
    fields = {f.name: f for f in dataclasses.fields(Command)}
    assert set(schema["properties"]) == set(fields)
    required = {name for name, f in fields.items()
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
    assert set(schema["required"]) == required
    for name, prop in schema["properties"].items():
        if "default" in prop:
            assert prop["default"] == fields[name].default, name


def test_the_command_kinds_in_the_file_equal_the_python_enum() -> None:
    hints = typing.get_type_hints(Command)
    for name, prop in json_schema("command")["properties"].items():
        python_enum = _enum_of(hints[name])
        if python_enum is None:
            assert "enum" not in prop, name
        else:
            assert prop["enum"] == [member.value for member in python_enum], name


@pytest.mark.parametrize("short", list(EVENTS))
def test_every_enum_in_the_files_equals_the_python_enum(short: str) -> None:
    for where, obj in _object_schemas(json_schema(short)):
        fields = _model_of(short, where).model_fields
        for name, field in fields.items():
            python_enum = _enum_of(field.annotation)
            prop = obj["properties"][name]
            if python_enum is None:
                assert "enum" not in prop, f"{short}.{name}"
            else:
                values: list[Any] = [member.value for member in python_enum]
                if "null" in prop.get("type", []):  # an optional enum lists null too
                    values.append(None)
                assert prop["enum"] == values, f"{short}.{name}"


def test_every_python_enum_appears_in_some_file() -> None:
    used = set()
    for short in EVENTS:
        for where, _ in _object_schemas(json_schema(short)):
            used |= {_enum_of(f.annotation) for f in _model_of(short, where).model_fields.values()}
    used |= {_enum_of(hint) for hint in typing.get_type_hints(Command).values()}
    assert {getattr(enums, name) for name in enums.__all__} <= used


def test_feedback_value_depends_on_kind_in_both() -> None:
    base = {"schema_name": "driftloop.feedback", "schema_version": 1, "id": "f",
            "interaction_id": "i", "ts": 0, "task": "t"}
    for kind, value, ok in [("rating", 4, True), ("rating", "five", False),
                            ("label", "pos", True), ("label", 1, False),
                            ("correction", "better", True), ("correction", 2.5, False),
                            ("rating", True, False)]:
        sample = {**base, "kind": kind, "value": value}
        assert validator("feedback").is_valid(sample) is ok
        assert python_accepts(wire(sample), Feedback) is ok


def test_python_re_dollar_is_the_one_deviation_of_the_reference_validator() -> None:
    # Plain jsonschema lets "sentiment\n" through (Python's `$`); ECMA-262, which JSON
    # Schema names, and driftloop do not. ContractValidator differs only there.
    sample = {"schema_name": "driftloop.interaction", "schema_version": 1, "id": "i",
              "ts": 0, "task": "sentiment\n", "model_version": "v", "input": "x"}
    plain = jsonschema.Draft202012Validator(json_schema("interaction"))
    assert plain.is_valid(sample)
    assert not ContractValidator(json_schema("interaction")).is_valid(sample)
    assert not python_accepts(wire(sample), Interaction)


# -- the same verdict on every one-place break of a full sample -------------------------

_DELETE = object()


def _broken(sample: dict[str, Any], path: tuple, value: Any) -> dict[str, Any]:
    out = copy.deepcopy(sample)
    parent: Any = out
    for part in path[:-1]:
        parent = parent[part]
    if value is _DELETE:
        if isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent.pop(path[-1])
    else:
        parent[path[-1]] = value
    return out


def _broken_every_way(sample: dict[str, Any], short: str) -> None:
    # Exhaustive where hypothesis samples: every field (nested ones too) deleted, pushed
    # past each of its bounds, or replaced by each tricky value, so a lax type cannot hide.
    schema = json_schema(short)
    assert validator(short).is_valid(sample)
    problems = [problem
                for path in paths(sample) if path
                for value in [_DELETE, *near_bounds(subschema(schema, schema, path)), *NASTY]
                if (problem := disagreement(_broken(sample, path, value), short))]
    assert not problems, f"{len(problems)} disagreements, e.g.\n" + "\n".join(problems[:5])


@pytest.mark.parametrize("event", FULL, ids=lambda e: event_short_name(type(e)))
def test_every_field_broken_every_way_gets_the_same_verdict(event: Event) -> None:
    _broken_every_way(to_dict(event), event_short_name(type(event)))


def test_every_command_field_broken_every_way_gets_the_same_verdict() -> None:
    _broken_every_way(FULL_COMMAND, "command")


# -- the same verdict on drawn samples ----------------------------------------------------

@pytest.mark.parametrize("short", JUDGED)
def test_valid_samples_are_accepted_by_both(short: str) -> None:
    @given(valid(short))
    def check(sample: dict[str, Any]) -> None:
        assert validator(short).is_valid(sample), list(validator(short).iter_errors(sample))
        assert_same_verdict(sample, short)

    check()


@pytest.mark.parametrize("short", JUDGED)
def test_mutated_samples_get_the_same_verdict(short: str) -> None:
    @given(mutated(short))
    def check(sample: dict[str, Any]) -> None:
        assert_same_verdict(sample, short)

    check()


@given(mutated("batch"))
def test_batch_envelopes_get_the_same_verdict(sample: dict[str, Any]) -> None:
    # Events inside are judged one by one; only a broken envelope fails the message.
    expected = validator("batch").is_valid(sample)
    try:
        decode_batch(wire(sample), Feedback)
        got = True
    except ValidationError:
        got = False
    if sample.get("schema_name") != BATCH_SCHEMA_NAME:
        expected = got = False  # not an envelope: read as one (here invalid) Feedback
    assert expected == got, sample
