"""Builders shared by the learner tests (imported by name: conftest modules may clash)."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from driftloop.schemas.events import TrainingRequest
from driftloop.tools.demo.vader import balanced_sample, read_domain

# One thread: on a shared, oversubscribed 2-core machine a second OpenMP thread mostly waits
# (measured: 5.6 s vs 14.6 s for the same update at load average 7).
TORCH_THREADS = 1
# Small and fast on a shared 2-core machine, yet enough data for a clear held-out gain.
# No gate pool: the tests share a session store, and a pool would carry one test's held-out
# examples into another's gate; test_update_gate_pool.py turns it on.
LEARNER_TEST_SETTINGS = {"torch_threads": TORCH_THREADS, "max_length": 64, "batch_size": 8,
                         "eval_every": 4, "patience": 3, "max_new_tokens": 4,
                         "gate_pool_size": 0}


def sentiment_request(request_id: str, domain: str = "tweets", n: int = 64, *, seed: int = 0,
                      flip: bool = False, replay: Sequence[tuple[str, str]] = (),
                      parent: str | None = None, task: str = "sentiment",
                      **fields: object) -> TrainingRequest:
    """A training request of real VADER examples (labels flipped when ``flip``)."""
    swap = {"positive": "negative", "negative": "positive"}
    examples = [{"input": e.text, "target": swap[e.label] if flip else e.label}
                for e in balanced_sample(read_domain(domain), n, seed=seed)]
    examples += [{"input": text, "target": label, "origin": "replay"} for text, label in replay]
    return TrainingRequest(id=request_id, ts=1.0, task=task, trigger="manual",
                           parent_version=parent, examples=examples, **fields)


# Correct-label tweets that no request of these tests trains on: replayed old examples.
def replay_tweets(n: int = 24) -> list[tuple[str, str]]:
    picked = balanced_sample(read_domain("tweets"), 64 + n, seed=7)
    return [(e.text, e.label) for e in picked[:n]]


def learner_settings(store: str, *, challenge_suite=None, **learner: object):  # type: ignore[no-untyped-def]
    from driftloop.schemas.settings import Settings

    tasks = {"sentiment": {"kind": "classification", "labels": ["negative", "positive"],
                           "challenge_suite": str(challenge_suite) if challenge_suite else None},
             "moviegen": {"kind": "generation", "prompt_template_id": "sentiment"}}
    return Settings(artifacts={"store_url": store},
                    learner={**LEARNER_TEST_SETTINGS, **learner}, tasks=tasks)




def learner_env(settings: Any, **extra: str) -> dict[str, str]:
    """The environment of a ``driftloop learner`` subprocess run with ``settings``."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("DRIFTLOOP_")}
    for section, value in settings.model_dump(mode="json").items():
        if value is not None:  # a top-level string (deployment) goes as it is, not as JSON
            env[f"DRIFTLOOP_{section.upper()}"] = (value if isinstance(value, str)
                                                   else json.dumps(value))
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", **extra)
    return env


def own_learner(updater, parent, folder: Path, *, task=None, **changes):  # type: ignore[no-untyped-def]
    """A learner on a copy of the session's store (a gate pool of its own: the session's
    stays as it was), with learner settings ``changes`` (and the sentiment task's ``task``),
    and a log holding ``parent``."""
    from driftloop.learner.registry.version_log import VersionLog
    from driftloop.learner.training.update import IncrementalUpdater

    copy = folder / "store"
    shutil.copytree(Path(updater.store.root), copy)
    settings = updater.settings.model_copy(update={
        "artifacts": updater.settings.artifacts.model_copy(update={"store_url": str(copy)}),
        "learner": updater.settings.learner.model_copy(update=changes),
        "tasks": {**updater.settings.tasks, "sentiment": updater.settings.tasks[
            "sentiment"].model_copy(update=task or {})}})
    learner = IncrementalUpdater(settings, models=updater.models, device=updater.device)
    return learner, VersionLog().apply(parent.event.model_copy(update={
        "adapter_uri": learner.store.uri_for(parent.event.sha256)}))


def tiny_bert_classifier(folder: Path, tokenizer: Any, labels: Sequence[str], *,
                    bias: Sequence[float] | None = None) -> Any:
    """A one-layer BERT sequence classifier over ``labels`` on ``tokenizer``, saved in
    ``folder`` as a hub model would be (seeded; ``bias``: fixed logits, whatever the text)."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=16, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=16,
                        id2label=dict(enumerate(labels)),
                        label2id={label: i for i, label in enumerate(labels)})
    model = BertForSequenceClassification(config).eval()
    if bias is not None:
        with torch.no_grad():
            model.classifier.weight.zero_()
            model.classifier.bias.copy_(torch.tensor(list(bias)))
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return model
