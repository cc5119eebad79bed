"""CommandRelay: clock ticks to the tasks this worker owns, and model-versions entries turned
into commands on the task's partition."""

from __future__ import annotations

import asyncio

from worker_fakes import FakeTopic, dict_tables, fake_app

from driftloop.schemas import ModelVersion, encode
from driftloop.schemas.commands import decode_command
from driftloop.schemas.settings import Settings
from driftloop.schemas.signing import sign_version
from driftloop.streams.liveness import Liveness
from driftloop.streams.ownership import Ownership
from driftloop.streams.partitioning import task_partition
from driftloop.streams.relay import CommandRelay


def relay_of(settings: Settings, app: object) -> CommandRelay:
    return CommandRelay(settings, FakeTopic("feedback"), dict_tables(settings),
                        Ownership(app, settings), Liveness())


def test_ticks_go_to_the_tasks_whose_partition_this_worker_owns():
    settings = Settings()
    tasks = [f"task{n}" for n in range(12)]
    relay = relay_of(settings, fake_app(("interactions", 0), ("interactions", 3)))
    for task in tasks:
        relay.tables.states[task] = relay.tables.state(task)
    relay.tables.states["gone"] = None
    sent = asyncio.run(relay.send_ticks())
    mine = [t for t in tasks if task_partition(t, 6) in (0, 3)]
    assert sent == len(mine) and [key for key, _, _ in relay.feedback.sent] == \
        [t.encode() for t in mine]
    assert {decode_command(value).kind for _, value, _ in relay.feedback.sent} == {"tick"}


def test_a_version_becomes_commands_and_an_unreadable_entry_is_counted():
    relay = relay_of(Settings(), fake_app())
    version = ModelVersion(version_id="v2", ts=1.0, task="t", base_model="m",
                           adapter_uri="file:///a/v2", sha256="0" * 64, size_bytes=1,
                           status="promoted")
    asyncio.run(relay.forward_version(encode(version)))
    [(key, value, headers)] = relay.feedback.sent
    command = decode_command(value)
    assert key == b"t" and (command.kind, command.version) == ("promoted", "v2") and headers
    asyncio.run(relay.forward_version(b"{not json"))
    assert relay.liveness.unreadable_versions == 1 and len(relay.feedback.sent) == 1


def test_a_signing_worker_forwards_signed_versions_only():
    settings = Settings(trust={"signing_key": "a shared key of the deployment"})
    relay = relay_of(settings, fake_app())
    version = ModelVersion(version_id="v2", ts=1.0, task="t", base_model="m",
                           adapter_uri="file:///a/v2", sha256="0" * 64, size_bytes=1,
                           status="promoted")
    forged = sign_version(version, "another key, not the deployment's")
    for event in (version, forged):
        asyncio.run(relay.forward_version(encode(event)))
    assert relay.feedback.sent == [] and relay.liveness.untrusted_versions == 2
    asyncio.run(relay.forward_version(encode(sign_version(version,
                                                          "a shared key of the deployment"))))
    [(_, value, _)] = relay.feedback.sent
    assert decode_command(value).version == "v2"
