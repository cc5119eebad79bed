"""The command contract (``schemas/commands.py``): the wire form, its header, bad commands.

Not ``test_commands.py``: the test modules share one namespace, and that name is the worker's
side (``tests/streams/test_commands.py``).
"""

from __future__ import annotations

import orjson
import pytest

from driftloop.schemas import (
    COMMAND_HEADER,
    MAX_COMMAND_BYTES,
    Command,
    CommandError,
    CommandKind,
    ValidationError,
    decode_command,
    encode_command,
    manual_trigger,
)


def test_round_trip_and_header():
    command = manual_trigger("sentiment", reason="new data", id="c1")
    key, value, headers = encode_command(command)
    assert key == b"sentiment" and headers == [(COMMAND_HEADER, b"trigger")]
    assert decode_command(value) == command


def test_the_wire_form_is_the_fields_in_order_and_the_kind_a_plain_string():
    command = Command(id="c1", task="sentiment", kind="promoted", version="v2", ts=1.5)
    _, value, _ = encode_command(command)
    assert value == (b'{"id":"c1","task":"sentiment","kind":"promoted","reason":"",'
                     b'"version":"v2","ts":1.5,"event":null}')
    assert command.kind is CommandKind.PROMOTED and command.kind == "promoted"


@pytest.mark.parametrize("value", [None, b"nope", b"[]", b'{"id": "c", "task": "t"}',
                                   b'{"id": "c", "task": "t", "kind": "explode"}',
                                   b'{"id": "", "task": "t", "kind": "trigger"}'])
def test_bad_commands_are_refused(value):
    with pytest.raises(CommandError):
        decode_command(value)


@pytest.mark.parametrize("value", [
    b'{"id": "c", "task": "t", "kind": "candidate", "version": "v", "event": [1]}',
    b'{"id": "c", "task": "t", "kind": "trigger", "reason": "' + b"x" * 70_000 + b'"}',
    b'{"id": "c", "task": "t", "kind": "candidate", "reason": "' + b"x" * (1 << 20) + b'"}',
])
def test_bad_candidate_commands_are_refused(value):
    with pytest.raises(CommandError):
        decode_command(value)


def test_a_bad_command_is_a_validation_error_with_the_dead_letter_code():
    with pytest.raises(ValidationError) as caught:
        decode_command(b"[]")
    assert caught.value.code == "invalid_command"
    assert str(caught.value) == "command must be a JSON object"


def test_a_task_name_with_a_final_newline_is_refused_as_in_the_json_schema():
    with pytest.raises(CommandError, match="is not a task name"):
        decode_command(b'{"id": "c", "task": "sentiment\\n", "kind": "trigger"}')


def test_a_command_larger_than_any_command_is_refused_unread() -> None:
    body = orjson.dumps({"id": "c", "task": "t", "kind": "trigger",
                         "reason": "x" * MAX_COMMAND_BYTES})
    with pytest.raises(CommandError, match="limit is 65536"):
        decode_command(body)
