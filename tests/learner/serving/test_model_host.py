"""ModelHost: named adapters in one resident PEFT model, switched between requests."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest
import torch
from serving_helpers import TASK

from driftloop.learner.errors import (
    AdapterFormatError,
    UnservableAdapterError,
    VersionNotServedError,
)
from driftloop.learner.models.resident import ResidentModels
from driftloop.learner.serving import ModelHost

BASE = "sentence-transformers/all-MiniLM-L6-v2"
TEXTS = ["what a wonderful film", "dull and far too long"]


@pytest.fixture
def host(resident_models: ResidentModels):  # type: ignore[no-untyped-def]
    made = ModelHost(resident_models, max_length=32)
    yield made
    made.close()


def test_each_version_answers_as_its_adapter_says(host: ModelHost, probes) -> None:  # type: ignore[no-untyped-def]
    host.load(TASK, "v-neg", probes["neg"], BASE)
    host.load(TASK, "v-pos", probes["pos"], BASE)
    for version, label in (("v-neg", "negative"), ("v-pos", "positive"), ("v-neg", "negative")):
        answers = host.predict(TASK, version, TEXTS)
        assert [a.label for a in answers] == [label, label]
        assert all(a.version_id == version and a.confidence > 0.9 for a in answers)
        assert all(len(a.embedding) == 384 for a in answers)
        assert sum(answers[0].probabilities.values()) == pytest.approx(1.0)
    assert host.versions(TASK) == ["v-neg", "v-pos"]


def test_every_version_answers_with_the_same_input_embedding(  # type: ignore[no-untyped-def]
        host: ModelHost, probes, resident_models: ResidentModels) -> None:
    # The input-drift signal must not move when a promotion changes the adapter.
    host.load(TASK, "v-neg", probes["neg"], BASE)
    host.load(TASK, "v-pos", probes["pos"], BASE)
    neg, pos = host.predict(TASK, "v-neg", TEXTS), host.predict(TASK, "v-pos", TEXTS)
    assert [a.input_embedding for a in neg] == [a.input_embedding for a in pos]
    assert [a.embedding for a in neg] != [a.embedding for a in pos]  # the adapted view moves
    assert neg[0].input_embedding != neg[1].input_embedding
    base = resident_models.get(BASE, "classification")
    ids = base.tokenizer(TEXTS[0], add_special_tokens=False, return_tensors="pt")["input_ids"][0]
    expected = base.model.get_input_embeddings()(ids).double().mean(dim=0)
    assert len(neg[0].input_embedding) == 384
    assert torch.allclose(torch.tensor(neg[0].input_embedding, dtype=torch.float64), expected,
                          atol=1e-5)


def test_loading_twice_is_a_no_op_and_eviction_keeps_what_is_asked(host: ModelHost,  # type: ignore[no-untyped-def]
                                                                  probes) -> None:
    host.load(TASK, "a", probes["neg"], BASE)
    host.load(TASK, "b", probes["pos"], BASE)
    assert host.load(TASK, "b", probes["pos"], BASE) == 0.0
    host.predict(TASK, "b", TEXTS[:1])
    assert host.evict(TASK, {"a"}) == ["b"]
    assert host.versions(TASK) == ["a"]
    assert host.predict(TASK, "a", TEXTS[:1])[0].label == "negative"
    with pytest.raises(VersionNotServedError, match="'b'"):
        host.predict(TASK, "b", TEXTS[:1])
    assert host.evict(TASK, set()) == ["a"] and host.versions(TASK) == []


def test_a_version_copied_into_an_evicted_slot_answers_as_when_loaded_fresh(  # type: ignore[no-untyped-def]
        host: ModelHost, resident_models: ResidentModels, probes) -> None:
    host.load(TASK, "a", probes["neg"], BASE)
    host.load(TASK, "b", probes["pos"], BASE)
    host.evict(TASK, {"b"})  # a's adapter stays as a spare slot
    host.load(TASK, "c", probes["neg2"], BASE)  # copied into it, not built anew
    hosted = host._tasks[TASK]
    assert hosted.slots == {"b": "slot-1", "c": "slot-0"} and hosted.spare == []
    fresh = ModelHost(resident_models, max_length=32)
    try:
        fresh.load(TASK, "c", probes["neg2"], BASE)
        for version, other in (("c", fresh), ("b", None), ("c", None)):
            answers = host.predict(TASK, version, TEXTS)
            if other is not None:  # the fresh load's probabilities and embeddings (LoRA)
                for got, want in zip(answers, other.predict(TASK, version, TEXTS), strict=True):
                    assert got.probabilities == pytest.approx(want.probabilities, abs=1e-6)
                    assert got.embedding == pytest.approx(want.embedding, abs=1e-5)
            assert all(a.version_id == version for a in answers)
        assert [a.label for a in host.predict(TASK, "b", TEXTS)] == ["positive"] * 2
        # Reloading an evicted version goes into a spare slot too, and a third version with
        # no spare left gets a slot of its own.
        host.evict(TASK, {"c"})
        host.load(TASK, "b", probes["pos"], BASE)
        host.load(TASK, "a", probes["neg"], BASE)
        assert sorted(hosted.slots.values()) == ["slot-0", "slot-1", "slot-2"]
        assert [a.label for a in host.predict(TASK, "b", TEXTS)] == ["positive"] * 2
        assert [a.label for a in host.predict(TASK, "a", TEXTS)] == ["negative"] * 2
    finally:
        fresh.close()


def _edited_copy(folder: Path, dest: Path, **changes: object) -> Path:
    shutil.copytree(folder, dest)
    meta = json.loads((dest / "driftloop.json").read_text())
    meta.update(changes)
    (dest / "driftloop.json").write_text(json.dumps(meta))
    return dest


def test_a_different_label_set_or_kind_is_refused_and_the_served_versions_stay(  # type: ignore[no-untyped-def]
        host: ModelHost, probes, tmp_path: Path) -> None:
    host.load(TASK, "a", probes["neg"], BASE)
    three = _edited_copy(probes["pos"], tmp_path / "three", labels=["neg", "neu", "pos"])
    generation = _edited_copy(probes["pos"], tmp_path / "generation", task_kind="generation")
    for version, folder in (("b", three), ("c", generation)):
        with pytest.raises(UnservableAdapterError, match="differs from the served versions"):
            host.load(TASK, version, folder, BASE)
    assert host.versions(TASK) == ["a"]
    assert host.predict(TASK, "a", TEXTS[:1])[0].label == "negative"


@pytest.mark.parametrize(("changes", "message"), [
    ({"labels": []}, "names no label set"),
    ({"task_kind": "bogus"}, "malformed"),
])
def test_unservable_adapters_are_refused(host: ModelHost, probes, tmp_path: Path,  # type: ignore[no-untyped-def]
                                         changes: dict, message: str) -> None:
    folder = _edited_copy(probes["neg"], tmp_path / "edited", **changes)
    with pytest.raises((UnservableAdapterError, AdapterFormatError), match=message):
        host.load(TASK, "x", folder, BASE)
    assert host.versions(TASK) == []


def test_bad_arguments_fail_at_construction(resident_models: ResidentModels) -> None:
    with pytest.raises(ValueError, match="max_length"):
        ModelHost(resident_models, max_length=0)
    with pytest.raises(ValueError, match="max_batch"):
        ModelHost(resident_models, max_batch=0)


async def test_concurrent_requests_share_forward_passes_and_get_their_own_answers(  # type: ignore[no-untyped-def]
        host: ModelHost, probes) -> None:
    host.load(TASK, "neg", probes["neg"], BASE)
    host.load(TASK, "pos", probes["pos"], BASE)
    calls = [("neg" if i % 3 else "pos", [f"text {i}"] * (1 + i % 2)) for i in range(24)]
    alone = [host.predict(TASK, version, texts) for version, texts in calls]
    together = await asyncio.gather(*(host.apredict(TASK, v, t) for v, t in calls))
    assert host.batches < len(calls)
    for single, batched in zip(alone, together, strict=True):
        assert [a.label for a in batched] == [a.label for a in single]
        assert [a.version_id for a in batched] == [a.version_id for a in single]
        for a, b in zip(single, batched, strict=True):
            assert b.confidence == pytest.approx(a.confidence, abs=1e-4)
    with pytest.raises(VersionNotServedError):
        await host.apredict(TASK, "gone", ["x"])


@pytest.mark.slow
def test_generation_versions_answer_with_text_under_their_template(  # type: ignore[no-untyped-def]
        resident_models: ResidentModels, tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    from driftloop.learner.models.resident import default_base_model
    from driftloop.learner.serving import write_generation_probe
    from driftloop.schemas.enums import TaskKind

    base_id = default_base_model(TaskKind.GENERATION)
    base = resident_models.get(base_id, TaskKind.GENERATION)
    quiet = write_generation_probe(base, tmp_path / "quiet", version_id="g1",
                                   prompt_template_id="sentiment")
    # A second version without a second copy of the base: the same adapter, LoRA B noised.
    noisy = tmp_path / "noisy"
    shutil.copytree(quiet, noisy)
    weights = load_file(noisy / "adapter_model.safetensors")
    generator = torch.Generator().manual_seed(1)
    save_file({name: (torch.randn(t.shape, generator=generator) * 0.5 if "lora_B" in name
                      else t) for name, t in weights.items()},
              str(noisy / "adapter_model.safetensors"))
    host = ModelHost(resident_models, max_length=64, max_new_tokens=3)
    try:
        host.load("moviegen", "g1", quiet, base_id)
        host.load("moviegen", "g2", noisy, base_id)
        prompts = ["A triumph of a film.", "Two hours I will never get back."]
        first = host.predict("moviegen", "g1", prompts)
        second = host.predict("moviegen", "g2", prompts)
        assert [a.version_id for a in first + second] == ["g1", "g1", "g2", "g2"]
        assert all(isinstance(a.label, str) and a.confidence is None for a in first + second)
        # An input embedding for drift: the base model's token embeddings, so two versions
        # give the same one for the same text, and two texts two different ones; a causal
        # LM has no pooled embedding to send.
        assert [a.input_embedding for a in first] == [a.input_embedding for a in second]
        assert first[0].input_embedding != first[1].input_embedding
        assert first[0].input_embedding is not None
        assert len(first[0].input_embedding) == base.model.config.hidden_size
        assert all(a.embedding == [] for a in first + second)
        assert [a.output for a in first] != [a.output for a in second]
        for a in first + second:  # the template's choices read the text: a class, or the text
            assert (a.classified, a.label) == ((True, a.label) if a.label in
                                               ("positive", "negative") else (False, a.output))
        with pytest.raises(UnservableAdapterError, match="differs"):
            host.load("moviegen", "c1", _edited_copy(quiet, tmp_path / "c1", labels=["a", "b"],
                                                     task_kind="classification"), BASE)
    finally:
        host.close()


def test_a_prepared_adapter_loads_into_a_spare_slot_without_reading_its_files(  # type: ignore[no-untyped-def]
        host: ModelHost, probes, tmp_path) -> None:
    host.load(TASK, "a", probes["neg"], BASE)
    host.load(TASK, "b", probes["pos"], BASE)
    host.evict(TASK, {"b"})  # a's slot is spare now
    copy = Path(shutil.copytree(probes["neg"], tmp_path / "c"))
    prepared = host.prepare("c", copy)
    shutil.rmtree(copy)  # the host thread's part must not need the files
    host.load(TASK, "c", copy, BASE, prepared=prepared)
    assert [a.label for a in host.predict(TASK, "c", TEXTS)] == ["negative"] * 2
    with pytest.raises(AdapterFormatError):
        host.prepare("d", tmp_path / "missing")


async def test_a_pass_queued_behind_a_load_follows_the_swap_made_right_after_it(  # type: ignore[no-untyped-def]
        host: ModelHost, probes) -> None:
    host.load(TASK, "a", probes["neg"], BASE)
    serving = {TASK: "a"}
    # Its files read already (aload reads them off the host thread first, while passes go
    # on), the load goes to the host thread first, the pass after it; the swap (then) runs
    # on the host thread between the two, and the pass follows the serving version.
    prepared = host.prepare("b", probes["pos"])
    loading = asyncio.ensure_future(host.aload(TASK, "b", probes["pos"], BASE, prepared=prepared,
                                               then=lambda: serving.update({TASK: "b"})))
    following = await host.apredict(TASK, "a", TEXTS, follow=lambda: serving[TASK])
    await loading
    assert [(a.version_id, a.label) for a in following] == [("b", "positive")] * 2
    pinned = await host.apredict(TASK, "a", TEXTS)  # routed to a, not following: stays
    assert [(a.version_id, a.label) for a in pinned] == [("a", "negative")] * 2


def test_a_replica_keeps_a_spare_slot_so_every_swap_is_a_copy(  # type: ignore[no-untyped-def]
        host: ModelHost, probes) -> None:
    host.load(TASK, "v0", probes["neg"], BASE)
    hosted = host._tasks[TASK]
    assert len(hosted.spare) == 1  # made with the first version, before any swap needs it
    names = ["neg", "pos", "neg2"]
    for i in range(1, 6):  # what a replica does: load, swap, keep the last two
        made = hosted.made
        host.load(TASK, f"v{i}", probes[names[i % 3]], BASE)
        assert hosted.made == made, f"v{i} built a new slot instead of filling the spare"
        host.evict(TASK, {f"v{i - 1}", f"v{i}"})
        assert len(hosted.spare) == 1
    assert hosted.made == 3  # two served versions and a spare, whatever the number of swaps
    assert [a.label for a in host.predict(TASK, "v5", TEXTS)] == ["negative"] * 2  # neg2
    assert [a.label for a in host.predict(TASK, "v4", TEXTS)] == ["positive"] * 2


def test_a_portable_classifier_is_read_in_memory_as_its_converted_copy_loads(  # type: ignore[no-untyped-def]
        host: ModelHost, probes) -> None:
    from peft import LoraConfig
    from safetensors.torch import load_file

    from driftloop.learner.models.portable import internal_layout, is_portable_classifier

    folder = probes["neg"]
    assert is_portable_classifier(folder)
    files = sorted(p.name for p in folder.iterdir())
    ready = host.prepare("neg", folder)  # no converted copy written and read back
    with internal_layout(folder) as inside:
        config = LoraConfig.from_pretrained(str(inside))
        state = load_file(str(inside / "adapter_model.safetensors"))
    assert ready.config.to_dict() == config.to_dict()
    assert ready.state.keys() == state.keys()
    assert all(torch.equal(ready.state[key], state[key]) for key in state)
    assert sorted(p.name for p in folder.iterdir()) == files


def _weights_edited(source: Path, dest: Path, edit) -> Path:  # type: ignore[no-untyped-def]
    """A copy of an adapter folder whose weights file went through ``edit`` (a dict -> dict)."""
    from safetensors.torch import load_file, save_file

    shutil.copytree(source, dest)
    weights = dest / "adapter_model.safetensors"
    save_file(edit(load_file(str(weights))), str(weights))
    return dest


@pytest.mark.parametrize("edit", [
    pytest.param(lambda state: dict(list(state.items())[1:]), id="a weight missing"),
    pytest.param(lambda state: {f"other.{k}": v for k, v in state.items()},
                 id="keys of another model"),
])
@pytest.mark.parametrize("first", [True, False], ids=["first load", "later load"])
def test_an_adapter_whose_weights_do_not_fit_the_model_is_refused(  # type: ignore[no-untyped-def]
        host: ModelHost, probes, tmp_path: Path, edit, first: bool) -> None:
    # PEFT loads such a folder with a warning at most, leaving those weights as they were
    # initialised (a random head answers at chance): the host must say so instead.
    if not first:
        host.load(TASK, "a", probes["neg"], BASE)
    folder = _weights_edited(probes["pos"], tmp_path / "edited", edit)
    with pytest.raises(AdapterFormatError, match="does not fit the model"):
        host.load(TASK, "x", folder, BASE)
    assert host.versions(TASK) == ([] if first else ["a"])
    if not first:
        assert host.predict(TASK, "a", TEXTS[:1])[0].label == "negative"
        host.load(TASK, "b", probes["pos"], BASE)  # the host still loads good versions
        assert host.predict(TASK, "b", TEXTS[:1])[0].label == "positive"
