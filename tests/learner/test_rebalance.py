"""Two learners over one task through a rebalance: every pooled held-out example survives.

The second learner joins the group while the first is training, takes some of the request
partitions over, and both update the same task at the same time; each saves the task's gate
pool after its update. Saves are compare-and-swap with a merge (:mod:`.gate.pool_file`), so
the pool in the store ends with the held-out examples of every request.
"""

from __future__ import annotations

import asyncio
import threading

import pytest
from kafka_helpers import consume_until, produce
from learner_helpers import sentiment_request
from test_service import with_learner
from waiting import wait_until, wait_until_async

from driftloop.learner.gate.pool import GatePool
from driftloop.learner.gate.pool_file import GatePoolFile
from driftloop.learner.gate.split import held_out
from driftloop.learner.models.resident import ResidentModels
from driftloop.learner.service import LearnerService
from driftloop.learner.training.update import IncrementalUpdater, store_from_settings
from driftloop.schemas.codec import decode, encode
from driftloop.schemas.events import ModelVersion
from driftloop.schemas.topics import Topic

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

DOMAINS = ("tweets", "movies", "amazon")
HOLD_S = 180.0


class Signalling(IncrementalUpdater):
    """An updater that says when its first update begins and holds it until told to go on.

    Held, the first learner cannot finish every request before the second has joined (a fast
    machine did: the second was handed partitions whose requests were all committed).
    """

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.training = threading.Event()
        self.go_on = threading.Event()

    def update(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        self.training.set()
        self.go_on.wait(HOLD_S)  # on time out it goes on, and the test says why it failed
        return super().update(*args, **kwargs)


async def test_two_learners_through_a_rebalance_lose_no_pooled_example(
        kafka_settings, session_settings, resident_models, tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = with_learner(kafka_settings, session_settings, store=str(tmp_path / "store"))
    settings = settings.model_copy(update={"learner": settings.learner.model_copy(
        update={"gate_pool_size": 256, "metrics_port": None})})
    requests = [sentiment_request(f"r-{domain}", domain, n=48) for domain in DOMAINS]
    # One task's requests on every partition (a producer that keys them otherwise, or a
    # partition count raised since), so two learners can hold the same task at once.
    for partition, request in enumerate(requests):
        await produce(settings, Topic.TRAINING_REQUESTS, [encode(request)], key="sentiment",
                      partition=partition)
    first = LearnerService(settings, updater=Signalling(settings, models=resident_models))
    # Its own base models: two updates at once must not share one model's modules.
    second = LearnerService(settings, updater=IncrementalUpdater(
        settings, models=ResidentModels(capacity=1)))
    running = [asyncio.create_task(first.run())]
    try:
        assert isinstance(first.updater, Signalling)
        await asyncio.to_thread(wait_until, first.updater.training.is_set, 120,
                                "the first learner training")
        running.append(asyncio.create_task(second.run()))  # joins: the group rebalances
        try:  # the first learner's update is held until the second holds a partition
            await wait_until_async(lambda: bool(second.assignment()), HOLD_S,
                                   "the second learner holding a request partition")
        finally:
            first.updater.go_on.set()

        def every_request_published(records: list) -> bool:  # type: ignore[type-arg]
            ids = {decode(r.value, ModelVersion).training_request_id for r in records}
            return all(r.id in ids for r in requests) or any(t.done() for t in running)

        await consume_until(settings, Topic.MODEL_VERSIONS, every_request_published,
                            timeout=600)
    finally:
        first.stop()
        second.stop()
        ended = await asyncio.wait_for(asyncio.gather(*running, return_exceptions=True), 120)
    for outcome in ended:
        assert not isinstance(outcome, BaseException), outcome
    handled = [len(s.stats.published) + len(s.stats.skipped) for s in (first, second)]
    assert all(handled), f"both learners must update the task; handled {handled}"
    published = {e.training_request_id for s in (first, second) for e in s.stats.published}
    assert published == {r.id for r in requests}

    cfg = settings.learner
    store = store_from_settings(settings)
    pool = GatePool(capacity=cfg.gate_pool_size, max_bytes=cfg.gate_pool_max_bytes,
                    holdout_fraction=cfg.holdout_fraction, seed=cfg.seed)
    GatePoolFile(store.fs, store.root, deployment=settings.deployment_id).load("sentiment", pool)
    pooled = {e.input for e in pool.examples(pool.counts())}
    for request in requests:
        held = {e.input for e in request.examples
                if held_out(e.input, cfg.holdout_fraction, cfg.seed)}
        assert held, request.id
        assert held <= pooled, f"{len(held - pooled)} held-out examples of {request.id} lost"
