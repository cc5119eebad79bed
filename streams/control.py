"""Send commands to the workers (over Kafka, keyed by task).

The command contract is :mod:`driftloop.schemas.commands`.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..client.kafka import new_producer
from ..schemas.commands import Command, encode_command
from ..schemas.settings import Settings
from ..schemas.topics import Topic

__all__ = ["send_commands"]


async def send_commands(settings: Settings, commands: Iterable[Command]) -> int:
    """Publish commands on the feedback topic and wait for the broker's acks."""
    async with new_producer(settings) as producer:
        sent = 0
        for command in commands:
            key, value, headers = encode_command(command)
            await producer.send_and_wait(settings.kafka.topic(Topic.FEEDBACK), value, key=key,
                                         headers=headers)
            sent += 1
        return sent
