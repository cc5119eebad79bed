"""The ``site-adapters`` topic: sites offer promoted adapters, the aggregator reads them.

A learner whose settings name a ``site`` (``learner.site``) offers every adapter it promotes:
a :class:`~driftloop.schemas.SiteAdapter` holding the adapter's URI, sha256, LoRA shape and
the number of examples behind it. Nothing else leaves the site: no example, no input text,
no prediction. The topic lives under ``learner.federation_topic_prefix`` (the federation's
namespace, shared by every site), or under the site's own prefix when that is unset.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.structs import ConsumerRecord

from ...schemas.codec import encode
from ...schemas.events import ModelVersion, SiteAdapter
from ...schemas.settings import Settings
from ...schemas.topics import Topic
from ..errors import AdapterFormatError
from ..registry.store import ArtifactStore
from .versions import read_to_end

__all__ = ["offer_for", "publish_offer", "read_lora_config", "read_offers", "site_topic"]

LORA_CONFIG_FILE = "adapter_config.json"


def _federation_view(settings: Settings) -> Settings:
    """The settings with the federation's topic prefix (where ``site-adapters`` lives)."""
    prefix = settings.learner.federation_topic_prefix
    if prefix is None:
        return settings
    return settings.model_copy(update={"kafka": settings.kafka.model_copy(
        update={"topic_prefix": prefix})})


def site_topic(settings: Settings) -> str:
    """The full name of the federation's ``site-adapters`` topic.

    >>> from driftloop.schemas.settings import Settings
    >>> site_topic(Settings(kafka={"topic_prefix": "eu."}))
    'eu.site-adapters'
    >>> site_topic(Settings(kafka={"topic_prefix": "eu."},
    ...                     learner={"federation_topic_prefix": "fed."}))
    'fed.site-adapters'
    """
    return _federation_view(settings).kafka.topic(Topic.SITE_ADAPTERS)


def read_lora_config(folder: Path) -> dict[str, Any]:
    """PEFT's ``adapter_config.json`` of an adapter folder (refusing anything malformed).

    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "adapter_config.json").write_text('{"r": 8, "lora_alpha": 16}')
    >>> read_lora_config(folder)["r"]
    8
    """
    path = folder / LORA_CONFIG_FILE
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise AdapterFormatError(f"{folder} has no {LORA_CONFIG_FILE}") from None
    except ValueError as exc:
        raise AdapterFormatError(f"{path} is malformed: {exc}") from None
    if not isinstance(config, dict) or not isinstance(config.get("r"), int):
        raise AdapterFormatError(f"{path} names no integer LoRA rank `r`")
    return config


def offer_for(event: ModelVersion, site: str, store: ArtifactStore, *,
              ts: float | None = None) -> SiteAdapter:
    """The site-adapter event that offers a promoted version to the federation.

    The LoRA shape is read from the stored adapter itself (the settings may have changed
    since its parent was trained); the example count is the version's training examples.
    """
    workdir = Path(tempfile.mkdtemp(prefix="driftloop-offer-"))
    try:
        config = read_lora_config(store.fetch(event.adapter_uri, event.sha256, workdir))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    counts = event.metadata.get("examples", {})
    labels = event.metadata.get("labels") or None
    return SiteAdapter(
        ts=time.time() if ts is None else ts, site=site, task=event.task,
        version_id=event.version_id, base_model=event.base_model,
        adapter_uri=event.adapter_uri, sha256=event.sha256, size_bytes=event.size_bytes,
        format=event.format, examples=int(counts.get("train", 0)), lora_r=config["r"],
        lora_alpha=float(config.get("lora_alpha", config["r"])),
        target_modules=sorted(config.get("target_modules") or []), labels=labels,
        metrics={k: v for k, v in event.metrics_after.items() if isinstance(v, (int, float))})


async def publish_offer(producer: AIOKafkaProducer, settings: Settings,
                        offer: SiteAdapter) -> None:
    """Append an offer to ``site-adapters`` (keyed by task) and wait for the broker's ack."""
    await producer.send_and_wait(site_topic(settings), encode(offer), key=offer.task.encode())


async def read_offers(settings: Settings, *, timeout: float = 30.0) -> list[ConsumerRecord]:
    """Every record of ``site-adapters`` up to its end offsets at call time, oldest first."""
    return await read_to_end(_federation_view(settings), Topic.SITE_ADAPTERS, timeout=timeout)
