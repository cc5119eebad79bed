"""Builders for the federated tests: site settings, stored site adapters, evaluation sets."""

from __future__ import annotations

from pathlib import Path

import orjson
import torch
from learner_helpers import LEARNER_TEST_SETTINGS

from driftloop.learner.models.adapters import AdapterMetadata, LoraSpec, save_adapter
from driftloop.learner.models.classification import ClassificationTask
from driftloop.learner.models.device import select_device
from driftloop.learner.models.resident import default_base_model
from driftloop.learner.registry.store import ArtifactStore
from driftloop.schemas.enums import TaskKind
from driftloop.schemas.events import SiteAdapter, TrainingExample
from driftloop.schemas.settings import Settings
from driftloop.tools.demo.vader import balanced_sample, read_domain

LABELS = ("negative", "positive")
BASE = default_base_model(TaskKind.CLASSIFICATION)
TASKS = {"sentiment": {"kind": "classification", "labels": list(LABELS)}}


def federation_settings(kafka_settings: Settings, store: Path, **learner: object) -> Settings:
    """The aggregator's settings: the test's broker and prefix, a shared store."""
    return Settings(kafka=kafka_settings.kafka.model_dump(), artifacts={"store_url": str(store)},
                    learner={**LEARNER_TEST_SETTINGS, "cache_dir": store.parent / "aggregator",
                             **learner}, tasks=TASKS)


def site_settings(federation: Settings, site: str, **learner: object) -> Settings:
    """A site learner's settings: its own topics under a sub-prefix, offers to the federation."""
    prefix = federation.kafka.topic_prefix
    kafka = {**federation.kafka.model_dump(), "topic_prefix": f"{prefix}{site}."}
    return Settings(kafka=kafka, artifacts=federation.artifacts.model_dump(), tasks=TASKS,
                    learner={**federation.learner.model_dump(), "site": site,
                             "federation_topic_prefix": prefix,
                             "group_id": f"{prefix}{site}-learner",
                             "cache_dir": federation.learner.cache_dir.parent / site, **learner})


def eval_examples(domains: tuple[str, ...], per_domain: int, *, exclude: set[str] = frozenset(),
                  seed: int = 1234) -> list[TrainingExample]:
    """Labelled examples per domain the sites never trained on (the aggregator's own set)."""
    found = []
    for domain in domains:
        pool = [e for e in read_domain(domain) if e.text not in exclude]
        found += [TrainingExample(input=e.text, target=e.label, domain=domain)
                  for e in balanced_sample(pool, per_domain, seed=seed)]
    return found


def write_eval_set(path: Path, examples: list[TrainingExample]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(e.model_dump(mode="json")) + b"\n"
                              for e in examples))
    return path


def stored_site_adapter(minilm, store: ArtifactStore, workdir: Path, site: str, *,  # type: ignore[no-untyped-def]
                        r: int = 8, seed: int = 0, examples: int = 100,
                        labels: tuple[str, ...] = LABELS) -> SiteAdapter:
    """An untrained-then-perturbed classification adapter, stored, and its offer.

    Random LoRA ``B`` factors make every site's update non-zero and different, which is
    all the bad-input tests need (no training: they check refusals, not quality).
    """
    torch.manual_seed(seed)
    task = ClassificationTask(minilm.tokenizer, labels, select_device("cpu", 1), max_length=64)
    model = task.build(minilm.fresh_copy(), LoraSpec(r=r, alpha=16), None)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0.0, 0.01)
    metadata = AdapterMetadata(TaskKind.CLASSIFICATION, BASE, f"{site}-v1", labels)
    stored = store.put(save_adapter(model, workdir / site, metadata))
    return SiteAdapter(ts=1.0, site=site, task="sentiment", version_id=f"{site}-v1",
                       base_model=BASE, adapter_uri=stored.uri, sha256=stored.sha256,
                       size_bytes=stored.size_bytes, examples=examples, lora_r=r,
                       lora_alpha=16.0, target_modules=["query", "value"], labels=list(labels))
