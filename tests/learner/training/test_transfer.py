"""Per-domain lineages and cross-domain transfer: the rules, then the effect on a real broker."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from kafka_helpers import consume_until, produce
from learner_helpers import LEARNER_TEST_SETTINGS

from driftloop.learner.errors import CentroidError, MixedDomainError, TrainingRequestError
from driftloop.learner.models.resident import ResidentModels
from driftloop.learner.registry.version_log import VersionLog, version_id_for
from driftloop.learner.service import LearnerService
from driftloop.learner.topics.versions import read_version_log
from driftloop.learner.training.transfer import (
    centroid_of,
    closest_domain_head,
    cosine_distance,
    embedding_centroid,
    plan_domain_start,
    request_domain,
)
from driftloop.learner.training.update import IncrementalUpdater
from driftloop.schemas.codec import decode, encode
from driftloop.schemas.enums import VersionStatus
from driftloop.schemas.events import DeadLetter, ModelVersion, TrainingRequest
from driftloop.schemas.settings import Settings, TaskSettings
from driftloop.schemas.topics import Topic
from driftloop.tools.demo.vader import balanced_sample, read_domain

LABELS = ["negative", "positive"]


def request(request_id: str, domains: list[str], origins: list[str] | None = None,
            task: str = "t") -> TrainingRequest:
    origins = origins or ["new"] * len(domains)
    return TrainingRequest(id=request_id, ts=1.0, task=task, trigger="manual", examples=[
        {"input": f"text {i}", "target": LABELS[i % 2], "domain": d, "origin": o}
        for i, (d, o) in enumerate(zip(domains, origins, strict=True))])


def head(version: str, domain: str | None, centroid: object = None, *, task: str = "t",
         base_model: str = "m", status: str = "promoted") -> ModelVersion:
    metadata: dict[str, object] = {}
    if domain is not None:
        metadata["domain"] = domain
    if centroid is not None:
        metadata["domain_centroid"] = centroid
    return ModelVersion(version_id=version, ts=1.0, task=task, base_model=base_model,
                        adapter_uri=f"file:///s/{version}", sha256="0" * 64, size_bytes=1,
                        status=status, metadata=metadata)


# -- which lineage a request trains -----------------------------------------------------------

def test_request_domain_is_that_of_the_new_examples() -> None:
    assert request_domain(request("r", ["movies", "movies"])) == "movies"
    # Replayed examples of other domains (a replay-balanced batch) do not choose the lineage.
    mixed_replay = request("r", ["movies", "tweets", "nyt"], ["new", "replay", "replay"])
    assert request_domain(mixed_replay) == "movies"
    # Only replayed examples: the domain they share.
    assert request_domain(request("r", ["nyt", "nyt"], ["replay", "replay"])) == "nyt"
    # Examples without a domain belong to the default one.
    plain = TrainingRequest(id="r", ts=1.0, task="t", trigger="manual",
                            examples=[{"input": "a", "target": "x"}])
    assert request_domain(plain) == "default"


def test_mixed_domain_request_is_refused_with_the_counts() -> None:
    with pytest.raises(MixedDomainError, match=r"2 domains \{'movies': 2, 'tweets': 1\}"):
        request_domain(request("r", ["movies", "tweets", "movies"]))
    with pytest.raises(MixedDomainError, match="one request per domain"):
        request_domain(request("r", ["a", "b"], ["replay", "replay"]))


# -- centroids and distances ------------------------------------------------------------------

def test_cosine_distance_refuses_dimension_mismatch_and_zero() -> None:
    assert cosine_distance([1.0, 0.0], [-1.0, 0.0]) == pytest.approx(2.0)
    with pytest.raises(CentroidError, match=r"different dimensions \(3 and 2\)"):
        cosine_distance([1.0, 0.0, 0.0], [1.0, 0.0])
    with pytest.raises(CentroidError, match="zero centroid"):
        cosine_distance([0.0, 0.0], [1.0, 0.0])


@pytest.mark.parametrize("raw", [None, [], "0.1,0.2", [0.1, "x"], [True, 0.2], {"a": 1},
                                 [0.1] * 70_000])
def test_unusable_recorded_centroid_reads_as_missing(raw: object) -> None:
    assert centroid_of(head("v", "d", raw)) is None


def test_centroid_of_a_real_encoder_is_float16_and_separates_domains(minilm) -> None:  # type: ignore[no-untyped-def]
    def centroid(domain: str, seed: int) -> list[float]:
        texts = [e.text for e in balanced_sample(read_domain(domain), 16, seed=seed)]
        return embedding_centroid(minilm.model, minilm.tokenizer, texts, max_length=64)

    tweets, tweets_again, nyt = centroid("tweets", 0), centroid("tweets", 1), centroid("nyt", 0)
    assert len(tweets) == minilm.model.config.hidden_size
    assert all(float(np.float16(x)) == x for x in tweets)
    assert cosine_distance(tweets, tweets_again) < cosine_distance(tweets, nyt)
    with pytest.raises(CentroidError, match="no texts"):
        embedding_centroid(minilm.model, minilm.tokenizer, [])


def test_centroid_of_a_causal_lm_reads_its_backbone() -> None:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=16,
                                         num_hidden_layers=1, num_attention_heads=2,
                                         num_key_value_heads=2)).eval()

    def tokenizer(texts, **_):  # type: ignore[no-untyped-def]
        ids = [[3 + ord(c) % 60 for c in t] for t in texts]
        width = max(map(len, ids))
        return {"input_ids": torch.tensor([i + [0] * (width - len(i)) for i in ids]),
                "attention_mask": torch.tensor([[1] * len(i) + [0] * (width - len(i))
                                                for i in ids])}

    centroid = embedding_centroid(model, tokenizer, ["good", "bad film", "ok"], batch_size=2)
    assert len(centroid) == 16 and any(centroid)


# -- choosing the donor -----------------------------------------------------------------------

def test_closest_head_skips_what_it_cannot_compare() -> None:
    log = VersionLog().extend([
        head("tw", "tweets", [1.0, 0.0, 0.0]),
        head("ny", "nyt", [0.0, 1.0, 0.0]),
        head("old", "legacy"),                                    # before per-domain mode
        head("wide", "amazon", [0.0, 1.0, 0.0, 0.0]),             # another dimension
        head("gen", "recipes", [0.0, 1.0, 0.0], base_model="other"),
        head("rej", "books", [0.0, 1.0, 0.0], status="rejected"),  # not a head
        head("task", None),                                       # one lineage per task
    ])
    choice = closest_domain_head(log, "t", "movies", [0.1, 0.9, 0.0], base_model="m")
    assert choice.donor is not None and choice.donor.version_id == "ny"
    assert choice.distance == pytest.approx(cosine_distance([0.1, 0.9, 0.0], [0, 1, 0]))
    assert set(choice.distances) == {"tweets", "nyt"}
    assert choice.skipped == {
        "old": "no domain centroid recorded",
        "wide": "centroids of different dimensions (3 and 4) cannot be compared "
                "(another base model?)",
        "gen": "base model other, not m"}


def test_no_comparable_head_means_from_scratch() -> None:
    log = VersionLog().extend([head("old", "legacy"), head("own", "movies", [1.0, 0.0]),
                               head("other-task", "nyt", [1.0, 0.0], task="u")])
    choice = closest_domain_head(log, "t", "movies", [1.0, 0.0], base_model="m")
    assert choice.donor is None and choice.distance is None
    assert choice.skipped == {"old": "no domain centroid recorded"}


def test_ties_go_to_the_domain_that_sorts_first() -> None:
    log = VersionLog().extend([head("z", "zeta", [1.0, 0.0]), head("a", "alpha", [1.0, 0.0])])
    assert closest_domain_head(log, "t", "new", [1.0, 0.0], base_model="m").donor.version_id == "a"


def test_a_named_parent_of_another_domain_is_refused() -> None:
    log = VersionLog().extend([head("ny", "nyt", [1.0, 0.0]), head("old", None)])
    with pytest.raises(TrainingRequestError, match="parent ny belongs to domain 'nyt'"):
        plan_domain_start(request("r", ["movies"] * 4), log, domain="movies",
                          parent=log.get("ny"), base=None, transfer=True, device="cpu",
                          max_length=64)


def test_a_merged_start_averages_every_comparable_head_and_says_so() -> None:
    from dataclasses import replace

    from driftloop.learner.training.transfer import DomainStart

    log = VersionLog().extend([head("tw", "tweets", [1.0, 0.0]), head("ny", "nyt", [0.6, 0.8]),
                               head("old", "legacy")])
    choice = closest_domain_head(log, "t", "movies", [0.5, 0.9], base_model="m")
    assert [h.version_id for h in choice.heads] == ["ny", "tw"]  # by domain; "old" skipped
    merged = DomainStart("movies", [0.5, 0.9], None, replace(choice, merged=True))
    assert merged.start is None and [h.version_id for h in merged.merged_from] == ["ny", "tw"]
    record = merged.metadata()["initialised_from"]
    assert record["method"] == "merge" and record["version_id"] is None
    assert record["merged_from"] == [{"version_id": "ny", "domain": "nyt"},
                                     {"version_id": "tw", "domain": "tweets"}]
    nearest = DomainStart("movies", [0.5, 0.9], None, choice).metadata()["initialised_from"]
    assert nearest["method"] == "nearest" and nearest["version_id"] == "ny"
    assert nearest["merged_from"] == []
    # A lineage that has its head continues it, whatever the setting.
    own = DomainStart("movies", [0.5, 0.9], log.get("tw"), replace(choice, merged=True))
    assert own.start is log.get("tw") and own.merged_from == ()


def test_merging_adapters_averages_their_heads_and_needs_two(minilm, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from safetensors.torch import load_file

    from driftloop.learner.errors import FederationError
    from driftloop.learner.models.portable import internal_layout
    from driftloop.learner.serving.probe import write_probe_adapter
    from driftloop.learner.training.domain_merge import merge_adapter_folders

    folders = [write_probe_adapter(minilm, tmp_path / label, version_id=label, labels=LABELS,
                                   favour=label, seed=i) for i, label in enumerate(LABELS)]
    merged = merge_adapter_folders(folders, tmp_path / "merged")
    state = load_file(str(merged / "adapter_model.safetensors"))
    heads = []
    for folder in folders:
        with internal_layout(folder) as inside:
            heads.append(load_file(str(inside / "adapter_model.safetensors")))
    bias = next(k for k in state if k.endswith("bias") and "lora" not in k)
    assert np.allclose(state[bias].numpy(), (heads[0][bias] + heads[1][bias]).numpy() / 2)
    assert (state[bias][0] - state[bias][1]).abs() < 1e-5  # favour +6 each way: no lean
    with pytest.raises(FederationError, match="two adapters or more"):
        merge_adapter_folders(folders[:1], tmp_path / "alone")


# -- the updater under adapter_per_domain -----------------------------------------------------

def _never_loaded(model_id, kind):  # type: ignore[no-untyped-def]
    raise AssertionError("a refused request must stop before any model is loaded")


def test_updater_refuses_a_mixed_domain_request_before_loading(tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = Settings(artifacts={"store_url": str(tmp_path)}, learner=LEARNER_TEST_SETTINGS,
                        tasks={"t": {"labels": LABELS, "adapter_per_domain": True}})
    updater = IncrementalUpdater(settings, models=ResidentModels(loader=_never_loaded))
    with pytest.raises(MixedDomainError, match="tweets"):
        updater.update(request("r", ["movies", "tweets"] * 4), VersionLog())


def test_a_new_domain_trains_from_the_average_of_the_other_domains_heads(  # type: ignore[no-untyped-def]
        minilm, resident_models, tmp_path, monkeypatch, caplog) -> None:
    from driftloop.learner.serving.probe import write_probe_adapter

    settings = Settings(artifacts={"store_url": str(tmp_path / "store")},
                        learner=LEARNER_TEST_SETTINGS,
                        tasks={"t": {"labels": LABELS, "adapter_per_domain": True,
                                     "domain_start": "merge"}})
    updater = IncrementalUpdater(settings, models=resident_models)
    heads = []
    for i, (domain, label) in enumerate(zip(("nyt", "tweets"), LABELS, strict=True)):
        stored = updater.store.put(write_probe_adapter(
            minilm, tmp_path / domain, version_id=domain, labels=LABELS, favour=label, seed=i))
        centroid = [1.0 if j == i else 0.0 for j in range(384)]
        heads.append(ModelVersion(
            version_id=f"t-{domain}", ts=1.0, task="t", base_model=minilm.model_id,
            adapter_uri=stored.uri, sha256=stored.sha256, size_bytes=stored.size_bytes,
            status=VersionStatus.PROMOTED,
            metadata={"domain": domain, "domain_centroid": centroid}))
    examples = [{"input": e.text, "target": e.label, "domain": "movies"}
                for e in balanced_sample(read_domain("movies"), 24, seed=3)]
    result = updater.update(TrainingRequest(id="r-movies", ts=1.0, task="t", trigger="manual",
                                            examples=examples), VersionLog().extend(heads))
    record = result.event.metadata["initialised_from"]
    assert record["method"] == "merge" and record["version_id"] is None
    assert [m["version_id"] for m in record["merged_from"]] == ["t-nyt", "t-tweets"]
    assert result.event.parent_version is None and result.event.metadata["domain"] == "movies"
    assert "merge_start_seconds" in result.timings

    # Heads that cannot be averaged (other LoRA shapes): the closest one alone, said so.
    from driftloop.learner.errors import FederationError
    from driftloop.learner.training import update as update_module

    def refuse(*_args: object) -> None:
        raise FederationError("lora_A shapes differ")

    monkeypatch.setattr(update_module, "merge_adapter_folders", refuse)
    examples = [{**e, "domain": "amazon"} for e in examples]
    fallback = updater.update(TrainingRequest(id="r-amazon", ts=1.0, task="t", trigger="manual",
                                              examples=examples), VersionLog().extend(heads))
    record = fallback.event.metadata["initialised_from"]
    assert record["method"] == "nearest" and record["version_id"] in ("t-nyt", "t-tweets")
    assert "cannot be averaged" in caplog.text


@pytest.mark.parametrize(("judged", "alpha"), [("score", None), ("paired", None),
                                                ("paired", 0.3), ("paired-scores", None),
                                                ("cross-fit", None)])
def test_a_domains_first_version_is_judged_as_the_setting_says(  # type: ignore[no-untyped-def]
        minilm, resident_models, tmp_path, judged, alpha) -> None:
    """``learner.gate_domain_start``: the scores against the transferred start, or the
    paired rule against it, as against a served parent (at ``gate_domain_start_alpha`` when
    set; on per-example proper scores under "paired-scores"), with or without cross-fitting
    (the reason names the test)."""
    from driftloop.learner.serving.probe import write_probe_adapter

    settings = Settings(artifacts={"store_url": str(tmp_path / "store")},
                        learner={**LEARNER_TEST_SETTINGS, "gate_domain_start": judged,
                                 "gate_domain_start_alpha": alpha},
                        tasks={"t": {"labels": LABELS, "adapter_per_domain": True,
                                     "domain_start": "nearest"}})
    updater = IncrementalUpdater(settings, models=resident_models)
    stored = updater.store.put(write_probe_adapter(
        minilm, tmp_path / "nyt", version_id="nyt", labels=LABELS, favour=LABELS[0], seed=0))
    head = ModelVersion(
        version_id="t-nyt", ts=1.0, task="t", base_model=minilm.model_id,
        adapter_uri=stored.uri, sha256=stored.sha256, size_bytes=stored.size_bytes,
        status=VersionStatus.PROMOTED,
        metadata={"domain": "nyt", "domain_centroid": [1.0] + [0.0] * 383})
    examples = [{"input": e.text, "target": e.label, "domain": "movies"}
                for e in balanced_sample(read_domain("movies"), 24, seed=3)]
    result = updater.update(TrainingRequest(id="r-movies", ts=1.0, task="t", trigger="manual",
                                            examples=examples), VersionLog().extend([head]))
    assert result.event.metadata["initialised_from"]["version_id"] == "t-nyt"
    assert result.event.parent_version is None
    if judged == "score":
        assert result.event.reason.startswith("holdout: ")
        assert "holdout_p_better" in result.event.metrics_after  # computed, not used
    elif judged.startswith("paired"):
        reason = result.event.reason
        assert reason.startswith("recent: ") and "p(better)=" in reason
        level = f"{alpha or settings.learner.gate_alpha:g}"
        by = " (proper scores)" if judged == "paired-scores" else ""
        assert f"< {level}{by}" in reason or f">= {level}{by}" in reason, reason
    else:  # the fold candidates' pairs join the recent slice's
        assert result.event.reason.startswith("cross-fit: 2 fold candidates on the ")
        assert result.event.metrics_after["holdout_cross_fit_count"] >= 12


def test_a_domains_first_version_can_be_judged_against_what_serves_the_domain_now(  # type: ignore[no-untyped-def]
        minilm, resident_models, tmp_path) -> None:
    """``learner.gate_domain_incumbent``: a new domain's traffic is served by the task's
    latest promotion (here the tweets head, answering "positive") until the domain has a
    head; its first version starts from the NYT head (answering "negative", the only head
    with a centroid) and is scored against the tweets head, so the parent's figures are
    that head's: on two labels, one minus the start's."""
    from driftloop.learner.serving.probe import write_probe_adapter

    def head(domain: str, favour: str, ts: float, centroid: bool) -> ModelVersion:
        stored = updater.store.put(write_probe_adapter(
            minilm, tmp_path / domain, version_id=domain, labels=LABELS, favour=favour,
            seed=0, margin=12.0))
        return ModelVersion(
            version_id=f"t-{domain}", ts=ts, task="t", base_model=minilm.model_id,
            adapter_uri=stored.uri, sha256=stored.sha256, size_bytes=stored.size_bytes,
            status=VersionStatus.PROMOTED,
            metadata={"domain": domain} | (
                {"domain_centroid": [1.0] + [0.0] * 383} if centroid else {}))

    examples = [{"input": e.text, "target": e.label, "domain": "movies"}
                for e in balanced_sample(read_domain("movies"), 24, seed=3)]
    before = {}
    for judged_against_incumbent in (False, True):
        settings = Settings(artifacts={"store_url": str(tmp_path / "store")},
                            learner={**LEARNER_TEST_SETTINGS,
                                     "gate_domain_incumbent": judged_against_incumbent},
                            tasks={"t": {"labels": LABELS, "adapter_per_domain": True,
                                         "domain_start": "nearest"}})
        updater = IncrementalUpdater(settings, models=resident_models)
        heads = [head("nyt", "negative", 1.0, True), head("tweets", "positive", 2.0, False)]
        result = updater.update(TrainingRequest(id="r-movies", ts=3.0, task="t",
                                                trigger="manual", examples=examples),
                                VersionLog().extend(heads))
        metadata = result.event.metadata
        assert metadata["initialised_from"]["version_id"] == "t-nyt"
        assert metadata.get("judged_against") == ("t-tweets" if judged_against_incumbent
                                                  else None)
        before[judged_against_incumbent] = result.event.metrics_before["holdout_score"]
    assert before[False] + before[True] == pytest.approx(1.0)


# -- the effect, on a real broker -------------------------------------------------------------

TASKS = {"reviews": {"labels": LABELS, "adapter_per_domain": True, "domain_start": "nearest"},
         "reviews-scratch": {"labels": LABELS, "adapter_per_domain": True,
                             "domain_transfer": False}}
# Sizes checked locally over several seeds (see the test's docstring). NYT goes first: the
# second domain starts from the first, and its gate must beat that start.
HEADS = {"nyt": 160, "tweets": 64}
NEW_DOMAIN, NEW_N = "movies", 160


def vader_request(request_id: str, task: str, domain: str, n: int, seed: int) -> bytes:
    examples = [{"input": e.text, "target": e.label, "domain": domain}
                for e in balanced_sample(read_domain(domain), n, seed=seed)]
    return encode(TrainingRequest(id=request_id, ts=1.0, task=task, trigger="manual",
                                  examples=examples))


async def run_learner(settings: Settings, resident: ResidentModels, requests: list[bytes],
                      timeout: float = 300.0) -> None:
    await produce(settings, Topic.TRAINING_REQUESTS, requests, key="reviews")
    service = LearnerService(settings, max_requests=len(requests),
                             updater=IncrementalUpdater(settings, models=resident))
    try:
        await asyncio.wait_for(service.run(), timeout)
    finally:
        service.stop()


@pytest.mark.kafka
@pytest.mark.slow
async def test_new_domain_starts_from_the_closest_domain_and_beats_scratch(
        kafka_settings, resident_models, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """NYT editorials and tweets have heads; movie-review snippets arrive.

    Checked locally with these sizes over head seeds 0-2 and new-request seeds 100-101 (six
    runs): every head was promoted; movies chose NYT every time (cosine 0.39-0.48, tweets
    0.64-0.68); the transferred start scored 0.66-0.73 against the untrained start's
    0.47-0.54 on 80 held-out movie snippets, and after three optimizer steps 0.59-0.73
    against 0.49-0.60 (never below). Seeds 0 and 100 here.
    """
    base = kafka_settings.model_copy(update={
        "artifacts": kafka_settings.artifacts.model_copy(
            update={"store_url": str(tmp_path / "store")}),
        "tasks": {name: TaskSettings(**task) for name, task in TASKS.items()}})

    def learner(**overrides: object) -> Settings:
        # One consumer group (prefixed per test): the second learner goes on from the
        # first one's committed offsets.
        cfg = {**LEARNER_TEST_SETTINGS, **overrides, "cache_dir": tmp_path / "learner"}
        return base.model_copy(update={"learner": base.learner.model_copy(update=cfg)})

    # The existing domains, and one request that mixes domains (dead-lettered, not trained).
    heads = [vader_request(f"h-{d}-0", "reviews", d, n, 0) for d, n in HEADS.items()]
    mixed = TrainingRequest(id="mixed", ts=1.0, task="reviews", trigger="manual", examples=[
        {"input": "great", "target": "positive", "domain": "tweets"},
        {"input": "awful", "target": "negative", "domain": "nyt"}])
    await run_learner(learner(epochs=3), resident_models, [*heads, encode(mixed)])
    dead = decode((await consume_until(base, Topic.DEAD_LETTERS, 1))[0].value, DeadLetter)
    assert dead.reason == "untrainable_request" and "one request per domain" in dead.error
    registry = await read_version_log(base)
    for domain in HEADS:
        version = registry.domain_head("reviews", domain)
        assert version is not None, f"{domain} has no promoted head: " + "; ".join(
            f"{v.metadata.get('domain')} {v.status} {v.reason}" for v in registry.versions())
        assert version.metadata["domain"] == domain and version.parent_version is None

    # The new domain, through a second learner with a tiny training budget and a large
    # holdout (the claim is about where training starts): with transfer, and from scratch.
    new = [vader_request("n-0", task, NEW_DOMAIN, NEW_N, 100) for task in TASKS]
    await run_learner(learner(holdout_fraction=0.5, max_steps=3), resident_models, new)
    records = await consume_until(base, Topic.MODEL_VERSIONS, 4, timeout=60)
    events = {e.version_id: e for e in (decode(r.value, ModelVersion) for r in records)}
    transferred = events[version_id_for("reviews", "n-0", deployment=base.deployment_id)]
    scratch = events[version_id_for("reviews-scratch", "n-0",
                                    deployment=base.deployment_id)]

    origin = transferred.metadata["initialised_from"]
    nyt_head = registry.domain_head("reviews", "nyt")
    assert (origin["version_id"], origin["domain"]) == (nyt_head.version_id, "nyt")
    assert origin["distance"] < origin["distances"]["tweets"] - 0.1, origin["distances"]
    assert transferred.parent_version is None  # the donor is another lineage's version
    assert transferred.metadata["domain"] == NEW_DOMAIN
    assert len(transferred.metadata["domain_centroid"]) == 384
    assert scratch.metadata["initialised_from"]["version_id"] is None

    before, after = transferred.metrics_before, transferred.metrics_after
    # the holdout is chosen by content: the same texts for both tasks, about half of them
    assert before["holdout_count"] == scratch.metrics_before["holdout_count"]
    assert abs(before["holdout_count"] - NEW_N / 2) <= NEW_N / 8
    # The margin is noisy: since the holdout is chosen by content (the same 90 texts for
    # both tasks), seed 0 gives 0.567 vs 0.500; a probe of NYT heads of seeds 0 and 1 on
    # movies scored 0.70 and 0.58 on the old random split, 0.61 and 0.61 on the new one.
    assert before["holdout_score"] >= scratch.metrics_before["holdout_score"] + 0.05, (
        before, scratch.metrics_before)
    assert after["holdout_score"] >= scratch.metrics_after["holdout_score"], (
        after, scratch.metrics_after)
    if transferred.status is VersionStatus.PROMOTED:
        registry = await read_version_log(base)
        assert registry.domain_head("reviews", NEW_DOMAIN).version_id == transferred.version_id
