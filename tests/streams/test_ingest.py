"""Every kind of bad bytes becomes a dead letter with its reason; good events go on."""

from __future__ import annotations

import base64

import orjson
import pytest

from driftloop.schemas import Interaction, encode, encode_batch
from driftloop.streams.ingest import MAX_DEAD_LETTER_PAYLOAD, decode_message

GOOD = Interaction(id="i", ts=1, task="t", model_version="v", input="x", embedding=[0.1, 0.2])


@pytest.mark.parametrize("raw, reason", [
    (None, "empty"),
    (b"", "invalid_json"),
    (b"{not json", "invalid_json"),
    (b"\xff\xfe", "invalid_utf8"),
    (b"[1, 2]", "invalid_event"),
    (b'{"schema_name": "driftloop.interaction", "schema_version": 1}', "invalid_event"),
    (b'{"schema_name": "driftloop.batch", "schema_version": 1, "events": 3}', "invalid_batch"),
])
def test_bad_messages_become_one_dead_letter(raw, reason):
    out = decode_message(raw, Interaction, topic="ix", partition=2, offset=9, key=b"t")
    assert out.events == []
    [letter] = out.dead_letters
    assert (letter.reason, letter.source_topic, letter.partition, letter.offset) == \
        (reason, "ix", 2, 9)
    assert base64.b64decode(letter.payload_b64) == (raw or b"")
    assert base64.b64decode(letter.key_b64) == b"t"


def test_a_bad_event_inside_a_batch_is_its_own_dead_letter():
    raw = encode_batch([GOOD, GOOD.model_copy(update={"id": "j"})])
    data = orjson.loads(raw)
    data["events"].insert(1, {"id": 5})
    out = decode_message(orjson.dumps(data), Interaction, topic="ix", partition=0, offset=1)
    assert [e.id for e in out.events] == ["i", "j"]
    [letter] = out.dead_letters
    assert letter.event_index == 1
    assert orjson.loads(base64.b64decode(letter.payload_b64)) == {"id": 5}


def test_wrong_embedding_size_for_the_task_is_dead_lettered():
    out = decode_message(encode(GOOD), Interaction, topic="ix", partition=0, offset=1,
                         embedding_dims=lambda task: 3)
    assert out.events == [] and out.dead_letters[0].reason == "embedding_dim"


def test_huge_payloads_are_cut_and_marked():
    raw = b"x" * (MAX_DEAD_LETTER_PAYLOAD + 10)
    [letter] = decode_message(raw, Interaction, topic="ix", partition=0, offset=1).dead_letters
    assert letter.truncated and letter.payload_size == len(raw)
