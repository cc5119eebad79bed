"""ReviewDesk on the real broker: a restarted desk offers what is still pending and never
what was answered; offsets are committed only past settled requests (``review/desk.py``)."""

from __future__ import annotations

import pytest
from kafka_helpers import produce
from review_samples import feedback_on_topic, label_request, review_settings
from waiting import wait_until_async

from driftloop.client.kafka import admin_client
from driftloop.review import AlreadyAnswered, DeskNotReady, ReviewDesk, review_group
from driftloop.schemas import Feedback, Topic, encode
from driftloop.schemas.settings import Settings
from driftloop.tools.kafka.topic_admin import create_topics

pytestmark = [pytest.mark.kafka]


async def committed(settings: Settings, group: str) -> dict[int, int]:
    """The group's committed offsets on label-requests, by partition."""
    async with admin_client(settings) as admin:
        offsets = await admin.list_consumer_group_offsets(group)
    name = settings.kafka.topic(Topic.LABEL_REQUESTS)
    return {tp.partition: meta.offset for tp, meta in offsets.items() if tp.topic == name}


async def waiting(desk: ReviewDesk, count: int) -> list[str]:
    def seen() -> list[str] | None:
        ids = [r.id for r in desk.queue.pending()]
        return ids if len(ids) == count else None
    return await wait_until_async(seen, 30, f"{count} requests waiting at the desk",
                                  seen=lambda: [r.id for r in desk.queue.pending()])


async def test_a_restarted_desk_offers_the_pending_requests_and_never_the_answered(
        kafka_settings: Settings) -> None:
    settings = review_settings(kafka_settings, undo_window_s=0)
    requests = [label_request(n, priority=p) for n, p in enumerate((0.9, 0.8, 0.7, 0.6))]
    await produce(settings, Topic.LABEL_REQUESTS, [encode(r) for r in requests],
                  key="sentiment")  # one task, one partition, offsets 0..3
    group = review_group(settings)
    async with ReviewDesk(settings) as desk:
        assert await waiting(desk, 4) == ["lr-i0", "lr-i1", "lr-i2", "lr-i3"]
        desk.answer("lr-i0", "negative", reviewer="ann")
        desk.answer("lr-i2", "positive", reviewer="ann")
        await wait_until_async(lambda: desk.queue.settled("lr-i0")
                               and desk.queue.settled("lr-i2"), 30, "both answers published")
        # Committed up to the first request not answered (lr-i1, offset 1), not past it.
        [partition] = await wait_until_async(
            lambda: _one_at(settings, group, 1), 30, "the offset committed past lr-i0")
    assert (await committed(settings, group)) == {partition: 1}  # stop committed nothing more
    async with ReviewDesk(settings) as again:
        # lr-i2 is read again (its offset is after lr-i1's) but the feedback topic says it
        # was answered; lr-i0 is behind the committed offset.
        assert sorted(await waiting(again, 2)) == ["lr-i1", "lr-i3"]
        with pytest.raises(AlreadyAnswered):
            again.answer("lr-i2", "negative", reviewer="bob")
        again.answer("lr-i1", "negative", reviewer="bob")
        again.answer("lr-i3", "negative", reviewer="bob")
        await wait_until_async(lambda: _one_at(settings, group, 4), 30,
                               "the offset committed past every request")
    events = await feedback_on_topic(settings)
    assert sorted(e.metadata["label_request_id"] for e in events) == [
        "lr-i0", "lr-i1", "lr-i2", "lr-i3"]  # each request one label
    async with ReviewDesk(settings) as third:
        await wait_until_async(lambda: third.running, 10, "the third desk running")
        assert third.queue.pending() == []
        assert third.queue.counts()["sentiment"].answered == 4


async def _one_at(settings: Settings, group: str, offset: int) -> list[int]:
    """[the partition] once the group's only commit on label-requests is at ``offset``."""
    offsets = await committed(settings, group)
    return list(offsets) if list(offsets.values()) == [offset] else []


async def test_a_desk_stopped_within_the_undo_window_publishes_the_held_answers(
        kafka_settings: Settings) -> None:
    settings = review_settings(kafka_settings, undo_window_s=600)
    await produce(settings, Topic.LABEL_REQUESTS, [encode(label_request(1))], key="sentiment")
    async with ReviewDesk(settings) as desk:
        await waiting(desk, 1)
        desk.answer("lr-i1", "negative", reviewer="ann")
        assert desk.queue.unpublished == 1 and desk.published == 0
    assert desk.published == 1 and not desk.running
    assert [(e.id, e.value) for e in await feedback_on_topic(settings)] == [
        ("lr-i1.review", "negative")]
    await desk.stop()  # idempotent


async def test_a_desk_for_some_tasks_has_its_own_group_and_offers_only_them(
        kafka_settings: Settings) -> None:
    settings = review_settings(kafka_settings, undo_window_s=0)
    await produce(settings, Topic.LABEL_REQUESTS, [encode(label_request(1))], key="sentiment")
    await produce(settings, Topic.LABEL_REQUESTS,
                  [encode(label_request(2, task="toxicity"))], key="toxicity")
    async with ReviewDesk(settings, tasks=["toxicity"]) as toxicity:
        assert await waiting(toxicity, 1) == ["lr-i2"]
        assert toxicity.group_id.endswith(".toxicity")
    async with ReviewDesk(settings) as every:  # the other group still sees both
        assert sorted(await waiting(every, 2)) == ["lr-i1", "lr-i2"]


async def test_reviewer_answers_given_elsewhere_take_requests_off_the_desk(
        kafka_settings: Settings) -> None:
    settings = review_settings(kafka_settings, undo_window_s=0)
    await produce(settings, Topic.LABEL_REQUESTS,
                  [encode(label_request(n)) for n in (1, 2)], key="sentiment")
    async with ReviewDesk(settings) as desk:
        await waiting(desk, 2)
        elsewhere = Feedback(id="lr-i1.review", interaction_id="i1", ts=1.0, task="sentiment",
                             kind="label", value="negative", source="reviewer",
                             metadata={"label_request_id": "lr-i1", "reviewer": "studio"})
        user = Feedback(id="u-2", interaction_id="i2", ts=1.0, task="sentiment",
                        kind="label", value="negative")  # a user's, not an answer
        await produce(settings, Topic.FEEDBACK, [encode(elsewhere), encode(user)],
                      key="sentiment")
        assert await waiting(desk, 1) == ["lr-i2"]


async def test_a_desk_without_the_feedback_topic_does_not_start(bare_kafka_settings: Settings
                                                                ) -> None:
    settings = review_settings(bare_kafka_settings)
    desk = ReviewDesk(settings)
    with pytest.raises(DeskNotReady, match="does not exist"):
        await desk.start()
    assert not desk.running
    create_topics(settings)
    async with desk:
        assert desk.running
