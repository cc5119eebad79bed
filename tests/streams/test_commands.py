"""The worker's side of commands: its clock's ticks and its reading of ``model-versions``.

The contract itself (encoding, the refusal of bad commands) is tested in
``tests/schemas/test_command_contract.py``.
"""

from __future__ import annotations

from driftloop.schemas import ModelVersion
from driftloop.schemas.commands import COMMAND_HEADER, decode_command, encode_command
from driftloop.streams.commands import clock_tick, commands_from_version


def test_a_promoted_version_that_fails_its_challenges_becomes_two_commands():
    version = ModelVersion(version_id="v2", ts=1, task="t", base_model="m", adapter_uri="file:///a",
                           sha256="0" * 64, size_bytes=1, status="promoted",
                           metrics_after={"challenge_score": 0.5})
    kinds = [c.kind for c in commands_from_version(version, challenge_min_score=0.9)]
    assert kinds == ["promoted", "challenge"]
    assert [c.kind for c in commands_from_version(version, challenge_min_score=None)] == \
        ["promoted"]


def test_candidates_and_rejections_become_ab_commands_only_when_asked():
    candidate = ModelVersion(version_id="v3", ts=2, task="t", base_model="m",
                             adapter_uri="file:///a", sha256="0" * 64, size_bytes=1,
                             status="candidate", metadata={"note": "x" * 100_000})
    [command] = commands_from_version(candidate, challenge_min_score=0.9, candidates=True)
    assert (command.kind, command.id, command.event["version_id"]) == ("candidate",
                                                                       "candidate-v3", "v3")
    # The event rides along, larger than a plain command may be.
    _, value, headers = encode_command(command)
    assert len(value) > 100_000 and decode_command(value) == command
    assert headers == [(COMMAND_HEADER, b"candidate")]
    rejected = candidate.model_copy(update={"status": "rejected", "reason": "lost"})
    assert [(c.kind, c.reason) for c in commands_from_version(
        rejected, challenge_min_score=None, candidates=True)] == [("rejected", "lost")]
    assert commands_from_version(candidate, challenge_min_score=None) == []


def test_a_clock_tick_round_trips_with_its_header():
    tick = clock_tick("sentiment", now=12.0)
    key, value, headers = encode_command(tick)
    assert key == b"sentiment" and headers == [(COMMAND_HEADER, b"tick")]
    assert decode_command(value) == tick and tick.ts == 12.0
    assert clock_tick("sentiment").id != clock_tick("sentiment").id


def test_every_decided_version_answers_its_training_request():
    for status in ("promoted", "rejected", "candidate"):
        version = ModelVersion(version_id="v2", ts=1, task="t", base_model="m",
                               adapter_uri="file:///a", sha256="0" * 64, size_bytes=1,
                               status=status, training_request_id="tr-t-000007")
        commands = commands_from_version(version, challenge_min_score=None, candidates=True)
        assert (commands[0].kind.value, commands[0].request) == ("answered", "tr-t-000007")
        _, body, _ = encode_command(commands[0])
        assert decode_command(body).request == "tr-t-000007"
