"""The changelog codec refuses anything outside its allowlist (a tampered changelog)."""

from __future__ import annotations

import os
import pickle

import pytest

from driftloop.streams.detectors import DriftMonitor
from driftloop.streams.errors import StateError
from driftloop.streams.state_codec import StateCodec, dumps, loads


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo owned",))


def test_river_state_round_trips():
    monitor = DriftMonitor()
    monitor.update_many([0.1] * 2_000)
    assert loads(dumps(monitor)).events_seen == 2_000


@pytest.mark.parametrize("payload", [
    pickle.dumps(_Evil()),
    b"\x80\x05\x95\x1c\x00\x00\x00\x00\x00\x00\x00\x8c\x08builtins\x94\x8c\x04eval\x94\x93\x94.",
    b"not a pickle",
    b"",
])
def test_untrusted_payloads_are_refused(payload):
    with pytest.raises(StateError):
        loads(payload)


def test_dunder_attribute_access_is_refused():
    # getattr(<allowed object>, "__globals__") is the classic escape from an allowlist.
    payload = (b"\x80\x04\x8c\x08builtins\x8c\x07getattr\x93\x8c\x08builtins\x8c\x05print"
               b"\x93\x8c\x0b__globals__\x86R.")
    with pytest.raises(StateError):
        loads(payload)


def test_faust_codec_uses_the_same_rules():
    codec = StateCodec()
    assert codec.loads(codec.dumps({"a": 1})) == {"a": 1}
    with pytest.raises(StateError):
        codec.loads(pickle.dumps(_Evil()))
