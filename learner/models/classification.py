"""Classification: an encoder, mean pooling, a linear head, LoRA on query/value.

all-MiniLM-L6-v2 is a sentence-transformers checkpoint trained with mean pooling; it has no
trained pooler, and ``AutoModelForSequenceClassification`` + LoRA collapsed to one class on
it (NOTES.md). Mean pooling + a linear head learns well. In memory the head rides in the
adapter as a PEFT ``modules_to_save`` module; the store keeps it apart, in
sentence-transformers' layout beside an adapter of the encoder alone, so a process without
driftloop loads it (:mod:`.portable`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ...schemas.events import TrainingExample
from ..errors import TrainingRequestError
from .adapters import LoraSpec, trainable_peft_model
from .device import ComputeDevice
from .task_model import Evaluation, length_batches

__all__ = ["ClassificationTask", "MeanPoolClassifier", "classifier_lora_config"]

HEAD_MODULE = "head"
DEFAULT_TARGETS = ("query", "value")


class MeanPoolClassifier(nn.Module):
    """Masked mean of the encoder's last hidden states, then dropout and a linear head.

    Examples
    --------
    >>> from transformers import BertConfig, BertModel
    >>> _ = torch.manual_seed(0)
    >>> encoder = BertModel(BertConfig(hidden_size=8, num_hidden_layers=1,
    ...                                num_attention_heads=2, intermediate_size=8))
    >>> model = MeanPoolClassifier(encoder, num_labels=3)
    >>> model(torch.tensor([[1, 2, 0]]), torch.tensor([[1, 1, 0]])).shape
    torch.Size([1, 3])
    """

    def __init__(self, encoder: nn.Module, num_labels: int, dropout: float = 0.1) -> None:
        super().__init__()
        if num_labels < 2:
            raise ValueError(f"num_labels must be >= 2, got {num_labels}")
        self.encoder = encoder
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(encoder.config.hidden_size, num_labels)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                **_: Any) -> torch.Tensor:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        # Pooled in the head's dtype (float32): an encoder held in bf16 or fp16 feeds it too.
        hidden = hidden.to(self.head.weight.dtype)
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
        return self.head(self.dropout(pooled))


def classifier_lora_config(spec: LoraSpec) -> Any:
    """The PEFT config: LoRA on attention, the head saved whole alongside it."""
    from peft import LoraConfig

    return LoraConfig(r=spec.r, lora_alpha=spec.alpha, lora_dropout=spec.dropout,
                      target_modules=list(spec.target_modules or DEFAULT_TARGETS),
                      modules_to_save=[HEAD_MODULE])


class ClassificationTask:
    """Batches, loss and evaluation of a classification adapter over one label set."""

    score_name = "accuracy"
    template = None  # a classification adapter reads the input as it is

    def __init__(self, tokenizer: Any, labels: Sequence[str], device: ComputeDevice, *,
                 max_length: int = 128, batch_size: int = 32) -> None:
        if len(labels) < 2 or len(set(labels)) != len(labels):
            raise TrainingRequestError(f"need at least two distinct labels, got {list(labels)}")
        self.tokenizer = tokenizer
        self.labels = tuple(labels)
        self.device = device
        self.max_length = max_length
        self.batch_size = batch_size
        self._index = {label: i for i, label in enumerate(self.labels)}

    def check(self, examples: Sequence[TrainingExample]) -> None:
        """Refuse targets outside the label set (they would be silently unlearnable)."""
        unknown = sorted({e.target for e in examples} - set(self.labels))
        if unknown:
            raise TrainingRequestError(
                f"targets {unknown} are not among the task's labels {list(self.labels)}")

    def build(self, encoder: nn.Module, spec: LoraSpec, parent_dir: Path | None,
              *, dropout: float = 0.1) -> Any:
        """A trainable PEFT model: fresh LoRA and head, or continued from the parent's."""
        model = MeanPoolClassifier(encoder, len(self.labels), dropout)
        return trainable_peft_model(model, classifier_lora_config(spec),
                                    parent_dir).to(self.device.device)

    def batch(self, examples: Sequence[TrainingExample]) -> dict[str, torch.Tensor]:
        encoded = self.tokenizer([e.input for e in examples], padding=True, truncation=True,
                                 max_length=self.max_length, return_tensors="pt")
        return {
            "input_ids": encoded["input_ids"].to(self.device.device),
            "attention_mask": encoded["attention_mask"].to(self.device.device),
            "labels": torch.tensor([self._index[e.target] for e in examples],
                                   device=self.device.device),
            "weights": torch.tensor([e.weight for e in examples], device=self.device.device),
        }

    def example_losses(self, model: Any, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        with self.device.autocast():
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        return nn.functional.cross_entropy(logits.float(), batch["labels"], reduction="none")

    @torch.no_grad()
    def logits(self, model: Any, texts: Sequence[str]) -> torch.Tensor:
        """Float32 logits of each text, one row per text in order, columns in label order
        (eval mode, no gradients, on the task's device)."""
        model.eval()
        chunks = []
        for start in range(0, len(texts), self.batch_size):
            chunk = list(texts[start:start + self.batch_size])
            encoded = self.tokenizer(chunk, padding=True, truncation=True,
                                     max_length=self.max_length, return_tensors="pt")
            with self.device.autocast():
                out = model(input_ids=encoded["input_ids"].to(self.device.device),
                            attention_mask=encoded["attention_mask"].to(self.device.device))
            chunks.append(out.float())
        return (torch.cat(chunks) if chunks
                else torch.empty(0, len(self.labels), device=self.device.device))

    def predict(self, model: Any, texts: Sequence[str]) -> list[str]:
        """The predicted label of each text."""
        return [self.labels[i] for i in self.logits(model, texts).argmax(dim=-1).tolist()]

    @torch.no_grad()
    def evaluate_each(self, model: Any, examples: Sequence[TrainingExample]) -> Evaluation:
        """Whether each labelled example is classified right, one minus half its Brier
        score, and the mean loss.

        Batched by length (the texts of a batch padded to about the same number of tokens:
        a fifth faster on a thousand tweets, more on texts of mixed lengths), answered in
        the examples' order."""
        model.eval()
        hits: list[bool] = [False] * len(examples)
        scores: list[float] = [0.0] * len(examples)
        losses: list[float] = [0.0] * len(examples)
        for chunk in length_batches([e.input for e in examples], self.batch_size):
            batch = self.batch([examples[i] for i in chunk])
            with self.device.autocast():
                logits = model(input_ids=batch["input_ids"],
                               attention_mask=batch["attention_mask"]).float()
            truth = nn.functional.one_hot(batch["labels"], logits.shape[-1]).float()
            brier = (logits.softmax(dim=-1) - truth).pow(2).sum(dim=-1)
            for i, hit, score, loss in zip(
                    chunk, (logits.argmax(dim=-1) == batch["labels"]).tolist(),
                    (1.0 - 0.5 * brier).tolist(),
                    nn.functional.cross_entropy(logits, batch["labels"],
                                                reduction="none").tolist(), strict=True):
                hits[i], scores[i], losses[i] = hit, score, loss
        return Evaluation(hits, sum(losses) / len(examples), scores, losses)

    def evaluate(self, model: Any, examples: Sequence[TrainingExample]) -> tuple[float, float]:
        """``(accuracy, mean loss)`` on labelled examples."""
        result = self.evaluate_each(model, examples)
        return result.accuracy, result.loss

    def score_answers(self, model: Any, prompts: Sequence[str],
                      expected: Sequence[str]) -> list[bool]:
        """Whether each prompt is classified as expected (the challenge suite)."""
        return [p == e for p, e in zip(self.predict(model, prompts), expected, strict=True)]
