"""One federated round over Kafka: read offers, dead-letter refusals, merge, gate, publish.

``driftloop aggregate`` runs this. The round reads ``site-adapters`` and ``model-versions``
up to their end offsets, lets :class:`~driftloop.learner.federated.aggregator.FederatedAggregator`
check and merge each site's latest offer for the task, sends every refused or undecodable
offer to ``dead-letters`` (with the reason) and appends the merged version to
``model-versions``. A round whose offers were already merged (same sites, sha256 and counts)
publishes nothing: its version id is in the registry.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from aiokafka import AIOKafkaProducer
from aiokafka.structs import ConsumerRecord

from ...client.kafka import new_producer
from ...schemas.codec import decode, encode
from ...schemas.enums import DeadLetterReason
from ...schemas.errors import ValidationError
from ...schemas.events import DeadLetter, ModelVersion, SiteAdapter, TrainingExample
from ...schemas.settings import Settings
from ...schemas.topics import Topic
from ..registry.version_log import version_id_for
from ..topics.sites import read_offers
from ..topics.versions import publish_versions, read_version_log
from .aggregator import FederatedAggregator
from .offers import Offer, Refusal

__all__ = ["RoundOutcome", "run_round"]

log = logging.getLogger(__name__)
AGGREGATOR = "driftloop-aggregator"
DEAD_LETTER_PAYLOAD_BYTES = 64 * 1024


@dataclass(slots=True)
class RoundOutcome:
    """What a round did: the published version (or the one found), and what it refused."""

    event: ModelVersion | None = None
    already_published: bool = False
    refused: list[str] = field(default_factory=list)
    dead_letters: int = 0


def _decode_offers(records: Sequence[ConsumerRecord]) -> tuple[list[Offer], list[Refusal]]:
    offers, bad = [], []
    for record in records:
        where = f"{record.topic}[{record.partition}]@{record.offset}"
        raw = record.value or b""
        try:
            adapter = decode(raw, SiteAdapter)
        except ValidationError as exc:
            placeholder = Offer(_UNREADABLE, where, record.partition, record.offset, raw)
            bad.append(Refusal(placeholder, f"{exc.code}: {exc}"))
            continue
        offers.append(Offer(adapter, where, record.partition, record.offset, raw))
    return offers, bad


_UNREADABLE = SiteAdapter(ts=0.0, site="?", task="unreadable", version_id="?", base_model="?",
                          adapter_uri="?", sha256="0" * 64, size_bytes=0, examples=0, lora_r=1,
                          lora_alpha=1.0)


async def _dead_letter(producer: AIOKafkaProducer, settings: Settings, topic: str,
                       refusal: Refusal, reason: str) -> None:
    raw = refusal.offer.raw
    letter = DeadLetter(
        ts=time.time(), source_topic=topic, partition=refusal.offer.partition,
        offset=refusal.offer.offset, reason=reason, error=refusal.reason[:4096],
        payload_b64=base64.b64encode(raw[:DEAD_LETTER_PAYLOAD_BYTES]).decode(),
        payload_size=len(raw), truncated=len(raw) > DEAD_LETTER_PAYLOAD_BYTES,
        consumer=AGGREGATOR)
    await producer.send_and_wait(settings.kafka.topic(Topic.DEAD_LETTERS), encode(letter),
                                 key=topic.encode())


async def run_round(settings: Settings, task: str, eval_examples: Sequence[TrainingExample], *,
                    aggregator: FederatedAggregator | None = None,
                    min_sites: int = 2) -> RoundOutcome:
    """Aggregate ``task``'s latest site adapters once; publish the gated merge.

    Raises :class:`~driftloop.learner.errors.FederationError` when fewer than ``min_sites``
    offers pass the checks (after dead-lettering the refused ones).
    """
    aggregator = aggregator or FederatedAggregator(settings, min_sites=min_sites)
    records = await read_offers(settings)
    offers, unreadable = _decode_offers(records)
    topic = records[0].topic if records else ""
    versions = await read_version_log(settings)
    outcome = RoundOutcome()
    workdir = Path(tempfile.mkdtemp(prefix="driftloop-aggregate-"))
    try:
        async with new_producer(settings, enable_idempotence=True) as producer:
            inputs = await asyncio.to_thread(aggregator.collect, task, offers, workdir)
            for refusal, reason in [(r, DeadLetterReason.INVALID_EVENT) for r in unreadable] + [
                    (r, DeadLetterReason.SITE_ADAPTER_REFUSED) for r in inputs.refused]:
                log.warning("refused site adapter %s: %s", refusal.offer.where, refusal.reason)
                await _dead_letter(producer, settings, topic, refusal, reason)
                outcome.refused.append(refusal.reason)
                outcome.dead_letters += 1
            version_id = version_id_for(task, inputs.round_id,
                                        deployment=settings.deployment_id)
            if inputs.accepted and version_id in versions:
                log.info("round %s is already published as %s", inputs.round_id, version_id)
                outcome.event, outcome.already_published = versions.get(version_id), True
                return outcome
            result = await asyncio.to_thread(aggregator.merge, inputs, eval_examples, versions,
                                             workdir)
            await publish_versions(producer, settings, [result.event])
            outcome.event = result.event
            return outcome
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
