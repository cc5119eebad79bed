"""VersionFeed on the real broker: the whole log folded, unreadable records counted, caught up."""

from __future__ import annotations

from pathlib import Path

import pytest
from kafka_helpers import produce
from serving_helpers import TASK, publish, store, version_event
from waiting import wait_until_async

from driftloop.learner.errors import ServingError
from driftloop.learner.serving import VersionFeed
from driftloop.schemas import Topic
from driftloop.schemas.settings import Settings

pytestmark = pytest.mark.kafka


async def read_until(feed: VersionFeed, done, timeout: float = 30.0) -> list[str]:  # type: ignore[no-untyped-def]
    """Version ids of the events read until ``done()`` holds."""
    seen: list[str] = []

    async def read_more() -> bool:
        if done():
            return True
        _, events = await feed.read()
        seen.extend(e.version_id for e in events)
        return False

    await wait_until_async(read_more, timeout, "the feed condition", interval=0,
                           seen=lambda: f"{seen} read")
    return seen


async def test_the_log_at_start_is_folded_before_the_feed_is_caught_up(  # type: ignore[no-untyped-def]
        kafka_settings: Settings, tmp_path: Path) -> None:
    folder = tmp_path / "adapter"
    folder.mkdir()
    (folder / "adapter_model.safetensors").write_bytes(b"weights")
    stored = store(kafka_settings, folder)
    await publish(kafka_settings, version_event("v1", stored))
    await produce(kafka_settings, Topic.MODEL_VERSIONS, [b"{not json"], key=TASK)
    await publish(kafka_settings, version_event("v2", stored, parent="v1"))
    feed = VersionFeed(kafka_settings)
    await feed.start()
    try:
        assert feed.running
        seen: list[str] = []
        while await feed.behind():
            _, events = await feed.read()
            seen += [e.version_id for e in events]
        assert seen == ["v1", "v2"] and feed.bad_records == 1
        assert feed.versions.head(TASK).version_id == "v2"
        # After the catch-up, new events keep coming in; the feed stays caught up.
        await publish(kafka_settings, version_event("v3", stored, status="candidate"))
        assert await read_until(feed, lambda: "v3" in feed.versions) == ["v3"]
        assert not await feed.behind()
    finally:
        await feed.stop()
        await feed.stop()  # idempotent
    assert not feed.running
    with pytest.raises(ServingError, match="not started"):
        await feed.read()


async def test_a_missing_topic_fails_start_with_its_name(kafka_broker, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    settings = Settings(kafka={"bootstrap_servers": kafka_broker.bootstrap_servers,
                               "topic_prefix": "no-feed-here."},
                        serving={"cache_dir": tmp_path / "cache"})
    feed = VersionFeed(settings)
    with pytest.raises(ServingError, match=r"no-feed-here\.model-versions does not exist"):
        await feed.start()
    assert not feed.running
