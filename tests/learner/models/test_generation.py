"""The generation path: SmolLM2-135M-Instruct (GGUF) + LoRA, through the real broker."""

from __future__ import annotations

import pytest
from learner_helpers import sentiment_request
from test_service import run_service, session_updater, with_learner

from driftloop.learner.models.resident import default_base_model
from driftloop.schemas.codec import encode
from driftloop.schemas.enums import TaskKind, VersionStatus

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smollm(resident_models):  # type: ignore[no-untyped-def]
    """SmolLM2 dequantized from its GGUF file once (~15 s), resident for the module."""
    return resident_models.get(default_base_model(TaskKind.GENERATION), TaskKind.GENERATION)


def test_gguf_model_answers_the_capital_of_france(smollm) -> None:  # type: ignore[no-untyped-def]
    tokenizer = smollm.tokenizer
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is the capital of France?"}],
        add_generation_prompt=True, tokenize=False)
    encoded = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
    output = smollm.model.generate(**encoded, max_new_tokens=12, do_sample=False,
                                   pad_token_id=tokenizer.pad_token_id)
    answer = tokenizer.decode(output[0, encoded["input_ids"].shape[1]:], skip_special_tokens=True)
    assert "paris" in answer.lower(), answer


def test_targets_end_with_the_token_generation_stops_at(smollm) -> None:  # type: ignore[no-untyped-def]
    from driftloop.learner.models.prompts import get_template

    # The GGUF tokenizer says <|im_start|> ends a sequence; generation stops at <|im_end|>.
    stop = smollm.model.generation_config.eos_token_id
    assert smollm.tokenizer.eos_token_id == stop == smollm.tokenizer.convert_tokens_to_ids(
        "<|im_end|>")
    _, labels = get_template("sentiment").encode(smollm.tokenizer, "great film", "positive", 64)
    assert labels[-1] == stop


def test_answers_batched_by_prompt_length_come_back_in_the_texts_order(smollm) -> None:  # type: ignore[no-untyped-def]
    from driftloop.learner.models.adapters import LoraSpec
    from driftloop.learner.models.device import select_device
    from driftloop.learner.models.generation import GenerationTask
    from driftloop.learner.models.prompts import get_template

    task = GenerationTask(smollm.tokenizer, get_template("sentiment"), select_device("cpu"),
                          max_new_tokens=2)
    task.batch_size = 2
    # Lengths out of order: each batch holds other texts than in this order.
    texts = ["what a wonderful, moving and beautifully acted film this was", "awful",
             "the service was slow and the food arrived cold", "great", "not good at all"]
    with smollm.lent() as weights:
        model = task.build(weights, LoraSpec(), None)
        together = task.generate(model, texts)
        alone = [task.generate(model, [text])[0] for text in texts]
    assert together == alone
    assert len(set(together)) > 1, together  # else the order could not show


def test_the_prompts_shared_beginning_computed_once_gives_the_same_answers(smollm) -> None:  # type: ignore[no-untyped-def]
    import torch

    from driftloop.learner.models.adapters import LoraSpec
    from driftloop.learner.models.device import select_device
    from driftloop.learner.models.generation import GenerationTask
    from driftloop.learner.models.prompts import get_template
    from driftloop.learner.models.shared_prefix import MIN_SHARED, common_prefix

    template = get_template("sentiment")
    task = GenerationTask(smollm.tokenizer, template, select_device("cpu"), max_new_tokens=8)
    task.batch_size = 4
    texts = ["what a wonderful, moving and beautifully acted film this was", "awful",
             "the service was slow and the food arrived cold", "great", "not good at all",
             "The senate passed the bill after a long debate", "meh", "I would buy it again",
             "a film that never finds its feet", "it broke after two days, avoid"]
    rows = [smollm.tokenizer(template.prompt(smollm.tokenizer, t),
                             add_special_tokens=False)["input_ids"] for t in texts]
    assert common_prefix(rows) >= MIN_SHARED  # the cache path is the one taken
    _ = torch.manual_seed(1)
    with smollm.lent() as weights:
        model = task.build(weights, LoraSpec(), None)
        for name, param in model.named_parameters():  # answers of several tokens, not one
            if "lora_B" in name:
                param.data.normal_(0, 0.01)
        task.share_prefix = False
        whole = task.generate(model, texts)
        task.share_prefix = True
        shared = task.generate(model, texts)
    assert shared == whole
    assert len(set(whole)) > 1, whole


def test_losses_from_the_target_positions_alone_equal_the_full_logits(smollm) -> None:  # type: ignore[no-untyped-def]
    import torch
    from torch import nn

    from driftloop.learner.models.adapters import LoraSpec
    from driftloop.learner.models.device import select_device
    from driftloop.learner.models.generation import IGNORE_INDEX, GenerationTask
    from driftloop.learner.models.prompts import get_template
    from driftloop.schemas.events import TrainingExample

    task = GenerationTask(smollm.tokenizer, get_template("sentiment"), select_device("cpu"))
    _ = torch.manual_seed(0)
    with smollm.lent() as weights:
        model = task.build(weights, LoraSpec(), None)
        for name, param in model.named_parameters():  # an adapter that changes the answers
            if "lora_B" in name:
                param.data.normal_(0, 0.02)
        model.eval()
        batch = task.batch([TrainingExample(input=text, target=target) for text, target in (
            ("I loved this film, wonderful", "positive"),
            ("bad, boring and long, and the acting was awful too", "negative"),
            ("meh", "a longer answer of several tokens"))])
        with torch.no_grad():
            losses = task.example_losses(model, batch)
            logits = model(input_ids=batch["input_ids"],
                           attention_mask=batch["attention_mask"]).logits[:, :-1]
        labels = batch["labels"][:, 1:]
        full = nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), labels.reshape(-1),
                                           ignore_index=IGNORE_INDEX, reduction="none")
        expected = full.view(labels.shape).sum(dim=1) / (labels != IGNORE_INDEX).sum(dim=1)
    assert torch.allclose(losses, expected, atol=1e-4), (losses, expected)


def test_held_out_losses_after_the_shared_beginning_equal_those_of_whole_prompts(smollm) -> None:  # type: ignore[no-untyped-def]
    import torch

    from driftloop.learner.models.adapters import LoraSpec
    from driftloop.learner.models.device import select_device
    from driftloop.learner.models.generation import GenerationTask
    from driftloop.learner.models.prompts import get_template
    from driftloop.learner.models.shared_prefix import MIN_SHARED, common_prefix
    from driftloop.schemas.events import TrainingExample

    task = GenerationTask(smollm.tokenizer, get_template("sentiment"), select_device("cpu"))
    task.batch_size = 2  # several batches, each padded to its own width
    examples = [TrainingExample(input=text, target=target) for text, target in (
        ("I loved this film, wonderful", "positive"), ("awful", "negative"),
        ("bad, boring and long, and the acting was awful too", "negative"),
        ("meh", "a longer answer of several tokens"), ("great value", "positive"))]
    rows = [task.template.encode(smollm.tokenizer, e.input, e.target, task.max_length)[0]
            for e in examples]
    assert common_prefix(rows) >= MIN_SHARED  # the cache path is the one taken
    _ = torch.manual_seed(0)
    with smollm.lent() as weights:
        model = task.build(weights, LoraSpec(), None)
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.data.normal_(0, 0.02)
        model.eval()
        task.share_prefix = False
        whole = task.heldout_losses(model, examples)
        task.share_prefix = True
        shared = task.heldout_losses(model, examples)
        with torch.no_grad():  # and the training path's losses, example by example
            alone = [task.example_losses(model, task.batch([e])).item() for e in examples]
    assert shared == pytest.approx(whole, abs=1e-4) and whole == pytest.approx(alone, abs=1e-4)
    assert len({round(loss, 3) for loss in shared}) == len(examples)  # in the examples' order


@pytest.mark.kafka
async def test_generation_request_publishes_a_version_no_worse_than_its_parent(
        kafka_settings, session_settings, updater, smollm) -> None:  # type: ignore[no-untyped-def]
    settings = with_learner(kafka_settings, session_settings)
    request = sentiment_request("g1", domain="movies", n=24, seed=2, task="moviegen")
    (event,) = await run_service(settings, session_updater(settings, updater),
                                 [encode(request)], 1)
    assert event.task == "moviegen" and event.prompt_template_id == "sentiment@1"
    assert event.base_model == default_base_model(TaskKind.GENERATION)
    assert event.metadata["score_metric"] == "exact_match"
    assert event.metrics_after["holdout_score"] >= event.metrics_before["holdout_score"]
    assert event.status is VersionStatus.PROMOTED, event.reason
