"""Under ``adapter_per_domain`` the worker sends one training request per domain, end to end."""

from __future__ import annotations

import json

import pytest
from kafka_helpers import consume_until, produce
from stream_helpers import FAST_ENV, batches, feedback_for, interactions

from driftloop.schemas import Topic, TrainingRequest, decode

pytestmark = [pytest.mark.kafka]


def _new_examples(record) -> int:
    return decode(record.value, TrainingRequest).metadata["new_examples"]


async def test_a_manual_trigger_sends_one_single_domain_request_per_domain(kafka_settings,
                                                                           worker_factory):
    worker = worker_factory(**FAST_ENV, DRIFTLOOP_WORKER__TRIGGERS__ON_DRIFT="false",
                            DRIFTLOOP_TASKS=json.dumps({"sentiment":
                                                        {"adapter_per_domain": True}})).start()
    news, tweets = interactions(20, domain="news"), interactions(6, start=100, domain="tweets")
    await produce(kafka_settings, Topic.INTERACTIONS, batches(news + tweets), key="sentiment")
    await produce(kafka_settings, Topic.FEEDBACK, batches(feedback_for(news + tweets)),
                  key="sentiment")
    worker.wait_value("driftloop_worker_events_total", 26, task="sentiment", kind="joined")
    from driftloop.schemas.commands import manual_trigger
    from driftloop.streams.control import send_commands
    await send_commands(kafka_settings, [manual_trigger("sentiment", reason="per domain")])
    # Until every new example went out, whatever split the worker chose; then check it.
    records = await consume_until(
        kafka_settings, Topic.TRAINING_REQUESTS,
        lambda rs: sum(_new_examples(r) for r in rs) >= 26, timeout=30)
    requests = [decode(r.value, TrainingRequest) for r in records]
    assert [r.metadata["domain"] for r in requests] == ["news", "tweets"]
    assert [r.id for r in requests] == ["tr-sentiment-000001", "tr-sentiment-000002"]
    for request in requests:
        new = [e for e in request.examples if e.origin.value == "new"]
        assert {e.domain for e in new} == {request.metadata["domain"]}
        assert request.parent_version is None and request.trigger.value == "manual"
    assert [r.metadata["new_examples"] for r in requests] == [20, 6]
    assert worker.stop() == 0
