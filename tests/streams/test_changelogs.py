"""Changelog topics: created before the worker starts, with configs that keep recovery short,
and brought up to date when an older version made them (real broker)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from aiokafka.admin import NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from driftloop.client.kafka import admin_client
from driftloop.schemas.settings import Settings
from driftloop.streams.changelogs import ensure_changelogs
from driftloop.streams.tables import CHANGELOG_CONFIGS

pytestmark = pytest.mark.kafka


def changelog(name: str, partitions: int = 2) -> SimpleNamespace:
    """What ensure_changelogs reads of a Faust table."""
    topic = SimpleNamespace(get_topic_name=lambda: name, config=dict(CHANGELOG_CONFIGS))
    return SimpleNamespace(partitions=partitions, changelog_topic=topic)


async def configs(settings: Settings, name: str) -> dict[str, str]:
    async with admin_client(settings) as admin:
        responses = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, name)])
    return {entry[0]: entry[1] for response in responses
            for *_, entries in response.resources for entry in entries}


async def test_a_new_changelog_rolls_segments_the_cleaner_can_compact(bare_kafka_settings) -> None:
    settings = bare_kafka_settings
    name = f"{settings.kafka.topic_prefix}state-changelog"
    assert await ensure_changelogs(settings, [changelog(name)]) == [name]
    found = await configs(settings, name)
    assert found["cleanup.policy"] == "compact"
    # Kafka's defaults (1 GiB, 7 days) keep every record in the active segment, uncompacted
    assert int(found["segment.ms"]) <= 60_000
    assert int(found["segment.bytes"]) <= 64 * 1024 * 1024
    assert int(found["segment.bytes"]) >= int(found["max.message.bytes"])


async def test_an_older_changelog_gets_the_configs_and_keeps_an_operators_own(
        bare_kafka_settings) -> None:
    settings = bare_kafka_settings
    name = f"{settings.kafka.topic_prefix}old-changelog"
    async with admin_client(settings) as admin:  # as the previous version made it
        await admin.create_topics([NewTopic(name, 2, 1, topic_configs={
            "cleanup.policy": "compact", "max.message.bytes": str(20 * 1024 * 1024),
            "min.insync.replicas": "1"})])  # the last one: set by an operator
    before = await configs(settings, name)
    assert before["segment.ms"] == str(7 * 24 * 3600 * 1000)

    await ensure_changelogs(settings, [changelog(name)])

    after = await configs(settings, name)
    assert {key: after[key] for key in CHANGELOG_CONFIGS} == CHANGELOG_CONFIGS
    assert after["min.insync.replicas"] == "1"
    await ensure_changelogs(settings, [changelog(name)])  # already up to date: nothing to do
    assert await configs(settings, name) == after
