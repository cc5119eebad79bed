"""A backlog on the real broker: queued requests of one task and domain train once, on the
newest, and a request re-read after its version was published is skipped."""

from __future__ import annotations

import pytest
from learner_helpers import sentiment_request
from test_service import run_service, session_updater, with_learner

from driftloop.learner.registry.version_log import SUPERSEDED_METADATA_KEY
from driftloop.learner.service import LearnerService
from driftloop.schemas.codec import encode
from driftloop.schemas.events import TrainingRequest
from driftloop.schemas.topics import Topic

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def in_domain(request: TrainingRequest, domain: str) -> TrainingRequest:
    """The request with its examples named as the domain they come from."""
    return request.model_copy(update={"examples": [
        e.model_copy(update={"domain": domain}) for e in request.examples]})


async def test_a_backlog_of_one_task_and_domain_trains_once_on_the_newest(
        kafka_settings, session_settings, updater, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from kafka_helpers import consume_until, produce

    settings = with_learner(kafka_settings, session_settings, store=str(tmp_path / "store"))
    settings = settings.model_copy(update={"learner": settings.learner.model_copy(
        update={"metrics_port": None})})
    movies = [in_domain(sentiment_request(f"b{i}", "movies", n=32, seed=i), "movies")
              for i in range(4)]
    nyt = in_domain(sentiment_request("b-nyt", "nyt", n=32), "nyt")
    # All queued before the learner starts, on one partition (one key): a burst of triggers.
    raw = [encode(r) for r in movies] + [encode(nyt)]
    versions = await run_service(settings, session_updater(settings, updater), raw, 2)

    assert [v.training_request_id for v in versions] == ["b3", "b-nyt"]
    assert versions[0].metadata[SUPERSEDED_METADATA_KEY] == ["b0", "b1", "b2"]
    assert SUPERSEDED_METADATA_KEY not in versions[1].metadata  # another domain: trained alone
    counts = versions[0].metadata["examples"]
    distinct = {(e.input, e.target) for r in movies for e in r.examples}
    assert sum(counts.values()) == len(distinct) > 32  # the older ones' examples joined

    # An older request read again (a crash before the commit, a producer's retry): covered.
    await produce(settings, Topic.TRAINING_REQUESTS, [encode(movies[1])], key="sentiment")
    again = LearnerService(settings, updater=session_updater(settings, updater),
                           max_requests=1)
    stats = await again.run()
    assert len(stats.skipped) == 1 and not stats.published
    records = await consume_until(settings, Topic.MODEL_VERSIONS, 2, timeout=30)
    assert len(records) == 2


async def test_with_coalescing_off_every_request_trains_alone(
        kafka_settings, session_settings, updater, tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = with_learner(kafka_settings, session_settings, store=str(tmp_path / "store"))
    settings = settings.model_copy(update={"learner": settings.learner.model_copy(
        update={"metrics_port": None, "coalesce_max": 1})})
    raw = [encode(sentiment_request(f"c{i}", "movies", n=24, seed=i)) for i in range(2)]
    versions = await run_service(settings, session_updater(settings, updater), raw, 2)
    assert [v.training_request_id for v in versions] == ["c0", "c1"]
