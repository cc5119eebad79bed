"""Topic creation and listing against the real session broker."""

from __future__ import annotations

import uuid

import pytest
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from driftloop.client.kafka import admin_client
from driftloop.schemas.settings import Settings
from driftloop.schemas.topics import TOPIC_SPECS, TRAINING_REQUEST_MAX_BYTES, Topic
from driftloop.tools.errors import TopicsError
from driftloop.tools.kafka.topic_admin import (
    acreate_topics,
    adelete_topics,
    alist_topics,
    create_topics,
    list_topics,
    topic_names,
    topics_to_delete,
)

pytestmark = pytest.mark.kafka

_DAY_MS = 24 * 3600 * 1000


def fresh(settings: Settings) -> Settings:
    """The same broker under a prefix nobody has used yet."""
    return settings.model_copy(update={"kafka": settings.kafka.model_copy(
        update={"topic_prefix": f"p{uuid.uuid4().hex[:10]}."})})


async def describe(settings: Settings, topics: list[Topic]) -> dict[str, dict[str, str]]:
    """Topic-level configs as the broker reports them (name -> config -> value)."""
    async with admin_client(settings) as admin:
        responses = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, settings.kafka.topic(t)) for t in topics])
    found: dict[str, dict[str, str]] = {}
    for response in responses:
        for _code, _message, _type, name, entries in response.resources:
            found[name] = {entry[0]: entry[1] for entry in entries}
    return found


async def partition_counts(settings: Settings) -> dict[str, int]:
    async with admin_client(settings) as admin:
        described = await admin.describe_topics(topic_names(settings))
    return {t["topic"]: len(t["partitions"]) for t in described}


async def test_creation_makes_every_topic_with_its_partitions(bare_kafka_settings) -> None:
    settings = bare_kafka_settings
    created = await acreate_topics(settings)
    assert created == topic_names(settings)  # TOPIC_SPECS order
    assert await partition_counts(settings) == {
        settings.kafka.topic(topic): spec.partitions for topic, spec in TOPIC_SPECS.items()}


async def test_creation_is_idempotent(kafka_settings) -> None:
    # The fixture already created them: nothing new, no error.
    assert await acreate_topics(kafka_settings) == []
    assert create_topics(kafka_settings) == []  # the sync form, from inside a running loop


async def test_creation_applies_the_topic_configs(kafka_settings) -> None:
    configs = await describe(kafka_settings, [Topic.TRAINING_REQUESTS, Topic.MODEL_VERSIONS,
                                              Topic.INTERACTIONS, Topic.LABEL_REQUESTS])
    training = configs[kafka_settings.kafka.topic(Topic.TRAINING_REQUESTS)]
    assert training["max.message.bytes"] == str(TRAINING_REQUEST_MAX_BYTES)
    assert training["retention.ms"] == str(30 * _DAY_MS)
    versions = configs[kafka_settings.kafka.topic(Topic.MODEL_VERSIONS)]
    assert versions["retention.ms"] == "-1"
    assert versions["retention.bytes"] == "-1"
    assert versions["cleanup.policy"] == "delete"  # history, not compacted
    interactions = configs[kafka_settings.kafka.topic(Topic.INTERACTIONS)]
    assert interactions["retention.ms"] == str(7 * _DAY_MS)
    assert interactions["max.message.bytes"] == str(8 * 1024 * 1024)
    for name, values in configs.items():
        spec = TOPIC_SPECS[Topic(name.removeprefix(kafka_settings.kafka.topic_prefix))]
        assert {key: values[key] for key in spec.configs} == spec.configs


async def test_a_partition_override_applies_to_every_new_topic(bare_kafka_settings) -> None:
    settings = bare_kafka_settings
    await acreate_topics(settings, partitions=1)
    assert set((await partition_counts(settings)).values()) == {1}


@pytest.mark.parametrize("partitions", [0, -3])
async def test_a_partition_count_below_one_is_refused(partitions) -> None:
    with pytest.raises(ValueError, match="partitions must be at least 1"):
        await acreate_topics(Settings(), partitions=partitions)  # refused before connecting


async def test_listing_sees_only_its_own_prefix(kafka_settings) -> None:
    other = fresh(kafka_settings)
    assert await alist_topics(other) == []
    await acreate_topics(other, partitions=1)
    try:
        assert await alist_topics(kafka_settings) == sorted(topic_names(kafka_settings))
        assert await alist_topics(other) == sorted(topic_names(other))
        everything = await alist_topics(other, all_topics=True)
        assert set(topic_names(kafka_settings)) | set(topic_names(other)) <= set(everything)
    finally:
        await adelete_topics(other)


def test_the_sync_forms_work_without_a_loop(bare_kafka_settings) -> None:
    settings = bare_kafka_settings
    assert create_topics(settings, partitions=1) == topic_names(settings)
    assert list_topics(settings) == sorted(topic_names(settings))


async def test_a_name_the_broker_refuses_raises_topics_error(bare_kafka_settings) -> None:
    # Kafka topic names are at most 249 characters; the prefix pattern alone allows more.
    settings = bare_kafka_settings.model_copy(update={
        "kafka": bare_kafka_settings.kafka.model_copy(update={"topic_prefix": "x" * 240 + "."})})
    with pytest.raises(TopicsError, match="refused to create"):
        await acreate_topics(settings, partitions=1)


async def test_an_unreachable_broker_raises_topics_error(unused_port) -> None:
    settings = Settings(kafka={"bootstrap_servers": f"127.0.0.1:{unused_port}"})
    with pytest.raises(TopicsError, match=r"cannot create topics on 127\.0\.0\.1"):
        await acreate_topics(settings)
    with pytest.raises(TopicsError, match=r"cannot list topics on 127\.0\.0\.1"):
        await alist_topics(settings)


async def test_deletion_removes_everything_under_the_prefix_only(kafka_settings) -> None:
    settings = fresh(kafka_settings)
    await acreate_topics(settings, partitions=1)
    assert sorted(await adelete_topics(settings)) == sorted(topic_names(settings))
    assert await alist_topics(settings) == []
    assert await adelete_topics(settings) == []  # idempotent
    assert await alist_topics(kafka_settings) == sorted(topic_names(kafka_settings))


def test_deletion_without_a_prefix_picks_only_driftloop_topics() -> None:
    # Neighbours on a shared broker must survive a prefix-less delete; checked on names only,
    # since really deleting unprefixed topics could hit another test of this session.
    present = ["feedback", "orders", "__consumer_offsets", "t1.feedback", "model-versions"]
    assert topics_to_delete(Settings(), present) == ["feedback", "model-versions"]
    assert topics_to_delete(Settings(kafka={"topic_prefix": "t1."}), present) == ["t1.feedback"]
