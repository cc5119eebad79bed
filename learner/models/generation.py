"""Generation: a causal LM with LoRA, examples rendered by a prompt template.

Loss covers the target tokens only; evaluation is exact match of a greedy answer, after
normalising case, surrounding space and final punctuation (a one-word answer ``Positive.`` is
right when ``positive`` is expected).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ...schemas.events import TrainingExample
from .adapters import LoraSpec, trainable_peft_model
from .device import ComputeDevice
from .prompt_policy import ShotIndex
from .prompts import IGNORE_INDEX, PromptTemplate, normalize_answer
from .shared_prefix import MIN_SHARED, common_prefix, generate_after, prefix_cache, repeated
from .task_model import Evaluation, length_batches
from .token_means import input_embeddings

__all__ = ["GenerationTask", "generator_lora_config", "normalize_answer"]

DEFAULT_TARGETS = ("q_proj", "v_proj")


def generator_lora_config(spec: LoraSpec) -> Any:
    """PEFT's LoRA config of a causal LM (attention query and value projections by default).

    >>> config = generator_lora_config(LoraSpec(r=4, alpha=8))
    >>> config.r, sorted(config.target_modules)
    (4, ['q_proj', 'v_proj'])
    """
    from peft import LoraConfig

    return LoraConfig(task_type="CAUSAL_LM", r=spec.r, lora_alpha=spec.alpha,
                      lora_dropout=spec.dropout,
                      target_modules=list(spec.target_modules or DEFAULT_TARGETS))


class GenerationTask:
    """Batches, loss and exact-match evaluation of a causal-LM adapter under one template."""

    score_name = "exact_match"
    labels: tuple[str, ...] = ()

    def __init__(self, tokenizer: Any, template: PromptTemplate, device: ComputeDevice, *,
                 max_length: int = 256, max_new_tokens: int = 8, batch_size: int = 16) -> None:
        self.tokenizer = tokenizer
        self.template = template
        self.device = device
        self.max_length = max_length
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size
        self.share_prefix = True
        """Compute the prompts' shared beginning once per :meth:`generate` call."""
        self.shots: ShotIndex | None = None
        """Worked examples shown before each input (:mod:`.prompt_policy`); None: none."""

    def with_prompt(self, template: PromptTemplate, shots: ShotIndex | None) -> GenerationTask:
        """The same task answering under another template and worked examples (training
        batches and their loss keep the template alone: the adapter trains so)."""
        twin = copy.copy(self)
        twin.template, twin.shots = template, shots
        return twin

    def prompts(self, model: Any, texts: Sequence[str], vectors: Any = None) -> list[str]:
        """The prompts the model answers: each text under the template, after its worked
        examples when the task has any (chosen by ``vectors``, the texts' input embeddings:
        computed here unless the caller has them)."""
        if self.shots is None or not self.shots.policy.shots:
            return [self.template.prompt(self.tokenizer, t) for t in texts]
        if vectors is None:
            vectors = input_embeddings(model, self.tokenizer, texts, max_length=self.max_length)
        return [self.template.prompt(self.tokenizer, text, shots) for text, shots in
                zip(texts, self.shots.shots_for(texts, vectors), strict=True)]

    def check(self, examples: Sequence[TrainingExample]) -> None:
        for example in examples:  # raises PromptTemplateError for targets that cannot fit
            self.template.encode(self.tokenizer, example.input, example.target, self.max_length)

    def build(self, model: nn.Module, spec: LoraSpec, parent_dir: Path | None,
              *, dropout: float = 0.1) -> Any:
        return trainable_peft_model(model, generator_lora_config(spec),
                                    parent_dir).to(self.device.device)

    def batch(self, examples: Sequence[TrainingExample]) -> dict[str, torch.Tensor]:
        rows = [self.template.encode(self.tokenizer, e.input, e.target, self.max_length)
                for e in examples]
        width = max(len(ids) for ids, _ in rows)
        pad = self.tokenizer.pad_token_id
        input_ids = torch.full((len(rows), width), pad, dtype=torch.long)
        labels = torch.full((len(rows), width), IGNORE_INDEX, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, (ids, labs) in enumerate(rows):  # right padding for training
            input_ids[i, :len(ids)] = torch.tensor(ids)
            labels[i, :len(labs)] = torch.tensor(labs)
            mask[i, :len(ids)] = 1
        target = self.device.device
        return {"input_ids": input_ids.to(target), "attention_mask": mask.to(target),
                "labels": labels.to(target),
                "weights": torch.tensor([e.weight for e in examples], device=target)}

    def example_losses(self, model: Any, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Mean cross-entropy over each example's target tokens.

        The LM head runs on the target positions only: the decoder's last hidden states are
        gathered where a label is, so the logits are (target tokens x vocabulary), not
        (batch x length x vocabulary). For SmolLM2's 49,152-token vocabulary that full
        tensor, its float copy and its gradient were most of an update's peak memory.
        """
        labels = batch["labels"][:, 1:]
        picked = labels != IGNORE_INDEX
        decoder, head = _decoder_and_head(model)
        with self.device.autocast():
            hidden = decoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                             use_cache=False).last_hidden_state  # no KV cache to train
            logits = head(hidden[:, :-1][picked])
        return _row_means(logits, labels, picked)

    @torch.no_grad()
    def heldout_losses(self, model: Any, examples: Sequence[TrainingExample]) -> list[float]:
        """:meth:`example_losses` of each example, in order, for scoring (no gradient).

        With ``share_prefix``, the tokens every example's prompt begins with go through the
        model once and each batch continues from a copy of their key/value cache (as
        :meth:`generate` does): a SmolLM2 gate's held-out texts run 40-odd tokens each
        instead of 90."""
        rows = [self.template.encode(self.tokenizer, e.input, e.target, self.max_length)
                for e in examples]
        shared = (common_prefix([ids for ids, _ in rows])
                  if self.share_prefix and len(rows) > 1 else 0)
        # The last prompt token predicts the first target token: it must be a row's own.
        shared = min([shared, *(_first_target(labels) - 1 for _, labels in rows)])
        if shared < MIN_SHARED:
            losses: list[float] = []
            for start in range(0, len(examples), self.batch_size):
                batch = self.batch(examples[start:start + self.batch_size])
                losses += self.example_losses(model, batch).tolist()
            return losses
        decoder, head = _decoder_and_head(model)
        pad, target = self.tokenizer.pad_token_id, self.device.device
        order = sorted(range(len(rows)), key=lambda i: len(rows[i][0]))  # pad less
        out = [0.0] * len(rows)
        with self.device.autocast():
            cache = prefix_cache(model, rows[0][0][:shared], target)
            for start in range(0, len(order), self.batch_size):
                chunk = order[start:start + self.batch_size]
                own = [(rows[i][0][shared:], rows[i][1][shared:]) for i in chunk]
                width = max(len(ids) for ids, _ in own)
                input_ids = torch.tensor([ids + [pad] * (width - len(ids)) for ids, _ in own],
                                         device=target)
                labels = torch.tensor([labs + [IGNORE_INDEX] * (width - len(labs))
                                       for _, labs in own], device=target)
                mask = torch.tensor([[1] * (shared + len(ids)) + [0] * (width - len(ids))
                                     for ids, _ in own], device=target)
                hidden = decoder(input_ids=input_ids, attention_mask=mask,
                                 past_key_values=repeated(cache, len(chunk)),
                                 use_cache=True).last_hidden_state
                picked = labels[:, 1:] != IGNORE_INDEX
                means = _row_means(head(hidden[:, :-1][picked]), labels[:, 1:], picked)
                for i, loss in zip(chunk, means.tolist(), strict=True):
                    out[i] = loss
        return out

    @torch.no_grad()
    def generate(self, model: Any, texts: Sequence[str], *, vectors: Any = None) -> list[str]:
        """Greedy answers, batched with left padding (where a causal LM's answer starts).

        Batched by prompt length, so each batch pads to about its own length (every
        generated token attends over the padding too), and answered in the texts' order.
        With ``share_prefix``, the tokens every prompt begins with go through the model
        once (:mod:`.shared_prefix`). ``vectors``: the texts' input embeddings, when the
        caller has them (worked examples are chosen by them)."""
        model.eval()
        prompts = self.prompts(model, texts, vectors)
        answers: list[str] = [""] * len(prompts)
        rows = ([self.tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
                if self.share_prefix and len(prompts) > 1 else [])
        shared = common_prefix(rows)
        cache = None
        if shared >= MIN_SHARED:  # the template's beginning, computed once
            prefix = rows[0][:shared]
            with self.device.autocast():
                cache = prefix_cache(model, prefix, self.device.device)
        for chunk in length_batches(prompts, self.batch_size):
            with self.device.autocast():
                new_tokens = (self._whole_prompts(model, [prompts[i] for i in chunk])
                              if cache is None else generate_after(
                                  model, cache, prefix, [rows[i][shared:] for i in chunk],
                                  pad_token_id=self.tokenizer.pad_token_id,
                                  max_new_tokens=self.max_new_tokens,
                                  device=self.device.device))
            # Said outright: a BPE tokenizer ignores the clean-up, and warns on every call.
            for i, answer in zip(chunk, self.tokenizer.batch_decode(
                    new_tokens, skip_special_tokens=True, clean_up_tokenization_spaces=False),
                                 strict=True):
                answers[i] = answer
        return answers

    def _whole_prompts(self, model: Any, prompts: list[str]) -> torch.Tensor:
        """Greedy new tokens for whole prompts, left-padded together."""
        side = self.tokenizer.padding_side
        self.tokenizer.padding_side = "left"
        try:
            encoded = self.tokenizer(prompts, padding=True, add_special_tokens=False,
                                     return_tensors="pt").to(self.device.device)
        finally:
            self.tokenizer.padding_side = side
        output = model.generate(**encoded, max_new_tokens=self.max_new_tokens,
                                do_sample=False, pad_token_id=self.tokenizer.pad_token_id)
        return output[:, encoded["input_ids"].shape[1]:]

    def score_answers(self, model: Any, prompts: Sequence[str],
                      expected: Sequence[str]) -> list[bool]:
        """Exact match; under a template with choices, the choice read from the answer."""
        return self.match_answers(self.generate(model, prompts), expected)

    def match_answers(self, answers: Sequence[str], expected: Sequence[str]) -> list[bool]:
        """Whether each generated answer says what is expected (:meth:`score_answers`'
        rule, for answers generated already)."""
        if self.template.choices:
            return [self.template.read_answer(a) == normalize_answer(e)
                    for a, e in zip(answers, expected, strict=True)]
        return [normalize_answer(a) == normalize_answer(e)
                for a, e in zip(answers, expected, strict=True)]

    @torch.no_grad()
    def evaluate_each(self, model: Any, examples: Sequence[TrainingExample]) -> Evaluation:
        """Whether each answer matches its target (its score too), and the mean target
        loss."""
        model.eval()
        hits = self.score_answers(model, [e.input for e in examples],
                                  [e.target for e in examples])
        losses = self.heldout_losses(model, examples)
        return Evaluation(hits, sum(losses) / len(examples), [float(h) for h in hits], losses)

    def evaluate(self, model: Any, examples: Sequence[TrainingExample]) -> tuple[float, float]:
        """``(exact match, mean target loss)``."""
        result = self.evaluate_each(model, examples)
        return result.accuracy, result.loss


def _row_means(logits: torch.Tensor, labels: torch.Tensor,
               picked: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy per row of the ``picked`` (target) positions' ``logits``."""
    token_losses = nn.functional.cross_entropy(logits.float(), labels[picked],
                                               reduction="none")
    rows = picked.nonzero(as_tuple=True)[0]
    sums = torch.zeros(labels.size(0), dtype=token_losses.dtype,
                       device=token_losses.device).index_add(0, rows, token_losses)
    return sums / picked.sum(dim=1).clamp(min=1)


def _first_target(labels: Sequence[int]) -> int:
    return next((i for i, label in enumerate(labels) if label != IGNORE_INDEX), len(labels))


def _decoder_and_head(model: Any) -> tuple[Any, Any]:
    """The causal LM's decoder (its last hidden states, normed) and its LM head, through
    PEFT's wrapper (the adapter's layers are inside them)."""
    causal_lm = model.get_base_model() if hasattr(model, "get_base_model") else model
    return causal_lm.get_decoder(), causal_lm.get_output_embeddings()
