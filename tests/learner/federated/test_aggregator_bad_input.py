"""Offers the aggregator must refuse, each with a dead letter that says why, on the real broker.

Another base model, another LoRA rank (declared, or hidden in the files), other labels, a
missing artifact, a tampered one, a zero example count and an undecodable record: each is
left out of the merge and dead-lettered; the good offers are merged all the same. Too few
good offers is an error (here through ``driftloop aggregate``) after the dead letters.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
from federated_helpers import (
    eval_examples,
    federation_settings,
    stored_site_adapter,
    write_eval_set,
)
from kafka_helpers import consume_until, produce

from driftloop.learner.federated.aggregator import FederatedAggregator
from driftloop.learner.federated.round import run_round
from driftloop.learner.training.update import store_from_settings
from driftloop.schemas.codec import decode, encode
from driftloop.schemas.events import DeadLetter
from driftloop.schemas.topics import Topic

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

DRIFTLOOP = Path(sys.executable).parent / "driftloop"


async def test_bad_offers_are_dead_lettered_and_the_good_ones_merged(
        kafka_settings, resident_models, minilm, tmp_path) -> None:  # type: ignore[no-untyped-def]
    federation = federation_settings(kafka_settings, tmp_path / "store")
    store = store_from_settings(federation)
    work = tmp_path / "sites"
    good = [stored_site_adapter(minilm, store, work, site, seed=seed, examples=n)
            for site, seed, n in (("a-good", 1, 300), ("b-good", 2, 100))]
    other_base = good[0].model_copy(update={"site": "c-base", "base_model": "other/model"})
    declared_rank = stored_site_adapter(minilm, store, work, "d-rank", r=4, seed=3)
    hidden_rank = stored_site_adapter(minilm, store, work, "e-hidden", r=4, seed=4).model_copy(
        update={"lora_r": 8})
    labels = stored_site_adapter(minilm, store, work, "f-labels", seed=5,
                                 labels=("bad", "good"))
    missing = good[0].model_copy(update={"site": "g-missing", "sha256": "e" * 64,
                                         "adapter_uri": store.uri_for("e" * 64)})
    tampered = stored_site_adapter(minilm, store, work, "h-tampered", seed=6)
    weights = Path(store.root) / tampered.sha256 / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1] + b"\0")
    zero = good[1].model_copy(update={"site": "i-zero", "examples": 0})
    # An older offer of a good site is superseded by its latest, not refused.
    stale = good[0].model_copy(update={"ts": 0.5, "sha256": "f" * 64})
    bad = [other_base, declared_rank, hidden_rank, labels, missing, tampered, zero]
    raw = [encode(o) for o in [stale, *good, *bad]] + [b'{"schema_name": "oops"}']
    await produce(federation, Topic.SITE_ADAPTERS, raw, key="sentiment")

    aggregator = FederatedAggregator(federation, models=resident_models)
    examples = eval_examples(("tweets",), 16)
    outcome = await run_round(federation, "sentiment", examples, aggregator=aggregator)
    assert outcome.event is not None
    sites = outcome.event.metadata["federated"]["sites"]
    assert [(s["site"], s["weight"]) for s in sites] == [("a-good", 0.75), ("b-good", 0.25)]

    letters = [decode(r.value, DeadLetter) for r in
               await consume_until(federation, Topic.DEAD_LETTERS, len(bad) + 1, timeout=30)]
    assert [d.reason for d in letters].count("invalid_event") == 1
    refused = {d.error.split(":", 1)[0]: d.error for d in letters
               if d.reason == "site_adapter_refused"}
    assert set(refused) == {f"site {o.site}" for o in bad}
    expected = {"c-base": "base model 'other/model'", "d-rank": "LoRA rank 4",
                "e-hidden": "PEFT config r=4", "f-labels": "labels ['bad', 'good']",
                "g-missing": "does not exist", "h-tampered": "tampered",
                "i-zero": "example count 0"}
    for site, phrase in expected.items():
        assert phrase in refused[f"site {site}"], refused[f"site {site}"]
    for letter in letters:  # the record is kept whole, and where it was read
        assert letter.source_topic == federation.kafka.topic(Topic.SITE_ADAPTERS)
        assert letter.offset >= 0 and letter.payload_size > 0


async def test_too_few_good_offers_fail_the_round_after_dead_lettering(
        kafka_settings, minilm, tmp_path) -> None:  # type: ignore[no-untyped-def]
    federation = federation_settings(kafka_settings, tmp_path / "store")
    store = store_from_settings(federation)
    good = stored_site_adapter(minilm, store, tmp_path / "sites", "a-good")
    zero = good.model_copy(update={"site": "b-zero", "examples": 0})
    await produce(federation, Topic.SITE_ADAPTERS, [encode(good), encode(zero)],
                  key="sentiment")
    config = tmp_path / "driftloop.toml"
    config.write_text(
        f'[kafka]\nbootstrap_servers = "{federation.kafka.bootstrap_servers}"\n'
        f'topic_prefix = "{federation.kafka.topic_prefix}"\n'
        f'[artifacts]\nstore_url = "{store.root}"\n'
        f'[learner]\ncache_dir = "{tmp_path / "cache"}"\ntorch_threads = 1\n'
        '[tasks.sentiment]\nkind = "classification"\nlabels = ["negative", "positive"]\n')
    eval_set = write_eval_set(tmp_path / "eval.jsonl", eval_examples(("tweets",), 4))
    done = await asyncio.to_thread(
        subprocess.run, [str(DRIFTLOOP), "--config", str(config), "aggregate", "--task",
                         "sentiment", "--eval-set", str(eval_set)],
        capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 1, done.stderr[-2000:]
    assert "1 site adapter(s) accepted, at least 2 needed" in done.stderr
    assert "site b-zero: example count 0" in done.stderr
    [letter] = await consume_until(federation, Topic.DEAD_LETTERS, 1, timeout=30)
    assert decode(letter.value, DeadLetter).reason == "site_adapter_refused"
